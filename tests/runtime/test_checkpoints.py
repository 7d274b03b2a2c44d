"""The save on SIGTERM writes ``last.ckpt`` at the step reached; any other exception (a NaN loss)
leaves the last good ``last.ckpt`` alone, which Lightning's ``OnExceptionCheckpoint`` does not."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, OnExceptionCheckpoint
from pytorch_lightning.demos.boring_classes import BoringModel
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ipe_lightning.runtime.checkpoints import (
    INTERRUPTED_EXIT,
    FlushLogsAtCheckpoint,
    Interrupted,
    PreemptionCheckpoint,
    last_checkpoint_path,
    stop_on_interrupt,
)
from ipe_lightning.runtime.nonfinite import NonFiniteLossError


class FailsAtStep(BoringModel):
    """Training that hits SIGTERM, or a NaN loss after its weights went bad, at ``step``."""

    def __init__(self, step: int, failure: str) -> None:
        super().__init__()
        self.fail_at, self.failure = step, failure

    def training_step(self, batch, batch_idx):
        if self.global_step == self.fail_at:
            if self.failure == "sigterm":
                raise SIGTERMException
            with torch.no_grad():
                self.layer.weight.fill_(float("nan"))
        loss = super().training_step(batch, batch_idx)["loss"]
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"the training loss is {loss.item()}")
        return loss


def fit(tmp_path, model, on_exception) -> pl.Trainer:
    last = ModelCheckpoint(
        dirpath=tmp_path,
        save_last=True,
        save_top_k=0,
        every_n_train_steps=1,
        enable_version_counter=False,
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=10,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[last, on_exception],
    )
    with pytest.raises((SIGTERMException, NonFiniteLossError)):
        trainer.fit(model)
    return trainer


def saved(path) -> dict:
    return torch.load(path, weights_only=True)


def test_sigterm_during_training_saves_last_checkpoint_at_the_step_reached(tmp_path):
    trainer = fit(tmp_path, FailsAtStep(3, "sigterm"), PreemptionCheckpoint())
    assert last_checkpoint_path(trainer) == tmp_path / "last.ckpt"
    assert saved(tmp_path / "last.ckpt")["global_step"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


@pytest.mark.parametrize("callback", ["ours", "lightning"])
def test_a_nan_loss_keeps_the_last_good_checkpoint_only_with_ours(tmp_path, callback):
    on_exception = (
        PreemptionCheckpoint()
        if callback == "ours"
        else OnExceptionCheckpoint(dirpath=tmp_path, filename="last")
    )
    fit(tmp_path, FailsAtStep(3, "nan"), on_exception)
    weights = saved(tmp_path / "last.ckpt")["state_dict"]["layer.weight"]
    # Ours keeps step 3's checkpoint; Lightning's saves the NaN weights over it.
    assert bool(torch.isfinite(weights).all()) == (callback == "ours")


class CtrlCAtStep(BoringModel):
    """Training whose process gets a Ctrl-C (SIGINT) in the middle of step ``step``."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.at = step

    def training_step(self, batch, batch_idx):
        if self.global_step == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        loss = super().training_step(batch, batch_idx)["loss"]
        self.log("train_loss", loss)
        return loss


def trainer_saving_every(tmp_path, steps: int, *callbacks, logger=False) -> pl.Trainer:
    last = ModelCheckpoint(
        dirpath=tmp_path,
        save_last=True,
        save_top_k=0,
        every_n_train_steps=steps,
        enable_version_counter=False,
    )
    return pl.Trainer(
        accelerator="cpu",
        max_steps=8,
        limit_val_batches=0,
        log_every_n_steps=1,
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[last, *callbacks],
    )


@pytest.mark.parametrize("handling", ["ours", "lightning"])
def test_ctrl_c_finishes_the_step_saves_last_checkpoint_and_raises_interrupted(tmp_path, handling):
    trainer = trainer_saving_every(tmp_path, 100, PreemptionCheckpoint())
    # Ctrl-C as a fresh process has it, whatever an earlier test in this worker left (a Lightning
    # run that was interrupted leaves Ctrl-C ignored)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    before = signal.getsignal(signal.SIGINT)
    scope = stop_on_interrupt() if handling == "ours" else contextlib.nullcontext()
    try:
        with pytest.raises(SystemExit) as stopped, scope:
            trainer.fit(CtrlCAtStep(3))
        after = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, outer)  # Lightning leaves Ctrl-C ignored after its exit
    if handling == "ours":
        assert isinstance(stopped.value, Interrupted) and INTERRUPTED_EXIT == 130
        assert saved(tmp_path / "last.ckpt")["global_step"] == 4  # step 3 ran to its end
        assert after is before
    else:  # Lightning: KeyboardInterrupt mid-step, exit status 1, nothing saved
        assert stopped.value.code == 1 and not (tmp_path / "last.ckpt").exists()


@pytest.mark.parametrize("flush", [True, False])
def test_rows_logged_straight_to_the_csv_log_are_written_with_every_checkpoint(tmp_path, flush):
    """Lightning saves the loggers after the rows of ``self.log``, but rows that callbacks log
    straight to a logger (``LearningRateMonitor``) wait in ``CSVLogger``'s buffer."""
    seen = {}

    class ReadLogAtStep(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == 5:  # after the checkpoint of step 4: what a kill leaves
                csv = tmp_path / "csv" / "metrics.csv"
                seen["rows"] = csv.read_text().splitlines()[1:] if csv.exists() else []

    logger = CSVLogger(tmp_path, name="csv", version="", flush_logs_every_n_steps=100)
    flushing = [FlushLogsAtCheckpoint()] if flush else []
    lr_monitor = LearningRateMonitor(logging_interval="step")
    trainer = trainer_saving_every(
        tmp_path, 4, *flushing, lr_monitor, ReadLogAtStep(), logger=logger
    )
    trainer.fit(BoringModel())
    assert len(seen["rows"]) == (4 if flush else 0)  # the learning rates of steps 0-3
