"""The save on SIGTERM writes ``last.ckpt`` at the step reached; any other exception (a NaN loss)
leaves the last good ``last.ckpt`` alone, which Lightning's ``OnExceptionCheckpoint`` does not."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, OnExceptionCheckpoint
from pytorch_lightning.demos.boring_classes import BoringModel
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ipe_lightning.module import NonFiniteLossError
from ipe_lightning.runtime.checkpoints import PreemptionCheckpoint, last_checkpoint_path


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
