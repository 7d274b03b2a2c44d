"""Fixed-scale networks: an encoder with its sub-pixel upsampler, trained for one scale
(EDSR-baseline ×2/×3/×4 of Table 1, RDN ×2/×3/×4 of Table 2; docs/method.md §2).

As in the LIIF code base (``train_edsr-baseline-x2.yaml``: a LIIF whose encoder keeps its
upsampling tail and whose decoder is nearest sampling of the upsampled map), a query reads the
pixel of the ×k map nearest to it. Through the head API that map is held per LR position: each
position's table row holds its k·k sub-pixels (``pixel_unshuffle``), so whole images decode tile
by tile like every other head. The network serves its own scale only; upsampling by another is
refused (:func:`other_scale_error`) unless a resampler is asked for
(:mod:`ipe_lightning.models.resample`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ipe_lightning.errors import SettingError
from ipe_lightning.models.base import ImplicitSR, check_lr, check_queries
from ipe_lightning.models.encoders import EDSRBaseline, conv3x3
from ipe_lightning.models.grid import LatentGrid, Window, window_table
from ipe_lightning.models.lookup import nearest_index, take_rows
from ipe_lightning.scales import as_scale_pair, scale_tag

SCALES = (2, 3, 4)
# EDSR-PyTorch trains on pixel values in [0, 255] (its option rgb_range).
RGB_RANGE = 255.0


def fixed_scale(scale: object) -> int:
    """``scale`` as an int if it is one of :data:`SCALES`, else a :class:`SettingError`."""
    if isinstance(scale, bool) or scale not in SCALES:
        raise SettingError(
            f"model.net.scale={scale!r}: a fixed-scale network upsamples by one of {SCALES}"
        )
    return int(scale)


def pixel_shuffle_stages(scale: int) -> list[int]:
    """EDSR's ``Upsampler`` / RDN's ``UPNet``: one PixelShuffle(3) for ×3, PixelShuffle(2) stages
    for powers of two (two for ×4)."""
    scale = fixed_scale(scale)
    return [3] if scale == 3 else [2] * (scale // 2)


class SubPixelUpsampler(nn.Sequential):
    """Features ``(B, C, h, w)`` → RGB ``(B, 3, k·h, k·w)``: per stage a 3x3 conv to ``r²·C``
    channels and PixelShuffle(r), then a 3x3 conv to RGB (EDSR's ``tail``, RDN's ``UPNet`` with
    G = G0). Layout ``[stages, output conv]``, as EDSR-PyTorch's ``tail`` (``tail.0.0``,
    ``tail.0.2``, ``tail.1``), so its files load without renames."""

    def __init__(self, channels: int, scale: int) -> None:
        stages: list[nn.Module] = []
        for r in pixel_shuffle_stages(scale):
            stages += [conv3x3(channels, r * r * channels), nn.PixelShuffle(r)]
        super().__init__(nn.Sequential(*stages), conv3x3(channels, 3))


def _snake_case(name: str) -> str:
    """``EDSRBaseline`` → ``edsr_baseline``, ``RDN`` → ``rdn``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


class FixedScaleSR(ImplicitSR):
    """``encoder`` + :class:`SubPixelUpsampler` for ``scale`` (2, 3 or 4); queries are answered by
    nearest sampling of the ×``scale`` map (LIIF code: ``grid_sample(mode="nearest")``)."""

    # A query reads the LR pixel that holds its nearest HR pixel: the LR pixel nearest to it, or
    # its neighbour for a query on an LR pixel's edge (the two grids round ties apart).
    lookup_reach = 1
    # A position's sub-pixels read the upsampler's first conv (1 LR pixel) and the convs at the
    # upsampled resolution (1 pixel there: together less than 1 more LR pixel, at ×2, ×3, ×4).
    table_reach = 2

    def __init__(self, encoder: nn.Module, scale: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.scale = fixed_scale(scale)
        self.tail = SubPixelUpsampler(encoder.out_dim, self.scale)

    @property
    def label(self) -> str:
        """The model's name in messages: ``edsr_baseline_x2``, ``rdn_x3``."""
        return f"{_snake_case(type(self.encoder).__name__)}_x{self.scale}"

    def upsampled(self, feat: torch.Tensor) -> torch.Tensor:
        """The normalised ×k RGB map ``(B, 3, k·h, k·w)`` of the features ``feat``."""
        return self.tail(feat)

    def tables(self, feat: torch.Tensor, window: Window) -> tuple[torch.Tensor]:
        """One row per LR position: its k·k sub-pixels, channel ``c·k² + dy·k + dx``."""
        return (window_table(F.pixel_unshuffle(self.upsampled(feat), self.scale), window),)

    def query_grid(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Normalised RGB ``(B, Q, 3)``: the pixel of the ×k map nearest to each query."""
        (sub_pixels,) = grid.tables
        check_queries(sub_pixels, coord, cell)
        k = self.scale
        height, width = grid.lr_size
        hr_index = nearest_index(coord, (k * height, k * width))  # non-negative: // is exact
        row, col = hr_index // (k * width), hr_index % (k * width)
        lr_index = (row // k) * width + col // k
        sub_pixel = (row % k) * k + col % k
        values = take_rows(sub_pixels, grid.local_index(lr_index))  # (B, Q, 3k²)
        channels = sub_pixel.unsqueeze(-1) + k * k * torch.arange(3, device=coord.device)
        return values.gather(-1, channels)

    def serves(self, lr_size: Sequence[int], hr_size: Sequence[int]) -> bool:
        """Whether ``hr_size`` is this network's own ×k of ``lr_size``."""
        return tuple(hr_size) == (self.scale * lr_size[0], self.scale * lr_size[1])


def other_scale_error(net: FixedScaleSR, scale: float | Sequence[float]) -> SettingError:
    """The refusal of a fixed-scale network asked for another ``scale``, naming the baseline
    that serves it."""
    k = net.scale
    return SettingError(
        f"{net.label} upsamples by x{k} only; for {scale_tag(scale)} use "
        f"test.resample=bicubic|lanczos (the network's x{k}, then a resize)"
    )


def scale_of(lr_size: Sequence[int], hr_size: Sequence[int]) -> tuple[float, float]:
    """The scale ``(H / h, W / w)`` of an upsampling, to two decimals (for messages)."""
    return as_scale_pair(tuple(round(o / i, 2) for i, o in zip(lr_size, hr_size, strict=True)))


class EDSRPyTorch(FixedScaleSR):
    """EDSR as the EDSR-PyTorch code base runs it (github sanghyun-son/EDSR-PyTorch), for its
    published weights: on pixel values in ``[0, rgb_range]``, with its mean shifts ``sub_mean``
    before the head and ``add_mean`` after the tail (1x1 convs whose values come with the
    weights), between our normalised input and output (``(x - 0.5) / 0.5``)."""

    def __init__(self, n_resblocks: int, n_feats: int, scale: int) -> None:
        super().__init__(EDSRBaseline(n_resblocks=n_resblocks, n_feats=n_feats), scale)
        self.sub_mean = nn.Conv2d(3, 3, 1)
        self.add_mean = nn.Conv2d(3, 3, 1)
        self.full = (n_resblocks, n_feats) != (16, 64)

    @property
    def label(self) -> str:
        return f"{'edsr' if self.full else 'edsr_baseline'}_x{self.scale}"

    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        check_lr(lr)
        pixels = (lr * 0.5 + 0.5) * RGB_RANGE
        return self.encoder(self.sub_mean(pixels))

    def upsampled(self, feat: torch.Tensor) -> torch.Tensor:
        pixels = self.add_mean(self.tail(feat))
        return (pixels / RGB_RANGE - 0.5) / 0.5
