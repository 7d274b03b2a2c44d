"""The LIIF family: LIIF, LIIF w/ PE and IPE-LIIF (paper Eq. 8, METHOD.md §2).

A query runs in two steps: :meth:`LIIF.prepare` turns features into per-LR-position decoder tables
(a :class:`LatentGrid`, possibly of a window of the LR grid so whole images can be decoded tile by
tile), and :meth:`LIIF.query_grid` runs the local ensemble against it. How the MLP is evaluated is
a part chosen once (:data:`DECODER_IMPLS`): ``naive`` feeds ``[z, enc]`` to the MLP (the oracle),
``fast`` gathers precomputed latent projections (:mod:`ipe_lightning.models.fast_decoder`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ipe_lightning.models.base import ImplicitSR, check_queries
from ipe_lightning.models.encodings import encoding_width, get_encoding
from ipe_lightning.models.fast_decoder import decode_projections, projection_tables, window_table
from ipe_lightning.models.lookup import (
    BORDER_EPS,
    ensemble_shifts,
    ensemble_weights,
    gather_rows,
    index_centers,
    nearest_index,
    unfold_features,
)
from ipe_lightning.models.mlp import build_mlp


@dataclass(frozen=True)
class LatentGrid:
    """Decoder tables of the LR positions in ``rows x cols`` of an ``lr_size`` LR grid.

    Each of ``tables`` is ``(B, N, D)`` with one row per position of the window, row-major (the
    naive decoder has one, the latent ``z``; the fast one has a projection table per input
    layer). Query coordinates always refer to the whole LR grid, so a window gives the same
    numbers as the whole grid for every query whose ensemble lookups fall inside it.
    """

    tables: tuple[torch.Tensor, ...]
    lr_size: tuple[int, int]
    rows: tuple[int, int]
    cols: tuple[int, int]

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
                f"cols {self.cols}; widen the window by one LR pixel for the local ensemble"
            )
        return row * width + col


# The tables the decoder reads per LR position of a window:
# (mlp, feat (B, C, h, w), latent_dim, feat_unfold, (row slice, col slice)) -> ((B, N, D), ...).
TableBuilder = Callable[
    [nn.Module, torch.Tensor, int, bool, tuple[slice, slice]], tuple[torch.Tensor, ...]
]
# Evaluate the MLP for every branch: (mlp, tables, index (K, B, Q), coord_input (K, B, Q, E),
# latent_dim) -> (K, B, Q, 3).
BranchDecoder = Callable[
    [nn.Module, tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor, int], torch.Tensor
]


@dataclass(frozen=True)
class DecoderImpl:
    """One way of evaluating the decoder MLP; every impl computes the same function."""

    tables: TableBuilder
    decode: BranchDecoder


def latent_tables(
    mlp: nn.Module,
    feat: torch.Tensor,
    latent_dim: int,
    feat_unfold: bool,
    window: tuple[slice, slice],
) -> tuple[torch.Tensor]:
    """The latent ``z`` at every LR position of the window: the unfolded (or plain) features."""
    return (window_table(unfold_features(feat) if feat_unfold else feat, window),)


def decode_naive(
    mlp: nn.Module,
    tables: tuple[torch.Tensor],
    index: torch.Tensor,
    coord_input: torch.Tensor,
    latent_dim: int,
) -> torch.Tensor:
    """The MLP on ``[z_t, enc_t]`` for each branch ``t`` (paper Eq. 8 as written)."""
    (latent,) = tables
    return torch.stack(
        [
            mlp(torch.cat([gather_rows(latent, branch_index), branch_input], dim=-1))
            for branch_index, branch_input in zip(index, coord_input, strict=True)
        ]
    )


DECODER_IMPLS: dict[str, DecoderImpl] = {
    "naive": DecoderImpl(tables=latent_tables, decode=decode_naive),
    "fast": DecoderImpl(tables=projection_tables, decode=decode_projections),
}


class LIIF(ImplicitSR):
    """Local implicit image function with a choice of coordinate encoding and MLP.

    The decoder input is ``[z (9C or C), encoding]`` in that order, so the first MLP layer's
    latent part is ``mlp.linears[0].weight[:, :latent_dim]``. ``impl`` chooses how the MLP is
    evaluated (``fast`` or ``naive``); both read the same weights and give the same outputs.
    """

    def __init__(
        self,
        encoder: nn.Module,
        encoding: str = "ipe",
        bandwidth: int = 10,
        mlp: str = "skip",
        hidden: list[int] | tuple[int, ...] = (256, 256, 256, 256),
        local_ensemble: bool = True,
        feat_unfold: bool = True,
        impl: str = "fast",
    ) -> None:
        super().__init__()
        if impl not in DECODER_IMPLS:
            raise ValueError(
                f"unknown decoder impl {impl!r}; choose one of {sorted(DECODER_IMPLS)}"
            )
        self.encoder = encoder
        self.encoding_name = encoding
        self.encode_coord = get_encoding(encoding)
        self.bandwidth = int(bandwidth)
        self.local_ensemble = local_ensemble
        self.feat_unfold = feat_unfold
        self.latent_dim = encoder.out_dim * (9 if feat_unfold else 1)
        in_dim = self.latent_dim + encoding_width(encoding, self.bandwidth)
        self.mlp = build_mlp(mlp, in_dim, 3, hidden)
        self.impl = impl
        self.decoder_impl = DECODER_IMPLS[impl]

    def latent_map(self, feat: torch.Tensor) -> torch.Tensor:
        """The latent ``z`` map ``(B, 9C or C, h, w)`` the decoder input starts with."""
        return unfold_features(feat) if self.feat_unfold else feat

    def prepare(
        self,
        feat: torch.Tensor,
        *,
        lr_size: tuple[int, int] | None = None,
        offset: tuple[int, int] = (0, 0),
        rows: tuple[int, int] | None = None,
        cols: tuple[int, int] | None = None,
    ) -> LatentGrid:
        """Decoder tables for queries against the features ``feat (B, C, h', w')``.

        By default ``feat`` is the whole LR grid. For tiles, ``feat`` covers the LR positions from
        ``offset`` of an ``lr_size`` grid, and only the window ``rows x cols`` (LR-grid indices) is
        kept: the 3x3 unfold at the edge of ``feat`` sees zero padding, so a window that is not on
        the image border must stay one LR pixel inside ``feat``.
        """
        height, width = feat.shape[-2:]
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
        window = (
            slice(rows[0] - offset[0], rows[1] - offset[0]),
            slice(cols[0] - offset[1], cols[1] - offset[1]),
        )
        tables = self.decoder_impl.tables(self.mlp, feat, self.latent_dim, self.feat_unfold, window)
        return LatentGrid(tables, lr_size, rows, cols)

    def query_grid(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Normalised RGB ``(B, Q, 3)`` at ``coord`` with ``cell`` (LIIF local ensemble, Eq. 8)."""
        check_queries(grid.tables[0], coord, cell)
        size = grid.lr_size
        lr_size = coord.new_tensor(size)
        rel_cell = cell * lr_size  # (2 / s_h, 2 / s_w): the query cell in LR-pixel units
        indices, rel_coords = [], []
        for shift in ensemble_shifts(size, self.local_ensemble):
            shifted = (coord + coord.new_tensor(shift)).clamp_(-1 + BORDER_EPS, 1 - BORDER_EPS)
            index = nearest_index(shifted, size)
            rel_coords.append((coord - index_centers(index, size, coord.dtype)) * lr_size)
            indices.append(index)
        rel_coord = torch.stack(rel_coords)  # (K, B, Q, 2), one row per ensemble branch
        coord_input = self.encode_coord(rel_coord, rel_cell.expand_as(rel_coord), self.bandwidth)
        predictions = self.decoder_impl.decode(
            self.mlp,
            grid.tables,
            grid.local_index(torch.stack(indices)),
            coord_input,
            self.latent_dim,
        )
        weights = ensemble_weights(rel_coord)
        return sum(w.unsqueeze(-1) * p for w, p in zip(weights, predictions, strict=True))

    def query(self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        check_queries(feat, coord, cell)
        return self.query_grid(self.prepare(feat), coord, cell)
