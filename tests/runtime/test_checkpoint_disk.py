"""What a finished training keeps on disk, from the real callbacks and trainer configs:
``last.ckpt`` (resume, evaluations); ``best.ckpt``; ``last.prev.ckpt`` only while training
runs."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import nn

from tests.support.runs import compose_config


class TinyRegression(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/psnr", -self.layer(batch[0]).pow(2).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(tmp_path, overrides: list[str]) -> set[str]:
    """Train 4 steps (last.ckpt every step) with the default callbacks' checkpointing and the
    default trainer's checkpoint writer; the names left in the checkpoint directory."""
    cfg = compose_config(
        ["trainer=cpu", "callbacks.last.every_n_train_steps=1", *overrides], output_dir=tmp_path
    )
    names = ("last", "best", "drop_previous")
    callbacks = [instantiate(cfg.callbacks[name]) for name in names if cfg.callbacks.get(name)]
    trainer = instantiate(
        cfg.trainer,
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=False,
        callbacks=callbacks,
        enable_progress_bar=False,
    )
    data = torch.utils.data.TensorDataset(torch.randn(8, 2))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    trainer.fit(TinyRegression(), loader, loader)
    return {path.name for path in (tmp_path / "checkpoints").iterdir()}


def test_a_finished_training_keeps_last_and_best_but_not_the_previous_last(tmp_path):
    assert fit(tmp_path, []) == {"last.ckpt", "best.ckpt"}


def test_the_previous_last_is_kept_when_asked(tmp_path):
    kept = fit(tmp_path, ["callbacks.drop_previous=null"])
    assert kept == {"last.ckpt", "best.ckpt", "last.prev.ckpt"}
