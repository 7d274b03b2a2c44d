"""Progress of the whole run (not only of the current epoch): Lightning's bars on a terminal,
periodic plain lines elsewhere (a SLURM log would get one carriage-return line of bars)."""

from __future__ import annotations

import sys
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar

from ipe_lightning.runtime.log import get_logger

log = get_logger(__name__)

DAY_S = 24 * 3600


def eta_seconds(elapsed_s: float, steps_done: int, steps_left: float) -> float | None:
    """Seconds left at the mean pace of the steps done so far; ``None`` before the first step or
    when the run has no known length."""
    if steps_done <= 0 or steps_left == float("inf"):
        return None
    return max(elapsed_s / steps_done * steps_left, 0.0)


def format_eta(seconds: float) -> str:
    """``HH:MM:SS``, with the days in front past 24 hours (``3d 00:00:00``)."""
    days, rest = divmod(int(seconds), DAY_S)
    clock = f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
    return f"{days}d {clock}" if days else clock


class _RunPace:
    """The ETA of the run's last training step, paced by the steps of this process (a resumed
    run is paced from where it resumed)."""

    def start(self, trainer: pl.Trainer) -> None:
        self._start_time, self._start_step = time.monotonic(), trainer.global_step

    def eta(self, trainer: pl.Trainer) -> str | None:
        total = trainer.estimated_stepping_batches
        if not total or not hasattr(self, "_start_step"):
            return None
        seconds = eta_seconds(
            time.monotonic() - self._start_time,
            trainer.global_step - self._start_step,
            total - trainer.global_step,
        )
        return None if seconds is None else format_eta(seconds)


class OverallProgressBar(TQDMProgressBar):
    """The bar shows ``ETA``: the time left until the last training step."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pace = _RunPace()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._pace.start(trainer)

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        eta = self._pace.eta(trainer)
        if eta is not None:
            metrics["ETA"] = eta
        return metrics


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class PlainProgress(ProgressBar):
    """One plain line every ``every_s`` seconds (and at the end of each stage), through the
    package logger, so it reaches the job's log file too::

        [train] step 120/1120 (11%) loss 0.0412 ETA 00:08:31
        [test] div2k/x4 40/100
    """

    def __init__(self, every_s: float = 30.0) -> None:
        super().__init__()
        self.every_s = float(every_s)
        self._enabled = True
        self._pace = _RunPace()
        self._last_line = -float("inf")

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _due(self, final: bool = False) -> bool:
        now = time.monotonic()
        if not self._enabled or not (final or now - self._last_line >= self.every_s):
            return False
        self._last_line = now
        return True

    def train_line(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> str:
        total = trainer.estimated_stepping_batches
        step = trainer.global_step
        line = f"[train] step {step}"
        if total and total != float("inf"):
            line += f"/{int(total)} ({100 * step / total:.0f}%)"
        for key, value in self.get_metrics(trainer, pl_module).items():
            if key != "v_num":
                line += f" {key.removeprefix('train/')} {_value(value)}"
        eta = self._pace.eta(trainer)
        return line + (f" ETA {eta}" if eta is not None else "")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._pace.start(trainer)
        self._last_line = time.monotonic()  # the first line after every_s, not at step 1

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        last = trainer.global_step >= trainer.estimated_stepping_batches
        if self._due(final=last):
            log.info(self.train_line(trainer, pl_module))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self._enabled:
            metrics = trainer.callback_metrics
            shown = " ".join(
                f"{key} {_value(float(value))}"
                for key, value in metrics.items()
                if key.startswith("val/")
            )
            log.info(f"[val] step {trainer.global_step} {shown}".rstrip())

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        total = trainer.num_test_batches[dataloader_idx]
        if self._due(final=batch_idx + 1 == total):
            names = list(getattr(pl_module, "test_sets", []) or [])
            loader = names[dataloader_idx] if dataloader_idx < len(names) else dataloader_idx
            done = f"{batch_idx + 1}/{int(total)}" if total != float("inf") else batch_idx + 1
            log.info(f"[test] {loader} {done}")


def stdout_is_terminal() -> bool:
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def progress_bar(plain: bool | str = "auto", every_s: float = 30.0) -> ProgressBar:
    """The run's progress callback: bars on a terminal, plain lines every ``every_s`` seconds
    when ``plain`` (``"auto"``: when stdout is not a terminal, e.g. a SLURM log file)."""
    if plain == "auto":
        plain = not stdout_is_terminal()
    if isinstance(plain, str):
        raise ValueError(f"progress plain must be auto, true or false, got {plain!r}")
    return PlainProgress(every_s=every_s) if plain else OverallProgressBar()
