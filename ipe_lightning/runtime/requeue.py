"""Requeue on time-out and preemption under submitit, resuming from ``last.ckpt``.

submitit (``launcher=slurm`` and ``launcher=submitit_local``) owns the requeue: SLURM sends its
signal (USR2, ``SUBMITIT_PREEMPT_SIGNAL``) ``signal_delay_s`` before the time limit or on
preemption, and submitit's handler resubmits the job (the launcher's ``checkpoint()``: the same
job again) and exits at once (``sys.exit``), wherever training is, e.g. half-way through an
optimiser step. Lightning's own SLURM auto-requeue is off (``SLURMEnvironment(auto_requeue=
False)`` in ``conf/launcher/slurm.yaml``) so the two do not fight over signals.

:class:`RequeueCheckpoint` sits in between: it takes the signal, lets the current training step
finish, agrees across ranks (all reach the same batch boundary), saves ``last.ckpt`` and only then
hands over to submitit's handler. The requeued job runs the same overrides in the same directory,
so ``run.py``'s ``resume=auto`` continues from that checkpoint. A signal outside training
(during testing) is handed over at once: the requeued job skips the finished fit and tests again.
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Any

import pytorch_lightning as pl

from ipe_lightning.runtime.checkpoints import last_checkpoint_path

SUBMITIT_ENVIRONMENT = ("SUBMITIT_LOCAL_JOB_ID", "SUBMITIT_EXECUTOR", "SLURM_JOB_ID")


def requeue_signal() -> signal.Signals:
    """The signal submitit requeues on (its ``SUBMITIT_PREEMPT_SIGNAL``, USR2 by default)."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2").upper()
    return getattr(signal, name if name.startswith("SIG") else f"SIG{name}")


def in_submitit_job() -> bool:
    return any(key in os.environ for key in SUBMITIT_ENVIRONMENT)


class RequeueCheckpoint(pl.Callback):
    """Defer submitit's requeue signal to the next batch boundary and save ``last.ckpt`` first."""

    def __init__(self) -> None:
        self._signal: signal.Signals | None = None
        self._previous: Any = None
        self._pending: tuple[int, FrameType | None] | None = None
        self._fitting = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fitting = True
        if not in_submitit_job() or self._signal is not None:
            return
        self._signal = requeue_signal()
        self._previous = signal.getsignal(self._signal)
        signal.signal(self._signal, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._fitting:
            self._pending = (signum, frame)  # acted on at the next batch boundary
        else:
            self._hand_over(signum, frame)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        requested = self._pending is not None
        if trainer.world_size > 1:  # every rank runs this collective at every batch end
            requested = trainer.strategy.reduce_boolean_decision(requested, all=False)
        if not requested:
            return
        path = last_checkpoint_path(trainer)
        if path is not None:
            trainer.save_checkpoint(path)
        print(f"[ipe-lightning] requeue signal: saved {path} at step {trainer.global_step}")
        signum, frame = self._pending or (int(self._signal or requeue_signal()), None)
        self._pending = None
        self._hand_over(signum, frame)
        # submitit returns without exiting on ranks other than 0: they stop here too, with status 0
        # so that Lightning's rank watchdog does not SIGKILL rank 0 while it requeues.
        raise SystemExit(0 if trainer.global_rank else -1)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fitting = False
        if self._pending is not None:  # arrived after the last batch: nothing left to save
            signum, frame = self._pending
            self._pending = None
            self._hand_over(signum, frame)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" and self._signal is not None:
            signal.signal(self._signal, self._previous or signal.SIG_DFL)
            self._signal = None

    def _hand_over(self, signum: int, frame: FrameType | None) -> None:
        if callable(self._previous):
            self._previous(signum, frame)  # submitit: requeue and sys.exit on rank 0
        elif self._previous in (None, signal.SIG_DFL):
            # No handler before ours (a plain `srun` job, not submitit's): what the signal would
            # have done without us, i.e. USR2's default action, terminating the process.
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
