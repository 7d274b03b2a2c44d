"""The LIIF family: LIIF, LIIF w/ PE and IPE-LIIF (paper Eq. 8, docs/method.md §2).

The coordinate encoding and the MLP are parts (:mod:`~ipe_lightning.models.encodings`,
:mod:`~ipe_lightning.models.mlp`). How the MLP is evaluated is a part chosen once
(:data:`DECODER_IMPLS`): ``naive`` feeds ``[z, enc]`` to the MLP (the oracle), ``fast`` gathers
latent projections precomputed per LR position (:mod:`ipe_lightning.models.fast_decoder`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ipe_lightning.coords import coord_of_indices
from ipe_lightning.models.base import ImplicitSR, check_queries
from ipe_lightning.models.encodings import IPE, CoordinateEncoding
from ipe_lightning.models.fast_decoder import decode_projections, projection_tables
from ipe_lightning.models.grid import LatentGrid, Window, window_table
from ipe_lightning.models.lookup import (
    BORDER_EPS,
    ensemble_shifts,
    ensemble_weights,
    gather_rows,
    nearest_index,
    unfold_features,
)
from ipe_lightning.models.mlp import MLPFactory, SkipMLP

# The tables the decoder reads per LR position of a window:
# (mlp, feat (B, C, h, w), latent_dim, feat_unfold, (row slice, col slice)) -> ((B, N, D), ...).
TableBuilder = Callable[[nn.Module, torch.Tensor, int, bool, Window], tuple[torch.Tensor, ...]]
# Evaluate the MLP for every branch: (mlp, tables, index (K, B, Q), coord_input (K, B, Q, E),
# latent_dim) -> (K, B, Q, 3).
BranchDecoder = Callable[
    [nn.Module, tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor, int], torch.Tensor
]
# IPE-LIIF's encoding (docs/method.md §2: L = 10); its MLP is SkipMLP's default, 256 x 4.
DEFAULT_ENCODING = IPE(10)


@dataclass(frozen=True)
class DecoderImpl:
    """One way of evaluating the decoder MLP; every impl computes the same function."""

    tables: TableBuilder
    decode: BranchDecoder


def latent_tables(
    mlp: nn.Module, feat: torch.Tensor, latent_dim: int, feat_unfold: bool, window: Window
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
    """Local implicit image function with a coordinate encoding and an MLP as parts.

    ``encoding`` is called with the relative coordinate ``c_t`` and the radius ``rel_cell / 2``
    (:mod:`~ipe_lightning.models.encodings`); ``mlp(in_dim, 3)`` builds the decoder MLP. The
    decoder input is ``[z (9C or C), encoding]`` in that order, so the first MLP layer's latent
    part is ``mlp.linears[0].weight[:, :latent_dim]``. ``impl`` chooses how the MLP is evaluated
    (``fast`` or ``naive``); both read the same weights and give the same outputs. The defaults
    are IPE-LIIF's (L = 10, skip MLP 256 x 4).
    """

    # The ensemble's lookups of a query are the LR pixel nearest it or a neighbour.
    lookup_reach = 1
    # The 3x3 unfold (naive) and the 3x3 projection convolution (fast) read one LR pixel around.
    table_reach = 1

    def __init__(
        self,
        encoder: nn.Module,
        encoding: CoordinateEncoding = DEFAULT_ENCODING,
        mlp: MLPFactory = SkipMLP,
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
        self.encoding = encoding
        self.local_ensemble = local_ensemble
        self.feat_unfold = feat_unfold
        self.latent_dim = encoder.out_dim * (9 if feat_unfold else 1)
        self.mlp = mlp(self.latent_dim + encoding.width, 3)
        self.impl = impl
        self.decoder_impl = DECODER_IMPLS[impl]

    def tables(self, feat: torch.Tensor, window: Window) -> tuple[torch.Tensor, ...]:
        return self.decoder_impl.tables(self.mlp, feat, self.latent_dim, self.feat_unfold, window)

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
            centre = coord_of_indices(index, size, dtype=coord.dtype)
            rel_coords.append((coord - centre) * lr_size)
            indices.append(index)
        rel_coord = torch.stack(rel_coords)  # (K, B, Q, 2), one row per ensemble branch
        radius = (rel_cell / 2).expand_as(rel_coord)  # half the query pixel: (1 / s_h, 1 / s_w)
        predictions = self.decoder_impl.decode(
            self.mlp,
            grid.tables,
            grid.local_index(torch.stack(indices)),
            self.encoding(rel_coord, radius),
            self.latent_dim,
        )
        weights = ensemble_weights(rel_coord)
        return sum(w.unsqueeze(-1) * p for w, p in zip(weights, predictions, strict=True))
