"""Feature encoders without upsampling tails: EDSR-baseline and RDN (config B), docs/method.md §2.

Module names follow the LIIF code base so its state dicts load with few renames.
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class ResidualBlock(nn.Module):
    """conv3x3 – ReLU – conv3x3 plus identity (EDSR, res_scale 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(channels, channels), nn.ReLU(), conv3x3(channels, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class EDSRBaseline(nn.Module):
    """EDSR-baseline (Lim et al. 2017) without mean shift or upsampler: 64 channels at LR size."""

    def __init__(self, n_resblocks: int = 16, n_feats: int = 64) -> None:
        super().__init__()
        self.out_dim = n_feats
        self.head = nn.Sequential(conv3x3(3, n_feats))
        self.body = nn.Sequential(
            *[ResidualBlock(n_feats) for _ in range(n_resblocks)], conv3x3(n_feats, n_feats)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return x + self.body(x)  # global skip from the head output


class DenseLayer(nn.Module):
    """One RDB layer: conv3x3 + ReLU whose output is concatenated to its input."""

    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv3x3(in_channels, growth), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(x)], dim=1)


class ResidualDenseBlock(nn.Module):
    """``n_layers`` dense layers, 1x1 local feature fusion and a local residual."""

    def __init__(self, channels: int, growth: int, n_layers: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            *[DenseLayer(channels + i * growth, growth) for i in range(n_layers)]
        )
        self.LFF = nn.Conv2d(channels + n_layers * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.LFF(self.convs(x))


class RDN(nn.Module):
    """RDN (Zhang et al. 2018), config B: G0 = 64, D = 16 blocks of C = 8 layers, growth G = 64."""

    def __init__(
        self, n_feats: int = 64, n_blocks: int = 16, n_layers: int = 8, growth: int = 64
    ) -> None:
        super().__init__()
        self.out_dim = n_feats
        self.SFENet1 = conv3x3(3, n_feats)
        self.SFENet2 = conv3x3(n_feats, n_feats)
        self.RDBs = nn.ModuleList(
            [ResidualDenseBlock(n_feats, growth, n_layers) for _ in range(n_blocks)]
        )
        self.GFF = nn.Sequential(
            nn.Conv2d(n_blocks * n_feats, n_feats, 1), conv3x3(n_feats, n_feats)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.SFENet1(x)
        x = self.SFENet2(shallow)
        block_outputs = []
        for block in self.RDBs:
            x = block(x)
            block_outputs.append(x)
        return self.GFF(torch.cat(block_outputs, dim=1)) + shallow
