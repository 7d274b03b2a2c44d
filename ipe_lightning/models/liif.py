"""The LIIF family: LIIF, LIIF w/ PE and IPE-LIIF (paper Eq. 8, METHOD.md §2)."""

from __future__ import annotations

import torch
from torch import nn

from ipe_lightning.models.base import ImplicitSR, check_queries
from ipe_lightning.models.encodings import encoding_width, get_encoding
from ipe_lightning.models.lookup import (
    BORDER_EPS,
    ensemble_shifts,
    ensemble_weights,
    feature_table,
    gather_rows,
    index_centers,
    nearest_index,
    unfold_features,
)
from ipe_lightning.models.mlp import build_mlp


class LIIF(ImplicitSR):
    """Local implicit image function with a choice of coordinate encoding and MLP.

    The decoder input is ``[z (9C or C), encoding]`` in that order, so the first MLP layer's
    latent part is ``mlp.linears[0].weight[:, :latent_dim]``.
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
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoding_name = encoding
        self.encode_coord = get_encoding(encoding)
        self.bandwidth = int(bandwidth)
        self.local_ensemble = local_ensemble
        self.feat_unfold = feat_unfold
        self.latent_dim = encoder.out_dim * (9 if feat_unfold else 1)
        in_dim = self.latent_dim + encoding_width(encoding, self.bandwidth)
        self.mlp = build_mlp(mlp, in_dim, 3, hidden)

    def latent_map(self, feat: torch.Tensor) -> torch.Tensor:
        return unfold_features(feat) if self.feat_unfold else feat

    def query(self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        check_queries(feat, coord, cell)
        size = feat.shape[-2:]
        table = feature_table(self.latent_map(feat))
        lr_size = coord.new_tensor([size[0], size[1]])
        rel_cell = cell * lr_size  # (2 / s_h, 2 / s_w): the query cell in LR-pixel units
        predictions, rel_coords = [], []
        for shift in ensemble_shifts(size, self.local_ensemble):
            shifted = (coord + coord.new_tensor(shift)).clamp_(-1 + BORDER_EPS, 1 - BORDER_EPS)
            index = nearest_index(shifted, size)
            rel_coord = (coord - index_centers(index, size, coord.dtype)) * lr_size
            decoder_input = torch.cat(
                [gather_rows(table, index), self.encode_coord(rel_coord, rel_cell, self.bandwidth)],
                dim=-1,
            )
            predictions.append(self.mlp(decoder_input))
            rel_coords.append(rel_coord)
        weights = ensemble_weights(rel_coords)
        return sum(w.unsqueeze(-1) * p for w, p in zip(weights, predictions, strict=True))
