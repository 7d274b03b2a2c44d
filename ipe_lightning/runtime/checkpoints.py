"""Where a run's ``last.ckpt`` is, and the save on SIGTERM (cluster preemption or time-out)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException


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
