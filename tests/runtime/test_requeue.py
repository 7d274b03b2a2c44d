"""Under submitit, the requeue signal during training waits for the end of the current batch,
``last.ckpt`` is saved, and only then does submitit's handler (the previous one) requeue; outside
training the signal goes to submitit at once, and outside submitit nothing is installed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest
from pytorch_lightning.callbacks import ModelCheckpoint

from ipe_lightning.runtime.requeue import RequeueCheckpoint, in_submitit_job, requeue_signal

# What submitit (local and SLURM executors) and SLURM set in a job's environment.
JOB_VARIABLES = ("SUBMITIT_LOCAL_JOB_ID", "SUBMITIT_EXECUTOR", "SLURM_JOB_ID")


class Previous:
    """Stands for submitit's handler: records the signals it gets (the real one requeues)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, signum: int, frame: object) -> None:
        self.calls.append(signum)


@pytest.fixture(autouse=True)
def outside_any_job(monkeypatch):
    for name in (*JOB_VARIABLES, "SUBMITIT_PREEMPT_SIGNAL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def previous():
    """A recording handler on USR1 and USR2 (so a raised signal never kills the test run); the
    handlers of before the test are restored after it."""
    signals = (signal.SIGUSR1, signal.SIGUSR2)
    saved = {signum: signal.getsignal(signum) for signum in signals}
    handler = Previous()
    for signum in signals:
        signal.signal(signum, handler)
    yield handler
    for signum, old in saved.items():
        signal.signal(signum, old)


@pytest.fixture
def in_job(monkeypatch):
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")


def fake_trainer(
    checkpoint_dir: Path | None, *, rank: int = 0, world_size: int = 1, others: Sequence[bool] = ()
) -> SimpleNamespace:
    """What the callback reads of a trainer. ``others``: per batch end, whether another rank got
    the signal (the all-reduce answers ``mine or theirs``); ``checkpoint_dir=None``: no
    ``save_last`` checkpoint callback."""
    others = list(others)
    reductions: list[tuple[bool, bool]] = []

    def reduce_boolean_decision(decision: bool, all: bool = True) -> bool:
        reductions.append((decision, all))
        return decision or others.pop(0)

    callbacks = [ModelCheckpoint(dirpath=checkpoint_dir, save_last=checkpoint_dir is not None)]
    saved: list[Path] = []
    return SimpleNamespace(
        world_size=world_size,
        global_rank=rank,
        global_step=7,
        checkpoint_callbacks=callbacks,
        save_checkpoint=saved.append,
        saved=saved,
        strategy=SimpleNamespace(reduce_boolean_decision=reduce_boolean_decision),
        reductions=reductions,
    )


def batch_end(callback: RequeueCheckpoint, trainer: SimpleNamespace) -> None:
    callback.on_train_batch_end(trainer, None, None, None, 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, signal.SIGUSR2),  # submitit's default
        ("USR1", signal.SIGUSR1),
        ("SIGUSR1", signal.SIGUSR1),
        ("usr1", signal.SIGUSR1),
        ("TERM", signal.SIGTERM),
    ],
)
def test_requeue_signal_is_submitits_preempt_signal_and_usr2_when_unset(
    monkeypatch, value, expected
):
    if value is not None:
        monkeypatch.setenv("SUBMITIT_PREEMPT_SIGNAL", value)
    assert requeue_signal() == expected


@pytest.mark.parametrize("name", JOB_VARIABLES)
def test_a_job_is_a_submitit_job_when_submitit_or_slurm_says_so(monkeypatch, name):
    assert not in_submitit_job()
    monkeypatch.setenv(name, "1")
    assert in_submitit_job()


def test_outside_a_submitit_job_no_handler_is_installed(previous, tmp_path):
    callback, trainer = RequeueCheckpoint(), fake_trainer(tmp_path)
    callback.on_fit_start(trainer, None)
    assert signal.getsignal(signal.SIGUSR2) is previous
    signal.raise_signal(signal.SIGUSR2)
    assert previous.calls == [signal.SIGUSR2]  # straight to the previous handler
    batch_end(callback, trainer)  # nothing pending: training goes on
    assert trainer.saved == []


@pytest.mark.parametrize(("rank", "status"), [(0, -1), (1, 0)])
def test_a_signal_during_fit_waits_for_the_batch_end_saves_last_ckpt_and_hands_over(
    previous, in_job, tmp_path, rank, status
):
    """Rank 0 exits -1 if submitit's handler returns; other ranks exit 0, so that Lightning's
    watchdog does not kill rank 0 while it requeues."""
    callback, trainer = RequeueCheckpoint(), fake_trainer(tmp_path, rank=rank)
    callback.on_fit_start(trainer, None)
    assert signal.getsignal(signal.SIGUSR2) is not previous
    signal.raise_signal(signal.SIGUSR2)
    assert previous.calls == [] and trainer.saved == []  # deferred: the step goes on
    with pytest.raises(SystemExit) as exit_:
        batch_end(callback, trainer)
    assert exit_.value.code == status
    assert trainer.saved == [tmp_path / "last.ckpt"]
    assert previous.calls == [signal.SIGUSR2]
    callback.on_fit_end(trainer, None)  # were the exit caught: the signal was handed over once
    assert previous.calls == [signal.SIGUSR2]


def test_a_batch_end_without_a_signal_neither_saves_nor_hands_over(previous, in_job, tmp_path):
    callback, trainer = RequeueCheckpoint(), fake_trainer(tmp_path)
    callback.on_fit_start(trainer, None)
    for _ in range(3):
        batch_end(callback, trainer)
    assert trainer.saved == [] and previous.calls == []


def test_the_handler_follows_submitit_preempt_signal(previous, in_job, monkeypatch, tmp_path):
    monkeypatch.setenv("SUBMITIT_PREEMPT_SIGNAL", "USR1")
    callback, trainer = RequeueCheckpoint(), fake_trainer(tmp_path)
    callback.on_fit_start(trainer, None)
    assert signal.getsignal(signal.SIGUSR2) is previous
    signal.raise_signal(signal.SIGUSR1)
    assert previous.calls == []
    with pytest.raises(SystemExit):
        batch_end(callback, trainer)
    assert previous.calls == [signal.SIGUSR1]


def test_every_rank_asks_the_others_at_every_batch_end_and_stops_when_any_got_the_signal(
    previous, in_job, tmp_path
):
    """All ranks must run the same collective at every batch end (one that skipped it would
    hang the others), and all save at the same step, though only one rank got the signal."""
    callback = RequeueCheckpoint()
    trainer = fake_trainer(tmp_path, rank=1, world_size=2, others=[False, False, True])
    callback.on_fit_start(trainer, None)
    batch_end(callback, trainer)
    batch_end(callback, trainer)
    assert trainer.saved == [] and previous.calls == []
    with pytest.raises(SystemExit) as exit_:
        batch_end(callback, trainer)
    assert exit_.value.code == 0
    assert trainer.reductions == [(False, False)] * 3  # "any rank", not "all ranks"
    assert trainer.saved == [tmp_path / "last.ckpt"]
    assert previous.calls == [signal.SIGUSR2]  # this rank's own signal never came


def test_without_a_last_checkpoint_it_still_hands_over(previous, in_job):
    callback, trainer = RequeueCheckpoint(), fake_trainer(None)
    callback.on_fit_start(trainer, None)
    signal.raise_signal(signal.SIGUSR2)
    with pytest.raises(SystemExit) as exit_:
        batch_end(callback, trainer)
    assert exit_.value.code == -1
    assert trainer.saved == [] and previous.calls == [signal.SIGUSR2]


def test_a_signal_after_the_last_batch_is_handed_over_when_fit_ends(previous, in_job, tmp_path):
    callback, trainer = RequeueCheckpoint(), fake_trainer(tmp_path)
    callback.on_fit_start(trainer, None)
    signal.raise_signal(signal.SIGUSR2)
    callback.on_fit_end(trainer, None)
    assert previous.calls == [signal.SIGUSR2] and trainer.saved == []


def test_a_signal_after_fit_is_handed_over_at_once(previous, in_job, tmp_path):
    callback, trainer = RequeueCheckpoint(), fake_trainer(tmp_path)
    callback.on_fit_start(trainer, None)
    callback.on_fit_end(trainer, None)
    callback.teardown(trainer, None, "fit")
    signal.raise_signal(signal.SIGUSR2)  # e.g. while testing after fit
    assert previous.calls == [signal.SIGUSR2]
    assert trainer.saved == []


def test_teardown_after_testing_restores_the_previous_handler(previous, in_job, tmp_path):
    callback, trainer = RequeueCheckpoint(), fake_trainer(tmp_path)
    callback.on_fit_start(trainer, None)
    callback.on_fit_end(trainer, None)
    callback.teardown(trainer, None, "fit")
    assert signal.getsignal(signal.SIGUSR2) is not previous  # still there for the test stage
    callback.teardown(trainer, None, "test")
    assert signal.getsignal(signal.SIGUSR2) is previous


def test_without_a_handler_before_ours_the_signal_does_what_it_would_have_done(tmp_path):
    """In a SLURM job without submitit (a plain ``srun``) nothing handled USR2 before us: after
    the save, the signal takes its default action and ends the process, as it would have without
    the callback (it was once swallowed)."""
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_requeue import fake_trainer
from ipe_lightning.runtime.requeue import RequeueCheckpoint
signal.signal(signal.SIGUSR2, signal.SIG_DFL)
callback, trainer = RequeueCheckpoint(), fake_trainer(None)
callback.on_fit_start(trainer, None)
callback.on_fit_end(trainer, None)
signal.raise_signal(signal.SIGUSR2)
print("still running")
"""
    environment = {**os.environ, "SLURM_JOB_ID": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True
    )
    assert done.returncode == -signal.SIGUSR2, done.stderr
    assert "still running" not in done.stdout
