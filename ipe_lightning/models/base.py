"""The network API shared by every implicit decoder.

``net(lr, coord, cell) -> (B, Q, 3)`` equals ``net.query(net.encode(lr), coord, cell)``. ``lr`` is
normalised to ``[-1, 1]`` (``(x - 0.5) / 0.5``), ``coord``/``cell`` follow the LIIF convention and
the output is normalised RGB (docs/method.md §1-2). The network keeps no state between calls.

A query runs in two steps: :meth:`ImplicitSR.prepare` turns features into per-LR-position tables
(a :class:`~ipe_lightning.models.grid.LatentGrid`, possibly of a window of the LR grid) and
:meth:`ImplicitSR.query_grid` answers queries from them. Whole images are decoded tile by tile
through the same two steps (:mod:`ipe_lightning.inference`).

A new head subclasses :class:`ImplicitSR` and implements :meth:`~ImplicitSR.tables` and
:meth:`~ImplicitSR.query_grid`; if its lookups are not LIIF's (within one LR pixel of the one
nearest the query) it also sets :attr:`~ImplicitSR.lookup_reach` and
:meth:`~ImplicitSR.lookup_anchor`.
"""

from __future__ import annotations

import torch
from torch import nn

from ipe_lightning.models.grid import FeatureWindow, LatentGrid, Span, Window


def check_lr(lr: torch.Tensor) -> None:
    if not isinstance(lr, torch.Tensor) or lr.dim() != 4:
        shape = tuple(lr.shape) if isinstance(lr, torch.Tensor) else type(lr).__name__
        raise ValueError(f"lr must be a (B, 3, h, w) tensor, got shape {shape}")
    if lr.shape[1] != 3:
        raise ValueError(
            f"lr must have 3 (RGB) channels, got {lr.shape[1]} in shape {tuple(lr.shape)}"
        )


def check_queries(feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> None:
    if coord.dim() != 3 or coord.shape[-1] != 2:
        raise ValueError(f"coord must be (B, Q, 2), got shape {tuple(coord.shape)}")
    if cell.shape != coord.shape:
        raise ValueError(
            f"cell must have the shape of coord {tuple(coord.shape)}, got {tuple(cell.shape)}"
        )
    if coord.shape[0] != feat.shape[0]:
        raise ValueError(
            f"coord has batch size {coord.shape[0]} but the features have {feat.shape[0]}"
        )


class ImplicitSR(nn.Module):
    """Encoder + implicit head. Subclasses implement :meth:`tables` and :meth:`query_grid`."""

    encoder: nn.Module
    # LR pixels a query's lookups reach beyond the LR pixel nearest its lookup_anchor.
    lookup_reach: int = 1
    # LR pixels of features beyond a position that its table rows depend on (a 3x3 unfold or
    # convolution: 1).
    table_reach: int = 1

    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        """LR features ``(B, C, h, w)`` of the normalised ``lr``."""
        check_lr(lr)
        return self.encoder(lr)

    def tables(self, feat: torch.Tensor, window: Window) -> tuple[torch.Tensor, ...]:
        """The ``(B, N, D)`` tables the queries read, a row per position of ``window`` of
        ``feat``; rows may depend on features up to :attr:`table_reach` positions away."""
        raise NotImplementedError

    def query_grid(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Normalised RGB ``(B, Q, 3)`` at ``coord`` with ``cell``, read from ``grid``."""
        raise NotImplementedError

    def lookup_anchor(self, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """The point whose nearest LR pixel owns a query: its lookups stay within
        :attr:`lookup_reach` LR pixels of that one. Elementwise per axis. Default: the query."""
        return coord

    def prepare(
        self,
        feat: torch.Tensor,
        *,
        lr_size: tuple[int, int] | None = None,
        offset: tuple[int, int] = (0, 0),
        rows: Span | None = None,
        cols: Span | None = None,
    ) -> LatentGrid:
        """Tables for queries against the features ``feat (B, C, h', w')``.

        By default ``feat`` is the whole LR grid. For tiles, ``feat`` covers the LR positions from
        ``offset`` of an ``lr_size`` grid, and only the window ``rows x cols`` (LR-grid indices) is
        kept: a table row sees zero padding beyond the edge of ``feat``, so a window that is not on
        the image border must stay :attr:`table_reach` LR pixels inside ``feat``.
        """
        window = FeatureWindow.of(
            tuple(feat.shape[-2:]), lr_size=lr_size, offset=offset, rows=rows, cols=cols
        )
        return LatentGrid(self.tables(feat, window.crop), window.lr_size, window.rows, window.cols)

    def query(self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        check_queries(feat, coord, cell)
        return self.query_grid(self.prepare(feat), coord, cell)

    def forward(self, lr: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return self.query(self.encode(lr), coord, cell)
