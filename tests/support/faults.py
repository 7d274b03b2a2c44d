"""Fault injection for end-to-end tests, plugged in as extra callbacks:
``+callbacks.fault._target_=tests.support.faults.KillAtStep +callbacks.fault.step=3``."""

from __future__ import annotations

import os
import signal

import pytorch_lightning as pl
import torch


class KillAtStep(pl.Callback):
    """Kill the process (SIGKILL: no clean-up at all) once ``global_step`` reaches ``step``."""

    def __init__(self, step: int, signal_name: str = "SIGKILL") -> None:
        self.step = step
        self.signal = getattr(signal, signal_name)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signal)


class PoisonWeightsAtStep(pl.Callback):
    """Fill the first parameter with NaN before the training step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))
