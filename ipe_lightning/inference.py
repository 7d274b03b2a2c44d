"""Whole-image upsampling with bounded memory (METHOD.md §4: every HR pixel queried).

Heads with windowed lookup (the LIIF family: ``prepare`` / ``query_grid``) are decoded tile by tile
of the LR grid: each decoder tile's tables (the fast decoder's projections are 16x the feature
map) are built for the tile plus one LR pixel, queries run in chunks, and with ``tile=`` the
encoder also runs per tile with a halo of its receptive field. Every HR pixel is decoded from the
same LR positions with the same arithmetic as one query of the whole image, so the output does not
depend on the tiling. Other heads (MetaSR) query the whole feature map in chunks; with ``tile=``
that map is assembled from encoder tiles with the same halo.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from ipe_lightning.coords import coord_of_indices, pixel_centers
from ipe_lightning.models.base import ImplicitSR, check_lr
from ipe_lightning.models.lookup import nearest_index

# LIIF test code queries 30000 pixels at a time.
DEFAULT_MAX_QUERIES = 30000
# Side of the LR tiles whose decoder tables are built at once: (64 + 2)^2 positions x 1024 fast
# projections x 4 bytes = 18 MB per image, whatever the image size.
DECODER_TILE = 64
# LR pixels a decoder tile reaches beyond itself: one for the local ensemble's neighbours (the
# lookups of a query owned by LR pixel r are r - 1, r or r + 1) and one for the 3x3 unfold.
ENSEMBLE_MARGIN = 1
UNFOLD_MARGIN = 1

Progress = bool | Callable[[int, int], None]
# Layers that change the grid: the conv-sum bound of receptive_radius does not hold across them.
_RESAMPLING = (
    nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d, nn.Upsample,
    nn.PixelShuffle, nn.PixelUnshuffle,
)  # fmt: skip


def to_network_range(image: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` → the network's ``[-1, 1]`` (METHOD.md §2)."""
    return (image - 0.5) / 0.5


def from_network_range(prediction: torch.Tensor) -> torch.Tensor:
    """The network's output → ``[0, 1]``, clamped, no rounding to 8 bits (METHOD.md §4)."""
    return (prediction * 0.5 + 0.5).clamp(0, 1)


def as_scale_pair(scale: float | Sequence[float]) -> tuple[float, float]:
    """``s`` or ``(s_h, s_w)`` → ``(s_h, s_w)``, rejecting non-positive or non-finite values."""
    pair = (scale, scale) if isinstance(scale, int | float) else tuple(scale)
    if len(pair) != 2:
        raise ValueError(f"scale must be a number or a pair (s_h, s_w), got {scale!r}")
    for value in pair:
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"scale must be positive and finite, got {scale!r}")
    return float(pair[0]), float(pair[1])


def output_size(
    lr_size: tuple[int, int],
    scale: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
) -> tuple[int, int]:
    """The HR size for an LR of ``lr_size``: ``size`` itself, or ``round(h·s_h) x round(w·s_w)``."""
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale=... or size=(H, W)")
    if size is not None:
        if len(size) != 2 or any(
            not isinstance(n, int) or isinstance(n, bool) or n <= 0 for n in size
        ):
            raise ValueError(f"size must be two positive integers (H, W), got {size!r}")
        return int(size[0]), int(size[1])
    scale_h, scale_w = as_scale_pair(scale)
    return max(1, round(lr_size[0] * scale_h)), max(1, round(lr_size[1] * scale_w))


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


def owning_lr_pixel(hr_length: int, lr_length: int) -> torch.Tensor:
    """For each of ``hr_length`` HR pixels along an axis, the LR pixel nearest to its centre."""
    centres = pixel_centers(hr_length)
    # nearest_index on an (lr_length x 1) grid is the 1-D nearest lookup of the query's row
    return nearest_index(torch.stack([centres, centres], dim=-1), (lr_length, 1))


def spans(length: int, side: int, start: int = 0) -> list[tuple[int, int]]:
    """``[start, length)`` cut into consecutive spans of at most ``side``."""
    return [(s, min(s + side, length)) for s in range(start, length, side)]


def grow(span: tuple[int, int], margin: int, length: int) -> tuple[int, int]:
    """``span`` widened by ``margin`` on both sides, kept inside ``[0, length)``."""
    return max(0, span[0] - margin), min(length, span[1] + margin)


def count_tiles(lr_size: tuple[int, int], tile: int | None = None) -> int:
    """How many decoder tiles :func:`upsample` walks for an LR image of ``lr_size``."""
    encoder_side = tile or max(lr_size)
    return sum(
        len(spans(r1, min(DECODER_TILE, encoder_side), r0))
        * len(spans(c1, min(DECODER_TILE, encoder_side), c0))
        for r0, r1 in spans(lr_size[0], encoder_side)
        for c0, c1 in spans(lr_size[1], encoder_side)
    )


def _progress_reporter(
    progress: Progress, total: int, unit: str = "tile"
) -> tuple[Callable[[int, int], None], Callable]:
    """``(report(done, total), close())`` for the ``progress`` argument of :func:`upsample`."""
    if callable(progress):
        return progress, lambda: None
    if not progress:
        return (lambda done, total: None), lambda: None
    bar = tqdm(total=total, desc=f"{unit}s", unit=unit, leave=False)
    return (lambda done, total: bar.update(1)), bar.close


@torch.no_grad()
def upsample(
    net: ImplicitSR,
    image: torch.Tensor,
    scale: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
    max_queries: int = DEFAULT_MAX_QUERIES,
    tile: int | None = None,
    progress: Progress = False,
) -> torch.Tensor:
    """Upsample ``image (B, 3, h, w)`` in ``[0, 1]`` to ``(B, 3, H, W)`` in ``[0, 1]``.

    Pixels are queried at most ``max_queries`` at a time and decoder tables are built per
    ``DECODER_TILE``-sided LR tile, so decoder memory does not grow with the image. ``tile`` (LR
    pixels) also runs the encoder per tile, with a halo of its receptive field, bounding encoder
    memory; ``None`` encodes the whole image at once. The result equals one query of all pixels at
    once. ``progress`` shows a bar over decoder tiles (``True``) or is called as
    ``progress(done, total)`` after each tile.
    """
    check_lr(image)
    if max_queries < 1:
        raise ValueError(f"max_queries must be positive, got {max_queries}")
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise ValueError(f"tile must be a positive number of LR pixels or None, got {tile!r}")
    lr_size = (image.shape[-2], image.shape[-1])
    hr_size = output_size(lr_size, scale, size)
    lr = to_network_range(image)
    if not hasattr(net, "query_grid"):
        return _upsample_whole(net, lr, hr_size, max_queries, tile, progress)
    return _upsample_tiled(net, lr, hr_size, max_queries, tile, progress)


def encode_in_tiles(net: ImplicitSR, lr: torch.Tensor, tile: int) -> torch.Tensor:
    """``net.encode(lr)``, computed ``tile``-sided piece by piece: each piece is encoded with a
    halo of the encoder's receptive field, so its features equal the whole image's, while the
    encoder's activations never exceed one tile plus halo."""
    height, width = lr.shape[-2:]
    halo = receptive_radius(net.encoder)
    feat: torch.Tensor | None = None
    for rows in spans(height, tile):
        for cols in spans(width, tile):
            crop_rows, crop_cols = grow(rows, halo, height), grow(cols, halo, width)
            piece = net.encode(lr[..., slice(*crop_rows), slice(*crop_cols)])
            if feat is None:
                feat = piece.new_empty(*piece.shape[:2], height, width)
            feat[..., slice(*rows), slice(*cols)] = piece[
                ...,
                rows[0] - crop_rows[0] : rows[1] - crop_rows[0],
                cols[0] - crop_cols[0] : cols[1] - crop_cols[0],
            ]
    assert feat is not None  # an LR image has at least one pixel
    return feat


def count_chunks(hr_size: tuple[int, int], max_queries: int) -> int:
    """How many query chunks :func:`upsample` runs for a head without windowed lookup."""
    return math.ceil(hr_size[0] * hr_size[1] / max_queries)


def _upsample_whole(
    net: ImplicitSR,
    lr: torch.Tensor,
    hr_size: tuple[int, int],
    max_queries: int,
    tile: int | None,
    progress: Progress,
) -> torch.Tensor:
    """Heads that look features up anywhere (MetaSR): the whole feature map, queried in chunks;
    ``progress`` counts chunks."""
    height, width = hr_size
    batch = lr.shape[0]
    feat = net.encode(lr) if tile is None else encode_in_tiles(net, lr, tile)
    cell = lr.new_tensor([2 / height, 2 / width])
    output = lr.new_empty(batch, height * width, 3)
    total = count_chunks(hr_size, max_queries)
    report, close = _progress_reporter(progress, total, unit="chunk")
    try:
        for done, start in enumerate(range(0, height * width, max_queries), start=1):
            stop = min(start + max_queries, height * width)
            index = torch.arange(start, stop, device=lr.device)
            coord = coord_of_indices(index, hr_size, dtype=lr.dtype).expand(batch, -1, -1)
            output[:, start:stop] = net.query(feat, coord, cell.expand_as(coord))
            report(done, total)
    finally:
        close()
    return from_network_range(output).transpose(1, 2).reshape(batch, 3, height, width)


def _upsample_tiled(
    net: ImplicitSR,
    lr: torch.Tensor,
    hr_size: tuple[int, int],
    max_queries: int,
    tile: int | None,
    progress: Progress,
) -> torch.Tensor:
    batch, _, lr_height, lr_width = lr.shape
    height, width = hr_size
    dtype = lr.dtype
    # Each HR pixel is decoded in the tile of the LR pixel nearest to its centre; its ensemble
    # lookups are that pixel's neighbours, inside the tile grown by ENSEMBLE_MARGIN.
    owner_rows = owning_lr_pixel(height, lr_height)
    owner_cols = owning_lr_pixel(width, lr_width)
    ys, xs = pixel_centers(height, dtype=dtype), pixel_centers(width, dtype=dtype)
    cell = lr.new_tensor([2 / height, 2 / width])
    output = lr.new_empty(batch, 3, height, width)
    encoder_side = tile or max(lr_height, lr_width)
    decoder_side = min(DECODER_TILE, encoder_side)
    halo = 0 if tile is None else receptive_radius(net.encoder)
    total = count_tiles((lr_height, lr_width), tile)
    report, close = _progress_reporter(progress, total)
    try:
        done = 0
        for rows in spans(lr_height, encoder_side):
            for cols in spans(lr_width, encoder_side):
                # Features are needed on the tile plus both margins; the encoder input reaches a
                # receptive field further, so those features equal the whole image's.
                crop_rows = grow(rows, ENSEMBLE_MARGIN + UNFOLD_MARGIN + halo, lr_height)
                crop_cols = grow(cols, ENSEMBLE_MARGIN + UNFOLD_MARGIN + halo, lr_width)
                feat = net.encode(lr[..., slice(*crop_rows), slice(*crop_cols)])
                for tile_rows in spans(rows[1], decoder_side, rows[0]):
                    for tile_cols in spans(cols[1], decoder_side, cols[0]):
                        hr_rows = _owned(owner_rows, tile_rows)
                        hr_cols = _owned(owner_cols, tile_cols)
                        if hr_rows[1] > hr_rows[0] and hr_cols[1] > hr_cols[0]:
                            output[..., slice(*hr_rows), slice(*hr_cols)] = _decode_tile(
                                net, feat, (crop_rows[0], crop_cols[0]), (lr_height, lr_width),
                                tile_rows, tile_cols, ys[slice(*hr_rows)], xs[slice(*hr_cols)],
                                cell, max_queries,
                            )  # fmt: skip
                        done += 1
                        report(done, total)
    finally:
        close()
    return output


def _owned(owner: torch.Tensor, span: tuple[int, int]) -> tuple[int, int]:
    """HR pixels ``[i0, i1)`` whose owning LR pixel lies in ``span`` (owners are sorted)."""
    bounds = torch.searchsorted(owner, torch.tensor(span, dtype=owner.dtype))
    return int(bounds[0]), int(bounds[1])


def _decode_tile(
    net: ImplicitSR,
    feat: torch.Tensor,
    feat_offset: tuple[int, int],
    lr_size: tuple[int, int],
    tile_rows: tuple[int, int],
    tile_cols: tuple[int, int],
    ys: torch.Tensor,
    xs: torch.Tensor,
    cell: torch.Tensor,
    max_queries: int,
) -> torch.Tensor:
    """``(B, 3, len(ys), len(xs))`` in ``[0, 1]``: the HR pixels owned by one LR tile."""
    window_rows = grow(tile_rows, ENSEMBLE_MARGIN, lr_size[0])
    window_cols = grow(tile_cols, ENSEMBLE_MARGIN, lr_size[1])
    # the window plus the unfold's context, cut from the encoded crop
    context_rows = grow(window_rows, UNFOLD_MARGIN, lr_size[0])
    context_cols = grow(window_cols, UNFOLD_MARGIN, lr_size[1])
    context = feat[
        ...,
        context_rows[0] - feat_offset[0] : context_rows[1] - feat_offset[0],
        context_cols[0] - feat_offset[1] : context_cols[1] - feat_offset[1],
    ]
    grid = net.prepare(
        context,
        lr_size=lr_size,
        offset=(context_rows[0], context_cols[0]),
        rows=window_rows,
        cols=window_cols,
    )
    batch = feat.shape[0]
    coord = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)
    coord = coord.to(feat.device)
    prediction = torch.cat(
        [
            net.query_grid(
                grid,
                chunk.expand(batch, -1, -1),
                cell.expand(batch, len(chunk), 2),
            )
            for chunk in coord.split(max_queries)
        ],
        dim=1,
    )
    rgb = from_network_range(prediction).to(cell.dtype)
    return rgb.transpose(1, 2).reshape(batch, 3, len(ys), len(xs))
