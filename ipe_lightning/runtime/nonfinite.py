"""A NaN or infinite training loss stops training naming its step, before any checkpoint of the
weights it made is written.

Reading a loss on the host waits for the device, so on a GPU the losses are read in one go every
``log_every_n_steps`` steps (when Lightning reads the logged loss anyway), before every checkpoint
is saved and at the end of training; the bad steps in between run on NaN weights and are never
saved. On the CPU there is nothing to wait for: every loss is read at its step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch

from ipe_lightning.module import NonFiniteLossError

__all__ = ["NonFiniteLossError", "NonFiniteLossGuard"]


@dataclass(frozen=True)
class _Loss:
    """A training loss not yet read on the host, and where it was computed."""

    value: torch.Tensor
    step: int
    epoch: int
    batch: int


class NonFiniteLossGuard(pl.Callback):
    """Raise :class:`NonFiniteLossError` on the first NaN or infinite training loss (module doc).

    ``losses_read_each_step_on``: the device types whose every loss is read at its step; on the
    others the losses wait for the next logging step, checkpoint or the end of training.
    """

    def __init__(self, losses_read_each_step_on: Sequence[str] = ("cpu",)) -> None:
        self.losses_read_each_step_on = tuple(losses_read_each_step_on)
        self._unread: list[_Loss] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._unread = []

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        # A copy: a compiled step under CUDA graphs reuses its output's memory at the next step.
        batch = trainer.fit_loop.epoch_loop.batch_idx
        self._unread.append(
            _Loss(loss.detach().clone(), trainer.global_step, trainer.current_epoch, batch)
        )
        every = max(int(trainer.log_every_n_steps), 1)
        if (
            loss.device.type in self.losses_read_each_step_on
            or (trainer.global_step + 1) % every == 0
        ):
            self._raise_on_non_finite_loss()

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._raise_on_non_finite_loss()
        # Under DDP a bad loss on another rank reaches these weights through the gradients.
        if not torch.stack([p.isfinite().all() for p in pl_module.parameters()]).all():
            raise NonFiniteLossError(
                f"the network's weights are not finite at step {trainer.global_step} (a NaN or "
                "infinite loss or gradient, here or on another rank); stopping before the "
                "checkpoint is written. The last good checkpoint is kept in the run's "
                "checkpoints/ folder."
            )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._raise_on_non_finite_loss()

    def _raise_on_non_finite_loss(self) -> None:
        """Raise naming the first unread loss that is not finite; the losses count as read."""
        unread, self._unread = self._unread, []
        if not unread:
            return
        finite = torch.isfinite(torch.stack([loss.value for loss in unread])).tolist()
        for is_finite, loss in zip(finite, unread, strict=True):
            if not is_finite:
                raise NonFiniteLossError(
                    f"the training loss is {loss.value.item()} at step {loss.step} "
                    f"(epoch {loss.epoch}, batch {loss.batch}); stopping. The last good "
                    "checkpoint is kept in the run's checkpoints/ folder."
                )
