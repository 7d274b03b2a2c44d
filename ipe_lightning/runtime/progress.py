"""Lightning's progress bar, plus the ETA of the whole run (not only of the current epoch)."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar


def eta_seconds(elapsed_s: float, steps_done: int, steps_left: float) -> float | None:
    """Seconds left at the mean pace of the steps done so far; ``None`` before the first step or
    when the run has no known length."""
    if steps_done <= 0 or steps_left == float("inf"):
        return None
    return max(elapsed_s / steps_done * steps_left, 0.0)


def format_eta(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


class OverallProgressBar(TQDMProgressBar):
    """The bar shows ``ETA``: the time left until the last training step, paced by the steps of
    this process (a resumed run is paced from where it resumed)."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._start_time, self._start_step = time.monotonic(), trainer.global_step

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        total = trainer.estimated_stepping_batches
        if total and hasattr(self, "_start_step"):
            seconds = eta_seconds(
                time.monotonic() - self._start_time,
                trainer.global_step - self._start_step,
                total - trainer.global_step,
            )
            if seconds is not None:
                metrics["ETA"] = format_eta(seconds)
        return metrics
