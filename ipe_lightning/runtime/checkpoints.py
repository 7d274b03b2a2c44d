"""Where a run's ``last.ckpt`` is, the save on SIGTERM (cluster preemption or time-out) and on
Ctrl-C (SIGINT), the loggers' rows flushed with every checkpoint, and ``last.prev.ckpt`` removed
once training is over."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ipe_lightning.runtime.checkpoint_io import previous_path


def last_checkpoint_path(trainer: pl.Trainer) -> Path | None:
    """The ``last.ckpt`` of the first checkpoint callback that keeps one (``save_last``)."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath:
            return (
                Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
            )
    return None


class PreemptionCheckpoint(pl.Callback):
    """On SIGTERM during training, save ``last.ckpt`` so a requeued job resumes where it stopped.

    Lightning turns SIGTERM into a ``SIGTERMException`` at the next batch boundary, so the saved
    state is consistent. Lightning's ``OnExceptionCheckpoint`` is not used: it saves on *every*
    exception, so a NaN loss (``NonFiniteLossError``, raised once the weights went bad) would
    replace the last good ``last.ckpt`` with the bad weights (tests/runtime/test_checkpoints.py
    shows it), and its ``teardown`` deletes its file after a fit that ends normally.
    """

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return
        path = last_checkpoint_path(trainer)
        if path is not None:
            trainer.save_checkpoint(path)


class Interrupted(SIGTERMException):
    """Ctrl-C (SIGINT) stopped the job, after ``last.ckpt`` was saved during training; a job ends
    with exit status :data:`INTERRUPTED_EXIT` on it, as a shell reports a Ctrl-C."""


INTERRUPTED_EXIT = 130  # 128 + SIGINT


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[None]:
    """Within it, the first Ctrl-C stops the job as SIGTERM does: training stops at the next batch
    boundary and :class:`PreemptionCheckpoint` saves ``last.ckpt``; the job then raises
    :class:`Interrupted`. A second Ctrl-C stops at once (``KeyboardInterrupt``).

    Lightning 2.6 turns a Ctrl-C into a ``KeyboardInterrupt`` wherever it lands (mid optimiser
    step too), calls the callbacks' ``on_exception`` and exits with status 1, saving nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    received: list[int] = []
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        signal.signal(signal.SIGINT, previous)
        # os.write, not print: a handler that prints while the progress bar prints raises
        os.write(2, b"\n[ipe-lightning] Ctrl-C: stopping after this step (again: at once)\n")
        on_sigterm = signal.getsignal(signal.SIGTERM)
        if not callable(on_sigterm):  # no trainer running, so no step to finish
            raise Interrupted
        on_sigterm(signal.SIGTERM, frame)  # Lightning's: stop at the next batch boundary

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    except SIGTERMException as stop:
        if received and not isinstance(stop, Interrupted):
            raise Interrupted from None
        raise
    finally:
        if signal.getsignal(signal.SIGINT) is on_sigint:
            signal.signal(signal.SIGINT, previous)


class FlushLogsAtCheckpoint(pl.Callback):
    """Write the loggers' buffered rows whenever a checkpoint is saved, so that a kill loses no
    row that the checkpoint covers. Lightning 2.6 saves the loggers after the rows of
    ``self.log``, but rows that callbacks log straight to a logger (``LearningRateMonitor``) wait
    in ``CSVLogger``'s buffer for ``flush_logs_every_n_steps`` (100) steps."""

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        for logger in trainer.loggers:
            logger.save()


class DropPreviousWhenTrained(pl.Callback):
    """When training ends, remove ``last.prev.ckpt``: the fallback kept while ``last.ckpt`` is
    being replaced (runtime/checkpoint_io.py). A finished run's ``last.ckpt`` was written whole,
    so the copy before it only takes disk (an RDN checkpoint is about 256 MB). A run that stops
    early (a failure, SIGTERM, Ctrl-C) keeps it: resuming may need it."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        last = last_checkpoint_path(trainer)
        if last is None or not trainer.is_global_zero or not last.is_file():
            return
        with contextlib.suppress(FileNotFoundError):
            previous_path(last).unlink()
