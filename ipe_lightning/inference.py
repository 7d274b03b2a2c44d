"""Whole-image upsampling with bounded memory (docs/method.md §4: every HR pixel queried).

A local head (:class:`~ipe_lightning.models.base.ImplicitSR`) is decoded tile by tile of the LR
grid through its ``prepare`` / ``query_grid`` pair: each decoder tile's tables (the fast decoder's
projections are 16x the feature map) are built for the tile plus the head's reach, queries run in
chunks, and with ``tile=`` the encoder also runs per tile with a halo of its receptive field
(:mod:`ipe_lightning.tiling`). Every HR pixel is decoded from the same LR positions with the same
arithmetic as one query of the whole image, so the output does not depend on the tiling.

A grid decoder (:class:`~ipe_lightning.models.galerkin.GridSR`, e.g. SRNO) decodes the whole HR
grid as one grid, as the SRNO test code does: a pixel's output depends on every pixel decoded with
it, so it cannot be cut into tiles. Its features are those of the whole LR image (with ``tile=``
assembled from encoder tiles with halos, :func:`encode_in_tiles`), and
:meth:`~ipe_lightning.models.galerkin.GridSR.decode_image` takes the grid ``max_queries`` pixels at
a time in as many passes as it has global blocks, plus one: the one-shot output in bounded memory.
``band=k`` decodes bands of ``k`` HR rows as grids of their own instead (the SRNO code's
validation, ``eval_bsize``), which changes the output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ipe_lightning.coords import pixel_centers
from ipe_lightning.models.base import ImplicitSR, check_lr
from ipe_lightning.models.fixed_scale import FixedScaleSR, other_scale_error, scale_of
from ipe_lightning.models.galerkin import GridSR
from ipe_lightning.models.resample import check_method, resize
from ipe_lightning.scales import as_scale_pair
from ipe_lightning.tiling import (
    DecoderTile,
    Reach,
    count_decoder_tiles,
    grow,
    owning_lr_pixels,
    plan_tiles,
    receptive_radius,
    spans,
)

__all__ = [
    "DECODER_TILE",
    "DEFAULT_MAX_QUERIES",
    "DEFAULT_QUERY_BUDGET",
    "RANGE_TOLERANCE",
    "QueryBudget",
    "as_scale_pair",  # re-exported: it lives in ipe_lightning.scales
    "check_image_range",
    "check_scales",
    "count_tiles",
    "decode_fields",
    "encode_in_tiles",
    "from_network_range",
    "from_pil",
    "output_size",
    "to_network_range",
    "to_pil",
    "upsample",
    "upsample_pil",
]

# LIIF test code queries 30000 pixels at a time.
DEFAULT_MAX_QUERIES = 30000
# Side of the LR tiles whose decoder tables are built at once: (64 + 2)^2 positions x 1024 fast
# projections x 4 bytes = 18 MB per image, whatever the image size.
DECODER_TILE = 64

# How far outside [0, 1] an input may stray: enough for the overshoot of a bicubic resize made
# in floating point (a few hundredths), far from 8-bit values (0-255) or a [-1, 1] image, which
# would otherwise come out (nearly) all white or washed out without a word.
RANGE_TOLERANCE = 0.1

Progress = bool | Callable[[int, int], None]


@dataclass(frozen=True)
class QueryBudget:
    """How :func:`upsample` runs on a whole image (the ``test`` config node).

    ``max_queries``: HR pixels queried at a time; ``tile``: the side (LR pixels) of the tiles the
    encoder runs on, ``None`` for the whole image at once; ``resample``: how a fixed-scale network
    reaches other scales (``bicubic`` or ``lanczos``: its own ×k, then resized), ``None``: it
    does not; ``grid_band``: a grid decoder decodes bands of this many HR rows as grids of their
    own (the SRNO code's validation), ``None`` the whole image as one grid (its test).
    """

    max_queries: int = DEFAULT_MAX_QUERIES
    tile: int | None = None
    resample: str | None = None
    grid_band: int | None = None

    @classmethod
    def from_config(cls, test: Mapping[str, Any]) -> QueryBudget:
        """The budget of a config's ``test`` node (``max_queries``, ``tile``, ``resample``,
        ``grid_band``; a node without ``grid_band`` decodes whole grids)."""
        tile, resample, band = test.get("tile"), test.get("resample"), test.get("grid_band")
        return cls(
            max_queries=int(test["max_queries"]),
            tile=None if tile is None else int(tile),
            resample=None if resample is None else check_method(resample),
            grid_band=None if band is None else int(band),
        )

    def options(self) -> dict[str, Any]:
        """:func:`upsample`'s keywords for this budget: ``upsample(net, lr, size=..., **budget
        .options())``."""
        return {
            "max_queries": self.max_queries,
            "tile": self.tile,
            "resample": self.resample,
            "band": self.grid_band,
        }


DEFAULT_QUERY_BUDGET = QueryBudget()  # LIIF's test code: 30000 queries, no encoder tiles


def check_image_range(image: torch.Tensor) -> None:
    """``image`` must hold floats in ``[0, 1]`` (within :data:`RANGE_TOLERANCE`)."""
    if not image.is_floating_point():
        raise TypeError(
            f"upsample expects a float image in [0, 1], got dtype {image.dtype}: convert 8-bit "
            "pixels with image.float() / 255 (or pass a PIL image to upsample_pil)"
        )
    if image.numel() == 0:
        return
    low, high = (float(v) for v in torch.aminmax(image.detach()))
    if not (low >= -RANGE_TOLERANCE and high <= 1 + RANGE_TOLERANCE):  # NaN fails both
        hint = (
            "divide 0-255 values by 255"
            if high > 1 + RANGE_TOLERANCE
            else "map a [-1, 1] image with (image + 1) / 2"
        )
        raise ValueError(
            f"upsample expects an image in [0, 1], got values in [{low:.4g}, {high:.4g}]: {hint}"
        )


def to_network_range(image: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` → the network's ``[-1, 1]`` (docs/method.md §2)."""
    return (image - 0.5) / 0.5


def from_network_range(prediction: torch.Tensor) -> torch.Tensor:
    """The network's output → ``[0, 1]``, clamped, no rounding to 8 bits (docs/method.md §4)."""
    return (prediction * 0.5 + 0.5).clamp(0, 1)


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


def _sides(lr_size: tuple[int, int], tile: int | None) -> tuple[int, int]:
    """``(encoder tile side, decoder tile side)``: no encoder tiles means one of the whole image."""
    encoder_side = tile or max(lr_size)
    return encoder_side, min(DECODER_TILE, encoder_side)


def count_tiles(lr_size: tuple[int, int], tile: int | None = None) -> int:
    """How many decoder tiles :func:`upsample` walks for an LR image of ``lr_size``."""
    return count_decoder_tiles(lr_size, *_sides(lr_size, tile))


def _progress_reporter(
    progress: Progress, total: int
) -> tuple[Callable[[int, int], None], Callable]:
    """``(report(done, total), close())`` for the ``progress`` argument of :func:`upsample`."""
    if callable(progress):
        return progress, lambda: None
    if not progress:
        return (lambda done, total: None), lambda: None
    bar = tqdm(total=total, desc="tiles", unit="tile", leave=False)
    return (lambda done, total: bar.update(1)), bar.close


@dataclass(frozen=True)
class _Queries:
    """What every tile of one upsampling shares: the HR pixel centres and cell, the LR size."""

    lr_size: tuple[int, int]
    ys: torch.Tensor  # centres of the HR rows
    xs: torch.Tensor  # centres of the HR columns
    cell: torch.Tensor  # (2 / H, 2 / W)
    max_queries: int


def _owners(net: ImplicitSR, queries: _Queries) -> tuple[torch.Tensor, torch.Tensor]:
    """The owning LR row of every HR row and LR column of every HR column: the LR pixel nearest
    the head's lookup anchor (elementwise per axis, so one axis at a time)."""
    ys, xs, cell = queries.ys, queries.xs, queries.cell.cpu()
    anchor_rows = net.lookup_anchor(
        torch.stack([ys, torch.zeros_like(ys)], dim=-1), cell.expand(len(ys), 2)
    )[:, 0]
    anchor_cols = net.lookup_anchor(
        torch.stack([torch.zeros_like(xs), xs], dim=-1), cell.expand(len(xs), 2)
    )[:, 1]
    return (
        owning_lr_pixels(anchor_rows, queries.lr_size[0]),
        owning_lr_pixels(anchor_cols, queries.lr_size[1]),
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_arguments(
    image: torch.Tensor, max_queries: int, tile: int | None, band: int | None = None
) -> None:
    check_lr(image)
    check_image_range(image)
    if max_queries < 1:
        raise ValueError(f"max_queries must be positive, got {max_queries}")
    if tile is not None and not _is_count(tile):
        raise ValueError(f"tile must be a positive number of LR pixels or None, got {tile!r}")
    if band is not None and not _is_count(band):
        raise ValueError(f"band must be a positive number of HR rows or None, got {band!r}")


def decode_fields(net: ImplicitSR | GridSR, budget: QueryBudget) -> dict[str, Any]:
    """How a whole image was decoded, for the record (``metrics.json``'s ``grid_decode``): for a
    grid decoder the ``chunk`` of queries held at a time (memory only: the output is the whole
    grid's) and the ``band`` of HR rows decoded as one grid (``None``: the whole image), which
    changes the output; nothing for a local head, whose output depends on neither."""
    if not isinstance(net, GridSR):
        return {}
    return {"grid_decode": {"chunk": budget.max_queries, "band": budget.grid_band}}


def encode_in_tiles(net: ImplicitSR | GridSR, lr: torch.Tensor, tile: int | None) -> torch.Tensor:
    """The features of the whole normalised ``lr``: ``net.encode(lr)``, or with ``tile`` (LR
    pixels) assembled from the encodings of tiles, each cropped with a halo of the encoder's
    receptive radius so that its features equal the whole image's."""
    if tile is None:
        return net.encode(lr)
    height, width = lr.shape[-2:]
    halo = receptive_radius(net.encoder)
    feat: torch.Tensor | None = None
    for rows in spans(height, tile):
        for cols in spans(width, tile):
            crop_rows, crop_cols = grow(rows, halo, height), grow(cols, halo, width)
            part = net.encode(lr[..., slice(*crop_rows), slice(*crop_cols)])
            if feat is None:
                feat = part.new_empty(*part.shape[:2], height, width)
            feat[..., slice(*rows), slice(*cols)] = part[
                ...,
                rows[0] - crop_rows[0] : rows[1] - crop_rows[0],
                cols[0] - crop_cols[0] : cols[1] - crop_cols[0],
            ]
    return feat


def _upsample_grid(
    net: GridSR,
    lr: torch.Tensor,
    size: tuple[int, int],
    max_queries: int,
    tile: int | None,
    band: int | None,
) -> torch.Tensor:
    """``(B, 3, H, W)`` in ``[0, 1]``: every HR pixel of the normalised ``lr`` decoded by a grid
    decoder as one grid (or in bands of ``band`` rows), ``max_queries`` at a time."""
    feat = encode_in_tiles(net, lr, tile)
    rgb = net.decode_image(feat, size, chunk=max_queries, band=band)
    return from_network_range(rgb).permute(0, 3, 1, 2).contiguous()


def check_scales(
    net: ImplicitSR, scales: Iterable[float | Sequence[float]], resample: str | None = None
) -> None:
    """Refuse, before any image is upsampled, a fixed-scale network asked for another of
    ``scales`` without ``resample`` (:func:`upsample` refuses it per image)."""
    if not isinstance(net, FixedScaleSR) or resample is not None:
        return
    for scale in scales:
        if as_scale_pair(scale) != (net.scale, net.scale):
            raise other_scale_error(net, scale)


@torch.no_grad()
def upsample(
    net: ImplicitSR | GridSR,
    image: torch.Tensor,
    scale: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
    max_queries: int = DEFAULT_MAX_QUERIES,
    tile: int | None = None,
    progress: Progress = False,
    resample: str | None = None,
    band: int | None = None,
) -> torch.Tensor:
    """Upsample ``image (B, 3, h, w)`` in ``[0, 1]`` to ``(B, 3, H, W)`` in ``[0, 1]``.

    Pixels are queried at most ``max_queries`` at a time and decoder tables are built per
    ``DECODER_TILE``-sided LR tile, so decoder memory does not grow with the image. ``tile`` (LR
    pixels) also runs the encoder per tile, with a halo of its receptive field, bounding encoder
    memory; ``None`` encodes the whole image at once. The result equals one query of all pixels at
    once. ``progress`` shows a bar over decoder tiles (``True``) or is called as
    ``progress(done, total)`` after each tile. A fixed-scale network upsamples by its own ×k
    only; with ``resample`` (``bicubic`` or ``lanczos``) other sizes are its ×k, resized.

    A grid decoder (:class:`~ipe_lightning.models.galerkin.GridSR`) decodes all HR pixels as one
    grid, ``max_queries`` at a time in several passes (the module docstring), its features from
    the whole image or assembled from ``tile``-sided encoder tiles; ``band`` (HR rows) decodes
    bands as grids of their own instead, which changes its output. ``progress`` then reports one
    step. A local head's output depends on no ``band``: it ignores it.
    """
    _check_arguments(image, max_queries, tile, band)
    lr = to_network_range(image)
    lr_size = (lr.shape[-2], lr.shape[-1])
    height, width = output_size(lr_size, scale, size)
    if isinstance(net, FixedScaleSR) and not net.serves(lr_size, (height, width)):
        if resample is None:
            raise other_scale_error(net, scale_of(lr_size, (height, width)))
        own = upsample(net, image, net.scale, max_queries=max_queries, tile=tile, progress=progress)
        return resize(own, (height, width), check_method(resample)).clamp_(0, 1)
    if isinstance(net, GridSR):
        report, close = _progress_reporter(progress, 1)
        try:
            output = _upsample_grid(net, lr, (height, width), max_queries, tile, band)
            report(1, 1)
        finally:
            close()
        return output
    return _upsample_local(net, lr, (height, width), max_queries, tile, progress)


def _upsample_local(
    net: ImplicitSR,
    lr: torch.Tensor,
    size: tuple[int, int],
    max_queries: int,
    tile: int | None,
    progress: Progress,
) -> torch.Tensor:
    """``(B, 3, H, W)`` in ``[0, 1]``: every HR pixel of the normalised ``lr`` decoded by a local
    head, tile by tile (the module docstring)."""
    batch, _, lr_height, lr_width = lr.shape
    lr_size, (height, width) = (lr_height, lr_width), size
    queries = _Queries(
        lr_size=lr_size,
        ys=pixel_centers(height, dtype=lr.dtype),
        xs=pixel_centers(width, dtype=lr.dtype),
        cell=lr.new_tensor([2 / height, 2 / width]),
        max_queries=max_queries,
    )
    reach = Reach(
        lookup=net.lookup_reach,
        table=net.table_reach,
        halo=0 if tile is None else receptive_radius(net.encoder),
    )
    plan = plan_tiles(lr_size, _owners(net, queries), reach, *_sides(lr_size, tile))
    output = lr.new_empty(batch, 3, height, width)
    total = sum(len(encoder_tile.tiles) for encoder_tile in plan)
    report, close = _progress_reporter(progress, total)
    try:
        done = 0
        for encoder_tile in plan:
            rows, cols = encoder_tile.crop_rows, encoder_tile.crop_cols
            feat = net.encode(lr[..., slice(*rows), slice(*cols)])
            for decoder_tile in encoder_tile.tiles:
                if decoder_tile.owns_pixels:
                    output[..., slice(*decoder_tile.hr_rows), slice(*decoder_tile.hr_cols)] = (
                        _decode_tile(net, feat, (rows[0], cols[0]), decoder_tile, queries)
                    )
                done += 1
                report(done, total)
    finally:
        close()
    return output


def _decode_tile(
    net: ImplicitSR,
    feat: torch.Tensor,
    feat_origin: tuple[int, int],
    tile: DecoderTile,
    queries: _Queries,
) -> torch.Tensor:
    """``(B, 3, h, w)`` in ``[0, 1]``: the HR pixels owned by one decoder tile, from the
    features ``feat`` of the encoder crop that starts at LR position ``feat_origin``."""
    context = feat[
        ...,
        tile.context_rows[0] - feat_origin[0] : tile.context_rows[1] - feat_origin[0],
        tile.context_cols[0] - feat_origin[1] : tile.context_cols[1] - feat_origin[1],
    ]
    grid = net.prepare(
        context,
        lr_size=queries.lr_size,
        offset=(tile.context_rows[0], tile.context_cols[0]),
        rows=tile.window_rows,
        cols=tile.window_cols,
    )
    batch = feat.shape[0]
    ys, xs = queries.ys[slice(*tile.hr_rows)], queries.xs[slice(*tile.hr_cols)]
    coord = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)
    coord = coord.to(feat.device)
    cell = queries.cell
    prediction = torch.cat(
        [
            net.query_grid(grid, chunk.expand(batch, -1, -1), cell.expand(batch, len(chunk), 2))
            for chunk in coord.split(queries.max_queries)
        ],
        dim=1,
    )
    rgb = from_network_range(prediction).to(cell.dtype)
    return rgb.transpose(1, 2).reshape(batch, 3, len(ys), len(xs))


def from_pil(image: Image.Image) -> torch.Tensor:
    """A PIL image as ``(1, 3, h, w)`` float32 in ``[0, 1]``: converted to 8-bit RGB, ``v / 255``
    (for 16-bit files use ``ipe_lightning.data.images.decode_rgb``, which keeps their depth)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous()


def to_pil(image: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` in ``[0, 1]`` → an 8-bit RGB PIL image (rounded, as a PNG
    stores it)."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(f"to_pil takes one image, got a batch of {image.shape[0]}")
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"to_pil takes a (3, H, W) image, got shape {tuple(image.shape)}")
    array = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray((array * 255).round().astype(np.uint8))


def upsample_pil(
    net: ImplicitSR | GridSR,
    image: Image.Image,
    scale: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
    **options: int | Progress | None,
) -> Image.Image:
    """:func:`upsample` for a PIL image, on the network's device; ``options`` are
    :func:`upsample`'s (``max_queries``, ``tile``, ``progress``, ``resample``, ``band``)."""
    device = next(net.parameters()).device
    return to_pil(upsample(net, from_pil(image).to(device), scale=scale, size=size, **options))
