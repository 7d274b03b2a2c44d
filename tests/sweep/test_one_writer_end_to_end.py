"""Two writers on one sweep directory (real processes): the second sweep launches only the jobs
no live process holds, and says so."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.runtime.test_lock import hold_in_another_process
from tests.support.runs import read_record, tiny_overrides
from tests.sweep.support import run_sweep, sweep_command, sweep_env, write_sweep_file

pytestmark = pytest.mark.slow


def test_a_second_sweep_launches_only_the_jobs_no_live_process_holds(tiny_hr_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep_file = write_sweep_file(tmp_path / "seeds.yaml", "title: seeds\nparams:\n  seed: 1,2\n")
    arguments = [
        str(sweep_file),
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"),
        "--sweep-dir",
        f"{sweep_dir}",
    ]
    running = hold_in_another_process(sweep_dir / "seed-1", "run")  # e.g. the first sweep's job
    try:
        result = run_sweep(arguments, cwd=tmp_path)
    finally:
        running.kill()
        running.wait()
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    plan = next(line for line in result.stdout.splitlines() if "  seed-1 " in line)
    assert " held " in plan and f"pid {running.pid}" in plan
    assert "1 job(s) are run by other live processes and are not launched here: seed-1" in (
        result.stderr
    )
    assert not (sweep_dir / "seed-1" / "metrics.json").exists()
    assert read_record(sweep_dir / "seed-2")["status"] == "finished"


def test_a_second_real_sweep_py_while_the_first_runs_launches_nothing(tiny_hr_dir, tmp_path):
    """A resubmission while the first sweep still runs: the second ``sweep.py`` on the same
    directory finds every job launched by a live process (the one running, the one waiting its
    turn), holds them all and launches nothing. The jobs are made long (many tiny epochs) so that
    the first sweep is still on its first job when the second plans; it is killed after."""
    sweep_dir = tmp_path / "sweep"
    sweep_file = write_sweep_file(tmp_path / "seeds.yaml", "title: seeds\nparams:\n  seed: 1,2\n")
    arguments = [
        str(sweep_file),
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"),
        "trainer.max_epochs=100000",
        "--sweep-dir",
        f"{sweep_dir}",
    ]
    (tmp_path / "first").mkdir()
    first = subprocess.Popen(
        sweep_command(arguments),
        cwd=tmp_path / "first",
        env=sweep_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (sweep_dir / "seed-1" / "run.lock.json").exists():  # its first job started
            assert first.poll() is None, first.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the first sweep's job never started"
            time.sleep(0.2)
        second = run_sweep(arguments, cwd=tmp_path / "second")
        assert first.poll() is None, "the first sweep should still be training seed-1"
    finally:
        first.kill()
        first.wait()
    plans = [line for line in second.stdout.splitlines() if line.startswith("[sweep]   seed-")]
    assert len(plans) == 2, second.stdout[-3000:]
    assert all(" held " in line and f"pid {first.pid}" in line for line in plans), plans
    assert "Launching" not in second.stdout + second.stderr  # Hydra launched nothing
    assert second.returncode == 1  # not every job finished under this sweep
    assert not (sweep_dir / "seed-2" / "metrics.json").exists()
