"""Tile geometry for whole-image upsampling: which LR positions and HR pixels each tile covers.

The LR grid is cut into encoder tiles, each into decoder tiles. Every HR pixel belongs to the tile
of its owning LR pixel (the one nearest the head's ``lookup_anchor`` of the pixel), and a tile
decodes exactly its own pixels. What a decoder tile needs grows outward in rings:

- the window: the tile plus the head's ``lookup_reach`` (the LR positions its queries read);
- the context: the window plus the head's ``table_reach`` (the features those tables are made of);
- the encoder crop: the encoder tile plus both reaches plus the encoder's receptive radius (the LR
  pixels its features see), so the features of the context equal the whole image's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ipe_lightning.models.lookup import nearest_index

Span = tuple[int, int]  # [start, stop) along one axis

# Layers that change the grid: the conv-sum bound of receptive_radius does not hold across them.
_RESAMPLING = (
    nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d, nn.Upsample,
    nn.PixelShuffle, nn.PixelUnshuffle,
)  # fmt: skip


def receptive_radius(encoder: nn.Module) -> int:
    """LR pixels beyond which an encoder feature cannot see: the halo for tiled encoding.

    An encoder's own ``receptive_radius`` attribute wins. Otherwise every path through a
    feed-forward stack of stride-1 "same" convolutions passes each conv at most once, so the sum of
    their radii ``dilation * (k - 1) / 2`` bounds the receptive field: exact for EDSR-baseline
    (34 3x3 convs: 1 + 2 * 16 + 1) and RDN (its longest path runs through every 3x3 conv).
    """
    declared = getattr(encoder, "receptive_radius", None)
    if isinstance(declared, int):
        return declared
    radius = 0
    for module in encoder.modules():
        if isinstance(module, nn.Conv2d):
            same = module.padding == "same" or (
                module.padding != "valid"
                and all(
                    p == d * (k - 1) // 2 and k % 2 == 1
                    for p, d, k in zip(
                        module.padding, module.dilation, module.kernel_size, strict=True
                    )
                )
            )
            if module.stride != (1, 1) or not same:
                raise ValueError(
                    f"cannot bound the receptive field of {module}: tiled encoding needs "
                    "stride-1 convolutions with 'same' padding (or a receptive_radius attribute)"
                )
            radius += max(
                d * (k - 1) // 2 for d, k in zip(module.dilation, module.kernel_size, strict=True)
            )
        elif isinstance(module, _RESAMPLING):
            raise ValueError(f"cannot bound the receptive field of {module} for tiled encoding")
    return radius


def spans(length: int, side: int, start: int = 0) -> list[Span]:
    """``[start, length)`` cut into consecutive spans of at most ``side``."""
    return [(s, min(s + side, length)) for s in range(start, length, side)]


def grow(span: Span, margin: int, length: int) -> Span:
    """``span`` widened by ``margin`` on both sides, kept inside ``[0, length)``."""
    return max(0, span[0] - margin), min(length, span[1] + margin)


def owning_lr_pixels(anchor: torch.Tensor, lr_length: int) -> torch.Tensor:
    """For sorted 1-D anchors of HR pixels along an axis, the LR pixel nearest each one."""
    # nearest_index on an (lr_length x 1) grid is the 1-D nearest lookup of the anchor's row
    return nearest_index(torch.stack([anchor, anchor], dim=-1), (lr_length, 1))


def owned(owners: torch.Tensor, span: Span) -> Span:
    """HR pixels ``[i0, i1)`` whose owning LR pixel lies in ``span`` (owners are sorted)."""
    bounds = torch.searchsorted(owners, torch.tensor(span, dtype=owners.dtype))
    return int(bounds[0]), int(bounds[1])


@dataclass(frozen=True)
class Reach:
    """How far, in LR pixels, decoding a tile reaches beyond it (see the module docstring)."""

    lookup: int  # the head's lookup_reach
    table: int  # the head's table_reach
    halo: int = 0  # the encoder's receptive radius when the encoder runs per tile, else 0


@dataclass(frozen=True)
class DecoderTile:
    """One LR tile ``rows x cols`` and the LR and HR ranges decoding it touches."""

    rows: Span
    cols: Span
    window_rows: Span  # the positions its queries read: the tile plus the lookup reach
    window_cols: Span
    context_rows: Span  # the features the window's tables are made of: plus the table reach
    context_cols: Span
    hr_rows: Span  # the HR pixels it owns (possibly none)
    hr_cols: Span

    @property
    def owns_pixels(self) -> bool:
        return self.hr_rows[1] > self.hr_rows[0] and self.hr_cols[1] > self.hr_cols[0]


@dataclass(frozen=True)
class EncoderTile:
    """The LR crop encoded at once (``crop_rows x crop_cols``) and its decoder tiles."""

    crop_rows: Span
    crop_cols: Span
    tiles: tuple[DecoderTile, ...]


def _tile_spans(
    lr_size: tuple[int, int], encoder_side: int, decoder_side: int
) -> list[tuple[Span, Span, list[tuple[Span, Span]]]]:
    """``(rows, cols, decoder tiles' (rows, cols))`` of every encoder tile, row-major."""
    return [
        (rows, cols, [(r, c) for r in spans(rows[1], decoder_side, rows[0])
                      for c in spans(cols[1], decoder_side, cols[0])])
        for rows in spans(lr_size[0], encoder_side)
        for cols in spans(lr_size[1], encoder_side)
    ]  # fmt: skip


def plan_tiles(
    lr_size: tuple[int, int],
    owners: tuple[torch.Tensor, torch.Tensor],
    reach: Reach,
    encoder_side: int,
    decoder_side: int,
) -> list[EncoderTile]:
    """Encoder tiles of side ``encoder_side``, each cut into decoder tiles of ``decoder_side``.

    ``owners`` are the owning LR row of every HR row and LR column of every HR column
    (:func:`owning_lr_pixels`).
    """
    height, width = lr_size
    owner_rows, owner_cols = owners
    outer = reach.lookup + reach.table + reach.halo

    def decoder_tile(rows: Span, cols: Span) -> DecoderTile:
        window_rows = grow(rows, reach.lookup, height)
        window_cols = grow(cols, reach.lookup, width)
        return DecoderTile(
            rows=rows,
            cols=cols,
            window_rows=window_rows,
            window_cols=window_cols,
            context_rows=grow(window_rows, reach.table, height),
            context_cols=grow(window_cols, reach.table, width),
            hr_rows=owned(owner_rows, rows),
            hr_cols=owned(owner_cols, cols),
        )

    return [
        EncoderTile(
            grow(rows, outer, height),
            grow(cols, outer, width),
            tuple(decoder_tile(*tile) for tile in tiles),
        )
        for rows, cols, tiles in _tile_spans(lr_size, encoder_side, decoder_side)
    ]


def count_decoder_tiles(lr_size: tuple[int, int], encoder_side: int, decoder_side: int) -> int:
    """How many decoder tiles :func:`plan_tiles` makes for an LR grid of ``lr_size``."""
    return sum(len(tiles) for *_, tiles in _tile_spans(lr_size, encoder_side, decoder_side))
