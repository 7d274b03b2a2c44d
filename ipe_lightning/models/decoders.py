"""How the LIIF family evaluates its decoder MLP: interchangeable parts, one function.

A decoder is built for one head with ``decoder(mlp, latent_dim, feat_unfold)`` and answers two
calls: :meth:`~LIIFDecoder.tables` (what a query reads per LR position of a window of the
features) and :meth:`~LIIFDecoder.decode` (the MLP for every ensemble branch of every query).
Both decoders read the MLP's own weights, so they share checkpoints and give the same outputs:

- :class:`FastDecoder` gathers latent projections precomputed once per LR position
  (:mod:`ipe_lightning.models.fast_decoder`): the default, for training and inference;
- :class:`NaiveDecoder` feeds ``[z, enc]`` to the MLP per query and branch (paper Eq. 8 as
  written): the oracle the fast one is tested against.

Config: ``model/decoder=fast|naive`` (``conf/model/decoder/``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from ipe_lightning.models.decode_calibration import inference_layout
from ipe_lightning.models.fast_decoder import (
    DEFAULT_LAYOUT,
    decode_projections,
    needs_autograd,
    projection_tables,
)
from ipe_lightning.models.grid import Window, window_table
from ipe_lightning.models.lookup import take_rows, unfold_features


class LIIFDecoder(Protocol):
    """What a LIIF-family head needs of its decoder."""

    def tables(self, feat: torch.Tensor, window: Window) -> tuple[torch.Tensor, ...]:
        """``(B, N, D)`` tables, a row per LR position of ``window`` of ``feat (B, C, h, w)``."""
        ...

    def decode(
        self, tables: tuple[torch.Tensor, ...], index: torch.Tensor, coord_input: torch.Tensor
    ) -> torch.Tensor:
        """The MLP on ``[z, enc]`` for every branch: ``index (K, B, Q)`` the rows of the
        tables, ``coord_input (K, B, Q, E)`` the coordinate encodings → ``(K, B, Q, 3)``."""
        ...


# (mlp, latent_dim, feat_unfold) -> the decoder of one head; the decoder classes themselves.
DecoderFactory = Callable[[nn.Module, int, bool], LIIFDecoder]


@dataclass(frozen=True, eq=False)
class NaiveDecoder:
    """The MLP on ``[z_t, enc_t]`` for each branch ``t`` (paper Eq. 8 as written); the oracle.

    ``mlp`` is the head's decoder MLP (held by the head, which owns its weights), ``latent_dim``
    the width of ``z`` (9C with ``feat_unfold``, else C).
    """

    mlp: nn.Module = field(repr=False)
    latent_dim: int
    feat_unfold: bool = True

    def tables(self, feat: torch.Tensor, window: Window) -> tuple[torch.Tensor]:
        """The latent ``z`` at every LR position of the window: the unfolded (or plain)
        features."""
        return (window_table(unfold_features(feat) if self.feat_unfold else feat, window),)

    def decode(
        self, tables: tuple[torch.Tensor, ...], index: torch.Tensor, coord_input: torch.Tensor
    ) -> torch.Tensor:
        (latent,) = tables
        return torch.stack(
            [
                self.mlp(torch.cat([take_rows(latent, branch_index), branch_input], dim=-1))
                for branch_index, branch_input in zip(index, coord_input, strict=True)
            ]
        )


@dataclass(frozen=True, eq=False)
class FastDecoder:
    """The same function from latent projections computed once per LR position (exact;
    :mod:`ipe_lightning.models.fast_decoder` has the algebra). Needs an MLP that declares its
    layers (:class:`~ipe_lightning.models.mlp.DecoderMLP`). Inference on a CPU groups its products
    in the layout measured fastest on the machine
    (:mod:`ipe_lightning.models.decode_calibration`); ``row_block`` fixes the row blocks instead."""

    mlp: nn.Module = field(repr=False)
    latent_dim: int
    feat_unfold: bool = True

    def tables(self, feat: torch.Tensor, window: Window) -> tuple[torch.Tensor, ...]:
        return projection_tables(self.mlp, feat, self.latent_dim, self.feat_unfold, window)

    def decode(
        self,
        tables: tuple[torch.Tensor, ...],
        index: torch.Tensor,
        coord_input: torch.Tensor,
        row_block: int | None = None,
    ) -> torch.Tensor:
        layout = DEFAULT_LAYOUT
        if row_block is None and not needs_autograd(self.mlp, tables, coord_input):
            layout = inference_layout(tables[0].device, rows=index.numel())
        return decode_projections(
            self.mlp, tables, index, coord_input, self.latent_dim, row_block, layout
        )
