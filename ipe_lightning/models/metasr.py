"""Meta-SR (Hu et al. 2019) as re-implemented in the LIIF code base, with PE / IPE meta inputs
(paper Eqs. 9-10, METHOD.md §2)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ipe_lightning.models.base import ImplicitSR, check_queries
from ipe_lightning.models.encodings import integrated_positional_encoding, positional_encoding
from ipe_lightning.models.lookup import (
    BORDER_EPS,
    SHIFT_EPS,
    feature_table,
    gather_rows,
    index_centers,
    nearest_index,
    unfold_features,
)
from ipe_lightning.models.mlp import PlainMLP

# (offset in LR-pixel units, inverse scale (1/s_h, 1/s_w), L) -> meta input
MetaInput = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def meta_plain(offset: torch.Tensor, inv_scale: torch.Tensor, bandwidth: int) -> torch.Tensor:
    return torch.cat([offset, inv_scale[..., :1]], dim=-1)  # paper Eq. 9: (o_y, o_x, 1/s)


def meta_pe(offset: torch.Tensor, inv_scale: torch.Tensor, bandwidth: int) -> torch.Tensor:
    return positional_encoding(offset, bandwidth)


def meta_ipe(offset: torch.Tensor, inv_scale: torch.Tensor, bandwidth: int) -> torch.Tensor:
    return integrated_positional_encoding(offset, inv_scale, bandwidth)  # paper Eq. 10


META_INPUTS: dict[str, tuple[MetaInput, Callable[[int], int]]] = {
    "plain": (meta_plain, lambda L: 3),
    "pe": (meta_pe, lambda L: 4 * L),
    "ipe": (meta_ipe, lambda L: 4 * L),
}


class MetaSR(ImplicitSR):
    """Per-query filters predicted from the sub-pixel offset, applied to the unfolded latent."""

    def __init__(
        self,
        encoder: nn.Module,
        meta_input: str = "plain",
        bandwidth: int = 10,
        hidden: list[int] | tuple[int, ...] = (256,),
    ) -> None:
        super().__init__()
        if meta_input not in META_INPUTS:
            raise ValueError(
                f"unknown MetaSR meta input {meta_input!r}; choose one of {sorted(META_INPUTS)}"
            )
        self.encoder = encoder
        self.meta_input_name = meta_input
        self.meta_input, width = META_INPUTS[meta_input]
        self.bandwidth = int(bandwidth)
        self.latent_dim = encoder.out_dim * 9
        self.mlp = PlainMLP(width(self.bandwidth), self.latent_dim * 3, list(hidden))

    def query(self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        check_queries(feat, coord, cell)
        size = feat.shape[-2:]
        half_lr_size = coord.new_tensor([size[0] / 2, size[1] / 2])
        corner = coord - cell / 2  # the HR pixel's top-left corner
        lookup = (corner + SHIFT_EPS).clamp_(-1 + BORDER_EPS, 1 - BORDER_EPS)
        index = nearest_index(lookup, size)
        lr_corner = index_centers(index, size, coord.dtype) - 1 / half_lr_size / 2
        offset = (corner - lr_corner) * half_lr_size  # in [0, 1)^2, LR-pixel units
        inv_scale = cell * half_lr_size  # (1 / s_h, 1 / s_w)
        filters = self.mlp(self.meta_input(offset, inv_scale, self.bandwidth))
        filters = filters.view(*coord.shape[:2], self.latent_dim, 3)
        latent = gather_rows(feature_table(unfold_features(feat)), index)
        return torch.einsum("bqd,bqdc->bqc", latent, filters)
