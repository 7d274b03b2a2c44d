"""Learning-rate schedules of the presets in ``conf/schedule/`` that torch does not have.

Each is a per-epoch factor of the base rate, written as a pure function of the epoch, and a thin
:class:`~torch.optim.lr_scheduler.LRScheduler` that applies it (SRModule steps it once per epoch).
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LRScheduler


def warmup_cosine_factor(
    epoch: int, multiplier: float, warmup_epochs: int, max_epochs: int
) -> float:
    """The factor of the base rate in (0-based) ``epoch`` of SRNO's schedule.

    As the SRNO code's ``train.py`` (``GradualWarmupScheduler`` over ``CosineAnnealingLR``, the
    scheduler stepped with the number of each finished epoch): a linear warm-up from 1 to
    ``multiplier`` over ``warmup_epochs`` epochs, the peak held one epoch more (its cosine takes
    over one step late), then a cosine from ``multiplier`` towards 0 over the other
    ``max_epochs - warmup_epochs`` epochs::

        e <= T:     1 + (m - 1) e / T
        e == T + 1: m
        e >= T + 2: m (1 + cos(π (e - T) / (E - T))) / 2
    """
    if epoch <= warmup_epochs:
        return 1 + (multiplier - 1) * epoch / warmup_epochs
    if epoch == warmup_epochs + 1:
        return float(multiplier)
    progress = (epoch - warmup_epochs) / (max_epochs - warmup_epochs)
    return multiplier * (1 + math.cos(math.pi * progress)) / 2


class WarmupCosine(LRScheduler):
    """SRNO's schedule (:func:`warmup_cosine_factor`): ``base lr × factor(epoch)``.

    ``multiplier``: the peak over the base rate (SRNO: 10); ``warmup_epochs``: the warm-up's
    length (SRNO: 50); ``max_epochs``: the whole training's (SRNO: 1050).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        multiplier: float,
        warmup_epochs: int,
        max_epochs: int,
        last_epoch: int = -1,
    ) -> None:
        if multiplier < 1:
            raise ValueError(f"multiplier must be at least 1 (a warm-up), got {multiplier}")
        if not 0 < warmup_epochs < max_epochs:
            raise ValueError(
                f"need 0 < warmup_epochs < max_epochs, got {warmup_epochs} and {max_epochs}"
            )
        self.multiplier = float(multiplier)
        self.warmup_epochs = int(warmup_epochs)
        self.max_epochs = int(max_epochs)
        super().__init__(optimizer, last_epoch)

    def _factor(self) -> float:
        return warmup_cosine_factor(
            self.last_epoch, self.multiplier, self.warmup_epochs, self.max_epochs
        )

    def get_lr(self) -> list[float]:
        return [base * self._factor() for base in self.base_lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()
