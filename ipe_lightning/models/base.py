"""The network API shared by every implicit decoder.

``net(lr, coord, cell) -> (B, Q, 3)`` equals ``net.query(net.encode(lr), coord, cell)``. ``lr`` is
normalised to ``[-1, 1]`` (``(x - 0.5) / 0.5``), ``coord``/``cell`` follow the LIIF convention and
the output is normalised RGB. The network keeps no state between calls.
"""

from __future__ import annotations

import torch
from torch import nn


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
    """Encoder + implicit head. Subclasses implement :meth:`query`."""

    encoder: nn.Module

    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        """LR features ``(B, C, h, w)`` of the normalised ``lr``."""
        check_lr(lr)
        return self.encoder(lr)

    def query(self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, lr: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return self.query(self.encode(lr), coord, cell)
