"""Meta-SR (Hu et al. 2019) as re-implemented in the LIIF code base, with PE / IPE meta inputs
(paper Eqs. 9-10, docs/method.md §2).

Each query reads one LR pixel: the one that contains its HR pixel's top-left corner (nearest
lookup of the corner ``+ SHIFT_EPS``, clamped), with that pixel's 3x3-unfolded latent. The lookup
is local, so MetaSR is decoded tile by tile like LIIF; its owner is the looked-up pixel itself.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from ipe_lightning.coords import coord_of_indices
from ipe_lightning.models.base import ImplicitSR, check_queries
from ipe_lightning.models.encodings import CoordinateEncoding, MetaPlain
from ipe_lightning.models.grid import LatentGrid, Window, window_table
from ipe_lightning.models.lookup import (
    BORDER_EPS,
    SHIFT_EPS,
    nearest_index,
    take_rows,
    unfold_features,
)
from ipe_lightning.models.mlp import MLPFactory, PlainMLP

# The LIIF code base's MetaSR: meta input (o_y, o_x, 1/s), filter MLP 3 → 256 → 9C·3.
DEFAULT_ENCODING = MetaPlain()
DEFAULT_MLP = partial(PlainMLP, hidden=(256,))


class MetaSR(ImplicitSR):
    """Per-query filters predicted from the sub-pixel offset, applied to the unfolded latent.

    ``encoding`` makes the meta input from the offset ``o`` and the radius ``(1/s_h, 1/s_w)``
    (:class:`~ipe_lightning.models.encodings.MetaPlain`, ``PE`` or ``IPE``); ``mlp(width, 9C·3)``
    builds the filter MLP. The defaults are the LIIF code base's MetaSR (``3 → 256 → 9C·3``).
    """

    # lookup_anchor is the lookup itself, so the looked-up pixel is the owner.
    lookup_reach = 0
    table_reach = 1  # the 3x3 unfold

    def __init__(
        self,
        encoder: nn.Module,
        encoding: CoordinateEncoding = DEFAULT_ENCODING,
        mlp: MLPFactory = DEFAULT_MLP,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoding = encoding
        self.latent_dim = encoder.out_dim * 9
        self.mlp = mlp(encoding.width, self.latent_dim * 3)

    def tables(self, feat: torch.Tensor, window: Window) -> tuple[torch.Tensor]:
        return (window_table(unfold_features(feat), window),)

    def lookup_anchor(self, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """The looked-up point: the HR pixel's top-left corner, shifted and clamped."""
        corner = coord - cell / 2
        return (corner + SHIFT_EPS).clamp(-1 + BORDER_EPS, 1 - BORDER_EPS)

    def query_grid(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Normalised RGB ``(B, Q, 3)``: ``z · filter(meta input)`` per query (paper Eq. 9)."""
        (latent,) = grid.tables
        check_queries(latent, coord, cell)
        size = grid.lr_size
        half_lr_size = coord.new_tensor([size[0] / 2, size[1] / 2])
        corner = coord - cell / 2  # the HR pixel's top-left corner
        index = nearest_index(self.lookup_anchor(coord, cell), size)
        lr_corner = coord_of_indices(index, size, dtype=coord.dtype) - 1 / half_lr_size / 2
        offset = (corner - lr_corner) * half_lr_size  # in [0, 1)^2, LR-pixel units
        radius = cell * half_lr_size  # (1 / s_h, 1 / s_w)
        filters = self.mlp(self.encoding(offset, radius))
        filters = filters.view(*coord.shape[:2], self.latent_dim, 3)
        z = take_rows(latent, grid.local_index(index))
        return torch.einsum("bqd,bqdc->bqc", z, filters)
