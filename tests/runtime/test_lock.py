"""One writer per directory: a second process is refused with the holder's name, and a holder
that died (``kill -9``) never blocks the next one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipe_lightning.runtime.lock import DirectoryInUse, DirectoryLock, Holder, run_directory_lock

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from ipe_lightning.runtime.lock import DirectoryLock
lock = DirectoryLock(sys.argv[1], sys.argv[2])
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


def hold_in_another_process(directory: Path, name: str = "run") -> subprocess.Popen:
    """A process that holds ``DirectoryLock(directory, name)`` until killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(directory), name],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    holder = hold_in_another_process(tmp_path)
    try:
        with pytest.raises(DirectoryInUse, match=f"pid {holder.pid} on {socket.gethostname()}"):
            DirectoryLock(tmp_path).acquire()
        assert DirectoryLock(tmp_path).held_elsewhere().pid == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_holder_killed_with_sigkill_does_not_block_the_next_writer(tmp_path):
    holder = hold_in_another_process(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    stale = DirectoryLock(tmp_path).holder()  # its record survives the kill ...
    assert stale.pid == holder.pid and stale.alive() is False
    assert DirectoryLock(tmp_path).held_elsewhere() is False  # ... the lock does not
    with DirectoryLock(tmp_path).held() as lock:
        assert lock.holder().pid == os.getpid()
    assert lock.holder() is None  # released: the record goes with the lock


def test_a_reused_pid_is_not_taken_for_the_holder():
    me = Holder(pid=os.getpid(), host=socket.gethostname(), started=time.time(), process_start="1")
    assert me.alive() is False
    elsewhere = Holder(pid=1, host="another-host", started=time.time())
    assert elsewhere.alive() is None


def test_only_global_rank_zero_takes_the_run_directory_lock(tmp_path, monkeypatch):
    with DirectoryLock(tmp_path, "run").held():
        monkeypatch.setenv("LOCAL_RANK", "1")  # a DDP rank of the same job: same directory
        with run_directory_lock(tmp_path):
            pass
        monkeypatch.delenv("LOCAL_RANK")
        with pytest.raises(SystemExit) as stop, run_directory_lock(tmp_path):
            pass
        assert stop.value.code == 2


@pytest.mark.slow
def test_a_second_run_py_on_the_same_run_directory_stops_at_once(tiny_hr_dir, tmp_path):
    from tests.support.runs import tiny_overrides

    run_dir = tmp_path / "run"
    # 10 s per step: the first run is still training (it is killed below) however long the
    # second one takes to start on a busy machine.
    slow = "+callbacks.slow._target_=tests.sweep.support.SleepPerStep"
    args = [
        sys.executable,
        str(REPO / "run.py"),
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"),
        slow,
        "+callbacks.slow.seconds=10",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.time() + 120
        while DirectoryLock(run_dir).holder() is None:
            assert first.poll() is None and time.time() < deadline, first.stderr.read().decode()
            time.sleep(0.2)
        second = subprocess.run(
            args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert second.returncode == 2, second.stderr
        assert f"in use by pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the first one was left alone
    finally:
        first.kill()
        first.wait()
    assert not (run_dir / "metrics.json").exists()  # the refused run wrote nothing there
