"""What a head reads per LR position: tables of a window of the LR grid (docs/method.md §2).

Every head answers queries from per-LR-position tables (LIIF's latent ``z`` or the fast decoder's
projections, MetaSR's unfolded latent). Building them for a window of the LR grid instead of the
whole grid is what lets :mod:`ipe_lightning.inference` decode whole images tile by tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ipe_lightning.models.lookup import feature_table

Span = tuple[int, int]  # [start, stop) along one axis of the LR grid
Window = tuple[slice, slice]  # (rows, cols) of a feature map


@dataclass(frozen=True)
class LatentGrid:
    """Tables of the LR positions in ``rows x cols`` of an ``lr_size`` LR grid.

    Each of ``tables`` is ``(B, N, D)`` with one row per position of the window, row-major (what
    the rows hold is the head's business). Query coordinates always refer to the whole LR grid, so
    a window gives the same numbers as the whole grid for every query whose lookups fall inside it.
    """

    tables: tuple[torch.Tensor, ...]
    lr_size: tuple[int, int]
    rows: Span
    cols: Span

    def local_index(self, index: torch.Tensor) -> torch.Tensor:
        """Row-major LR-grid ``index`` → row of the tables; fails if a lookup leaves the window."""
        if self.rows == (0, self.lr_size[0]) and self.cols == (0, self.lr_size[1]):
            return index
        row = torch.div(index, self.lr_size[1], rounding_mode="floor")
        col = index - row * self.lr_size[1]
        row, col = row - self.rows[0], col - self.cols[0]
        height, width = self.rows[1] - self.rows[0], self.cols[1] - self.cols[0]
        if index.numel() and (
            row.min() < 0 or row.max() >= height or col.min() < 0 or col.max() >= width
        ):
            raise ValueError(
                f"a query looks up an LR position outside the window rows {self.rows}, "
                f"cols {self.cols}; widen the window by the head's lookup reach"
            )
        return row * width + col


@dataclass(frozen=True)
class FeatureWindow:
    """A window ``rows x cols`` of an ``lr_size`` LR grid, and where it lies in a feature crop."""

    lr_size: tuple[int, int]
    rows: Span
    cols: Span
    crop: Window  # the window's slices of the features it was cut from

    @staticmethod
    def of(
        feat_size: tuple[int, int],
        *,
        lr_size: tuple[int, int] | None = None,
        offset: tuple[int, int] = (0, 0),
        rows: Span | None = None,
        cols: Span | None = None,
    ) -> FeatureWindow:
        """The window of features of ``feat_size`` that start at ``offset`` of an ``lr_size``
        grid (default: the features are the whole grid and the window is all of it)."""
        height, width = feat_size
        lr_size = (height, width) if lr_size is None else tuple(lr_size)
        rows = (offset[0], offset[0] + height) if rows is None else tuple(rows)
        cols = (offset[1], offset[1] + width) if cols is None else tuple(cols)
        if not (offset[0] <= rows[0] < rows[1] <= offset[0] + height) or not (
            offset[1] <= cols[0] < cols[1] <= offset[1] + width
        ):
            raise ValueError(
                f"window rows {rows}, cols {cols} is not inside the features at {offset} "
                f"of size {(height, width)}"
            )
        crop = (
            slice(rows[0] - offset[0], rows[1] - offset[0]),
            slice(cols[0] - offset[1], cols[1] - offset[1]),
        )
        return FeatureWindow(lr_size, rows, cols, crop)


def window_table(feature_map: torch.Tensor, window: Window) -> torch.Tensor:
    """``(B, D, h, w)`` → contiguous ``(B, N, D)``, a row per position of ``window``, row-major."""
    rows, cols = window
    # a strided view otherwise; gathers need each row contiguous
    return feature_table(feature_map[..., rows, cols]).contiguous()
