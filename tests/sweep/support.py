"""Helpers of the sweep tests: a slow-down callback and running ``sweep.py`` as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytorch_lightning as pl

REPO = Path(__file__).resolve().parents[2]
SLOW = "+callbacks.slow._target_=tests.sweep.support.SleepPerStep"


class SleepPerStep(pl.Callback):
    """Sleep after every training step: widens the window in which a test can kill a sweep.
    ``first_attempt_only``: not once the run resumed from a checkpoint (a requeued job)."""

    def __init__(self, seconds: float = 0.5, first_attempt_only: bool = False) -> None:
        self.seconds = seconds
        self.first_attempt_only = first_attempt_only
        self.active = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.active = not (self.first_attempt_only and trainer.ckpt_path)

    def on_train_batch_end(self, *args, **kwargs) -> None:
        if self.active:
            time.sleep(self.seconds)


def write_sweep_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def sweep_env() -> dict[str, str]:
    """The tests' helper modules importable from every process a sweep starts (submitit's too)."""
    python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": python_path, "PYTHONUNBUFFERED": "1"}


def sweep_command(arguments: list[str]) -> list[str]:
    return [sys.executable, str(REPO / "sweep.py"), *arguments]


def run_sweep(arguments: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        sweep_command(arguments),
        cwd=cwd,
        env=sweep_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
