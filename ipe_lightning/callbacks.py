"""Lightning callbacks of the suite: preemption checkpoint, overall ETA, SR example panels."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.utilities.exceptions import SIGTERMException


def last_checkpoint_path(trainer: pl.Trainer) -> Path | None:
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath:
            return (
                Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
            )
    return None


class PreemptionCheckpoint(pl.Callback):
    """On SIGTERM (cluster preemption or time-out) save ``last.ckpt`` before the process exits.

    Lightning turns SIGTERM into a ``SIGTERMException`` inside the training loop; this callback
    writes the checkpoint from ``on_exception`` so a requeued job resumes where it stopped.
    """

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return
        path = last_checkpoint_path(trainer)
        if path is not None:
            trainer.save_checkpoint(path)


class OverallProgressBar(TQDMProgressBar):
    """Lightning's bar, plus the ETA of the whole run (not only of the current epoch)."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._start_time, self._start_step = time.monotonic(), trainer.global_step

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        done = trainer.global_step - getattr(self, "_start_step", trainer.global_step)
        total = trainer.estimated_stepping_batches
        if done > 0 and total and total != float("inf"):
            seconds = (time.monotonic() - self._start_time) / done * (total - trainer.global_step)
            metrics["ETA"] = time.strftime("%H:%M:%S", time.gmtime(max(seconds, 0)))
        return metrics


def example_panel(example: dict[str, torch.Tensor], crop: int = 96) -> np.ndarray:
    """A uint8 panel LR (nearest-upsampled) | bicubic | SR | HR of a central HR crop."""
    hr = example["hr"][0]
    height, width = hr.shape[-2:]
    side_h, side_w = min(crop, height), min(crop, width)
    top, left = (height - side_h) // 2, (width - side_w) // 2
    lr_up = F.interpolate(example["lr"], size=(height, width), mode="nearest")[0]
    tiles = [
        image[:, top : top + side_h, left : left + side_w]
        for image in (lr_up, example["bicubic"][0], example["sr"][0], hr)
    ]
    panel = torch.cat(tiles, dim=-1).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return (panel * 255).round().astype(np.uint8)


class ExampleImages(pl.Callback):
    """After testing, writes LR | bicubic | SR | HR panels to ``<dir>/`` and to image loggers."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        examples = getattr(pl_module, "examples", [])
        if not examples or not trainer.is_global_zero:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        for example in examples:
            panel = example_panel(example)
            stem = f"{example['key'].removeprefix('test/').replace('/', '_')}_{example['name']}"
            Image.fromarray(panel).save(self.dirpath / f"{stem}.png")
            for logger in trainer.loggers:
                if hasattr(logger, "log_image"):
                    logger.log_image(
                        key=f"examples/{example['key'].removeprefix('test/')}",
                        images=[panel],
                        caption=[f"{example['name']}: LR | bicubic | SR | HR"],
                    )
