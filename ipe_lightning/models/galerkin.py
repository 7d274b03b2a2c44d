"""Galerkin-type attention and the grid decoders built on it (docs/method.md §2.11).

A *grid decoder* answers a whole grid of queries at once: its output at one query depends on every
query decoded with it. Galerkin attention (Cao, NeurIPS 2021; the SRNO blocks of Wei & Zhang, CVPR
2023) couples the queries only through ``kᵀv / N``, a sum over the queries of per-query outer
products; everything else is per query. A :class:`GridSR` is therefore

    lift (per query) → global block → ... → global block → readout (per query)

where each global block has a ``summary`` (a sum over queries) and an ``apply`` (per query, given
the summary of all of them). That is what lets :meth:`GridSR.decode` take the whole grid in chunks
of bounded memory and still give the one-shot output: the summary of block ``i`` is accumulated
over the chunks in pass ``i``, and applied in every later pass (``n`` blocks, ``n + 1`` passes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import torch
from torch import nn

from ipe_lightning.coords import coord_of_indices
from ipe_lightning.models.base import check_lr
from ipe_lightning.models.grid import LatentGrid, Span

# SRNO code (models/galerkin.py): the layer norms add this to the standard deviation.
NORM_EPS = 1e-5


def std_layer_norm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = NORM_EPS
) -> torch.Tensor:
    """``weight · (x - mean) / (std + eps) + bias`` over the last axis, as SRNO's layer norm.

    Unlike ``nn.LayerNorm``: the standard deviation is the unbiased one (divisor ``n - 1``) and
    ``eps`` is added to it, not to the variance.
    """
    mean = x.mean(dim=-1, keepdim=True)
    return weight * (x - mean) / (x.std(dim=-1, keepdim=True) + eps) + bias


class HeadNorm(nn.Module):
    """:func:`std_layer_norm` over each head's channels, with an affine map per head and channel:
    ``weight``/``bias`` are ``(heads, 1, head_width)``, broadcast over ``(B, heads, Q, head_width)``
    (the SRNO code's shape, so its weights load unchanged)."""

    def __init__(self, heads: int, head_width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(heads, 1, head_width))
        self.bias = nn.Parameter(torch.zeros(heads, 1, head_width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return std_layer_norm(x, self.weight, self.bias)


class GalerkinAttention(nn.Module):
    """One SRNO block on ``x (B, Q, width)``, ``heads`` heads of ``width / heads`` channels:

        q, k, v = split(Wx + b)                 per head, channels [q | k | v] of each head
        a = q · (LN_k(k)ᵀ LN_v(v) / N)           the Galerkin product, N = the queries
        y = x + W₂ GELU(W₁ (x + a) + b₁) + b₂    both residuals start from x

    ``summary(x)`` is ``Σ_q LN_k(k_q)ᵀ LN_v(v_q)`` ``(B, heads, d, d)`` and ``apply(x, summary,
    count)`` the rest; ``forward(x)`` equals ``apply(x, summary(x), Q)``.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if heads < 1 or width % heads or width // heads < 2:
            raise ValueError(
                f"width {width} must split into {heads} heads of at least 2 channels each"
            )
        self.heads, self.head_width = heads, width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.key_norm = HeadNorm(heads, self.head_width)
        self.value_norm = HeadNorm(heads, self.head_width)
        self.mix = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """q, k, v, each ``(B, heads, Q, head_width)``: channels ``[q | k | v]`` of each head."""
        qkv = self.qkv(x).unflatten(-1, (self.heads, 3 * self.head_width)).transpose(1, 2)
        return qkv.chunk(3, dim=-1)

    def _moments(self, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.key_norm(k).transpose(-2, -1) @ self.value_norm(v)

    def _attend(self, x: torch.Tensor, q: torch.Tensor, summary: torch.Tensor, count: int):
        attention = (q @ (summary / count)).transpose(1, 2).flatten(2)  # head-major channels
        return x + self.mix(x + attention)

    def summary(self, x: torch.Tensor) -> torch.Tensor:
        _, k, v = self._split(x)
        return self._moments(k, v)

    def apply(self, x: torch.Tensor, summary: torch.Tensor, count: int) -> torch.Tensor:
        return self._attend(x, self._split(x)[0], summary, count)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(x)
        return self._attend(x, q, self._moments(k, v), x.shape[1])


class GlobalBlock(Protocol):
    """A block that couples the queries only through a sum over them."""

    def summary(self, x: torch.Tensor) -> torch.Tensor: ...

    def apply(self, x: torch.Tensor, summary: torch.Tensor, count: int) -> torch.Tensor: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


def check_grid_queries(coord: torch.Tensor, cell: torch.Tensor, batch: int) -> None:
    if coord.dim() < 3 or coord.shape[-1] != 2:
        raise ValueError(f"coord must be (B, ..., 2), e.g. (B, H, W, 2), got {tuple(coord.shape)}")
    if cell.shape != coord.shape:
        raise ValueError(
            f"cell must have the shape of coord {tuple(coord.shape)}, got {tuple(cell.shape)}"
        )
    if coord.shape[0] != batch:
        raise ValueError(f"coord has batch size {coord.shape[0]} but the features have {batch}")


class GridSR(nn.Module):
    """Encoder + grid decoder: ``net(lr, coord, cell)`` decodes all queries of ``coord`` together.

    ``coord`` and ``cell`` are ``(B, ..., 2)`` (a grid ``(B, H, W, 2)`` or a set ``(B, Q, 2)``: the
    queries' arrangement does not matter, only which are decoded together), the output is
    ``(B, ..., 3)``, normalised RGB. A subclass implements :meth:`tables`, :meth:`lift` and
    :meth:`readout` and holds its :class:`GlobalBlock` s in ``blocks`` (per-query layers between
    them belong to the blocks' ``apply``); the network keeps no state.
    """

    encoder: nn.Module
    blocks: nn.ModuleList

    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        """LR features ``(B, C, h, w)`` of the normalised ``lr``."""
        check_lr(lr)
        return self.encoder(lr)

    def tables(self, feat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The ``(B, h * w, D)`` tables the queries read, a row per LR position."""
        raise NotImplementedError

    def lift(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """``(B, Q, width)``: each query's input to the first block, from its own lookups."""
        raise NotImplementedError

    def readout(
        self, x: torch.Tensor, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor
    ) -> torch.Tensor:
        """``(B, Q, 3)``: each query's RGB from the last block's output ``x``."""
        raise NotImplementedError

    def prepare(self, feat: torch.Tensor) -> LatentGrid:
        size = tuple(feat.shape[-2:])
        return LatentGrid(self.tables(feat), size, (0, size[0]), (0, size[1]))

    def decode(
        self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor, chunk: int | None = None
    ) -> torch.Tensor:
        """Normalised RGB ``(B, ..., 3)`` of all queries of ``coord`` decoded together.

        ``chunk=None`` decodes them in one piece; ``chunk=n`` holds at most ``n`` queries per image
        at a time and gives the same output up to float rounding: ``len(blocks) + 1`` passes over
        the chunks, pass ``i`` accumulating block ``i``'s summary over all queries.
        """
        check_grid_queries(coord, cell, feat.shape[0])
        grid = self.prepare(feat)
        shape = coord.shape[:-1]
        coord, cell = coord.reshape(shape[0], -1, 2), cell.reshape(shape[0], -1, 2)
        count = coord.shape[1]
        if chunk is None or chunk >= count:
            x = self.lift(grid, coord, cell)
            for block in self.blocks:
                x = block(x)
            return self.readout(x, grid, coord, cell).reshape(*shape, 3)
        _check_chunk(chunk)
        rgb = self._in_passes(grid, lambda: _chunks(coord, cell, chunk), count)
        return torch.cat(rgb, dim=1).reshape(*shape, 3)

    def decode_image(
        self,
        feat: torch.Tensor,
        size: tuple[int, int],
        chunk: int | None = None,
        band: int | None = None,
    ) -> torch.Tensor:
        """Normalised RGB ``(B, H, W, 3)`` of every pixel of an ``H x W = size`` output.

        As :meth:`decode` of its pixel centres and cells (docs/method.md §1) as one grid, with the
        coordinates of only one chunk made at a time. ``band=k`` decodes each band of ``k`` rows
        as a grid of its own instead, as the SRNO code's validation (``eval_bsize``): a query then
        attends only to its band, which changes the output.
        """
        height = size[0]
        band = height if band is None else band
        if band < 1:
            raise ValueError(f"band must be a positive number of rows, got {band}")
        bands = [
            self._decode_rows(feat, size, (top, min(top + band, height)), chunk)
            for top in range(0, height, band)
        ]
        return torch.cat(bands, dim=1)

    def _decode_rows(
        self, feat: torch.Tensor, size: tuple[int, int], rows: Span, chunk: int | None
    ) -> torch.Tensor:
        """Rows ``[top, bottom)`` of an ``H x W = size`` output decoded as one grid."""
        (top, bottom), width, batch = rows, size[1], feat.shape[0]
        count = (bottom - top) * width
        cell = feat.new_tensor([2 / size[0], 2 / width])  # docs/method.md §1: the full pixel

        def coordinates(start: int, stop: int) -> torch.Tensor:
            index = torch.arange(top * width + start, top * width + stop, device=feat.device)
            return coord_of_indices(index, size, dtype=feat.dtype).expand(batch, -1, -1)

        if chunk is None or chunk >= count:
            coord = coordinates(0, count).unflatten(1, (bottom - top, width))
            return self.decode(feat, coord, cell.expand_as(coord))
        _check_chunk(chunk)

        def chunks() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            for start in range(0, count, chunk):
                coord = coordinates(start, min(start + chunk, count))
                yield coord, cell.expand_as(coord)

        rgb = self._in_passes(self.prepare(feat), chunks, count)
        return torch.cat(rgb, dim=1).unflatten(1, (bottom - top, width))

    def _in_passes(
        self, grid: LatentGrid, chunks: Callable[[], Iterator[tuple[torch.Tensor, ...]]], count: int
    ) -> list[torch.Tensor]:
        """The readout of every chunk: pass ``i`` sums block ``i``'s summary over the chunks."""
        summaries: list[torch.Tensor] = []
        for block in self.blocks:
            parts = (self._through(grid, c, e, summaries, count) for c, e in chunks())
            summaries.append(sum(block.summary(x) for x in parts))
        return [
            self.readout(self._through(grid, c, e, summaries, count), grid, c, e)
            for c, e in chunks()
        ]

    def _through(self, grid, coord, cell, summaries: list[torch.Tensor], count: int):
        """A chunk lifted and taken through the blocks whose summaries are known."""
        x = self.lift(grid, coord, cell)
        for block, summary in zip(self.blocks, summaries, strict=False):
            x = block.apply(x, summary, count)
        return x

    def forward(self, lr: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(lr), coord, cell)


def _check_chunk(chunk: int) -> None:
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of queries, got {chunk}")


def _chunks(
    coord: torch.Tensor, cell: torch.Tensor, size: int
) -> Iterator[tuple[torch.Tensor, ...]]:
    for start in range(0, coord.shape[1], size):
        yield coord[:, start : start + size], cell[:, start : start + size]
