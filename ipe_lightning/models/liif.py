"""The LIIF family: LIIF, LIIF w/ PE and IPE-LIIF (paper Eq. 8, docs/method.md §2).

The coordinate encoding, the MLP and how the MLP is evaluated are parts
(:mod:`~ipe_lightning.models.encodings`, :mod:`~ipe_lightning.models.mlp`,
:mod:`~ipe_lightning.models.decoders`): the fast decoder gathers latent projections precomputed
per LR position, the naive one feeds ``[z, enc]`` to the MLP (the oracle).
"""

from __future__ import annotations

import torch
from torch import nn

from ipe_lightning.models.base import ImplicitSR, check_queries
from ipe_lightning.models.decoders import DecoderFactory, FastDecoder
from ipe_lightning.models.encodings import IPE, CoordinateEncoding
from ipe_lightning.models.grid import LatentGrid, Window
from ipe_lightning.models.lookup import ensemble_lookup, ensemble_weights
from ipe_lightning.models.mlp import MLPFactory, SkipMLP

# IPE-LIIF's encoding (docs/method.md §2: L = 10); its MLP is SkipMLP's default, 256 x 4.
DEFAULT_ENCODING = IPE(10)


class LIIF(ImplicitSR):
    """Local implicit image function with a coordinate encoding, an MLP and a decoder as parts.

    ``encoding`` is called with the relative coordinate ``c_t`` and the radius ``rel_cell / 2``
    (:mod:`~ipe_lightning.models.encodings`); ``mlp(in_dim, 3)`` builds the decoder MLP. The
    decoder input is ``[z (9C or C), encoding]`` in that order, so the first MLP layer's latent
    part is ``mlp.linears[0].weight[:, :latent_dim]``. ``decoder(mlp, latent_dim, feat_unfold)``
    builds how the MLP is evaluated (:class:`~ipe_lightning.models.decoders.FastDecoder` or
    :class:`~ipe_lightning.models.decoders.NaiveDecoder`); both read the same weights and give
    the same outputs. The defaults are IPE-LIIF's (L = 10, skip MLP 256 x 4, fast decoder).
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
        decoder: DecoderFactory = FastDecoder,
    ) -> None:
        super().__init__()
        if not callable(decoder):
            raise TypeError(
                "decoder must build the decoder part from (mlp, latent_dim, feat_unfold), e.g. "
                f"ipe_lightning.models.decoders.FastDecoder; got {decoder!r}"
            )
        self.encoder = encoder
        self.encoding = encoding
        self.local_ensemble = local_ensemble
        self.feat_unfold = feat_unfold
        self.latent_dim = encoder.out_dim * (9 if feat_unfold else 1)
        self.mlp = mlp(self.latent_dim + encoding.width, 3)
        self.decoder = decoder(self.mlp, self.latent_dim, feat_unfold)

    def tables(self, feat: torch.Tensor, window: Window) -> tuple[torch.Tensor, ...]:
        return self.decoder.tables(feat, window)

    def query_grid(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Normalised RGB ``(B, Q, 3)`` at ``coord`` with ``cell`` (LIIF local ensemble, Eq. 8)."""
        check_queries(grid.tables[0], coord, cell)
        rel_cell = cell * coord.new_tensor(grid.lr_size)  # (2/s_h, 2/s_w): cell in LR pixels
        index, rel_coord = ensemble_lookup(coord, grid.lr_size, self.local_ensemble)
        radius = (rel_cell / 2).expand_as(rel_coord)  # half the query pixel: (1 / s_h, 1 / s_w)
        predictions = self.decoder.decode(
            grid.tables, grid.local_index(index), self.encoding(rel_coord, radius)
        )
        weights = ensemble_weights(rel_coord)
        return sum(w.unsqueeze(-1) * p for w, p in zip(weights, predictions, strict=True))
