"""A sampler whose every item carries its own random seed, so samples are reproducible.

:class:`EpochSampler` yields ``(index, sample_seed)`` pairs. The dataset builds a fresh
``numpy.random.Generator`` from ``sample_seed`` for each item, so what a sample looks like depends
on ``(seed, epoch, position in the epoch)`` only, never on which dataloader worker made it or how
many workers there are. Consequences:

- same seed, epoch, rank and world size → the same samples, for any ``num_workers``;
- different ranks get disjoint positions and so different samples; so do different workers;
- each epoch draws a new order and new seeds (``set_epoch``, which Lightning calls at the start of
  every epoch), so a resumed run goes on with fresh samples;
- mid-epoch resume: :attr:`EpochSampler.skip` is the number of this rank's items of the current
  epoch to leave out of the next iteration (``batches_done · batch_size``), so the sampler goes on
  exactly where the interrupted run stopped. It is used once and reset to 0; ``len()`` keeps
  counting the full epoch, which is what Lightning's restored batch counter expects.
  :class:`~ipe_lightning.data.datamodule.SRDataModule` sets ``skip`` and the epoch itself from the
  trainer's restored progress (Lightning draws the first indices before it calls ``set_epoch``).

Sharding follows ``torch.utils.data.DistributedSampler``: the epoch's order is padded by wrapping
around to a multiple of ``world_size`` and rank ``r`` takes positions ``r, r + world_size, ...``.
The trainer must run with ``use_distributed_sampler=False`` so Lightning does not shard again.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler

# Stream tags keep the training and validation seeds apart (they share ``seed``).
TRAIN_STREAM = 0
VAL_STREAM = 1


def derive_seed(*entropy: int) -> int:
    """A 64-bit seed from non-negative integers, via ``numpy.random.SeedSequence`` (well mixed)."""
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(index, sample_seed)`` for this rank's share of ``size`` items (module docstring).

    ``shuffle=False`` keeps the index order; ``reseed_each_epoch=False`` makes every epoch yield the
    same pairs (validation: the same patches at every validation run, so curves are comparable).
    """

    def __init__(
        self,
        size: int,
        *,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        reseed_each_epoch: bool = True,
        stream: int = TRAIN_STREAM,
    ) -> None:
        if size < 1:
            raise ValueError(f"an epoch needs at least one item, got size={size}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        if not 0 <= rank < world_size:
            raise ValueError(
                f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}"
            )
        self.size = size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.reseed_each_epoch = reseed_each_epoch
        self.stream = stream
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order and seeds the next iteration yields (Lightning calls it)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(self.size / self.world_size)

    def _epoch_tag(self) -> int:
        return self.epoch if self.reseed_each_epoch else 0

    def epoch_pairs(self) -> list[tuple[int, int]]:
        """All ``(index, sample_seed)`` pairs of this rank for the current epoch (no ``skip``)."""
        epoch = self._epoch_tag()
        if self.shuffle:
            order_rng = np.random.default_rng(derive_seed(self.seed, self.stream, epoch, 0))
            order = order_rng.permutation(self.size)
        else:
            order = np.arange(self.size)
        total = len(self) * self.world_size
        order = np.resize(order, total)  # wraps around, as DistributedSampler pads
        positions = range(self.rank, total, self.world_size)
        return [
            (int(order[p]), derive_seed(self.seed, self.stream, epoch, 1, p)) for p in positions
        ]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        skip, self.skip = self.skip, 0
        yield from self.epoch_pairs()[skip:]
