"""How much memory upsampling an image needs, before it runs, and whether the machine has it.

:func:`estimate_memory` scales a probe of the network on a small LR image to the real sizes (see
:class:`MemoryEstimate` for the parts); :func:`check_memory` sets the estimates against the free
memory of the device and the host (:func:`available_memory`) and refuses, with the numbers and
the way out (a smaller size, ``test.tile``), what cannot fit. ``mode=predict`` runs both first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ipe_lightning.data.images import scan_images
from ipe_lightning.inference import (
    DECODER_TILE,
    DEFAULT_QUERY_BUDGET,
    QueryBudget,
    output_size,
)
from ipe_lightning.models.base import ImplicitSR
from ipe_lightning.models.galerkin import GridSR
from ipe_lightning.tiling import receptive_radius

log = logging.getLogger(__name__)

# Bytes per HR pixel: the float32 RGB output of upsample().
OUTPUT_BYTES_PER_PIXEL = 3 * 4
# Bytes per HR pixel while bicubic.to_uint8 turns the output into 8 bits on the host: a float32
# copy on the host (from a GPU), two float32 numpy temporaries (``* 255``, ``round``), the uint8
# array and Pillow's copy of it.
HOST_COPY_BYTES_PER_PIXEL = 3 * 4
CONVERSION_BYTES_PER_PIXEL = 2 * 3 * 4 + 3 + 3
# Bytes per HR pixel of one decoder tile, held while its queries run: the float32 coordinates
# (y, x), the chunks' predictions, their concatenation and its mapping to [0, 1] (RGB float32).
TILE_BYTES_PER_PIXEL = 2 * 4 + 3 * 3 * 4
# Bytes per HR pixel a grid decoder holds besides the output: its chunks' RGB, their
# concatenation and its mapping to [0, 1] (float32; its coordinates are made one chunk at a time).
GRID_BYTES_PER_PIXEL = 3 * 3 * 4
# LR side of the probe image whose activations are scaled to the real image.
_PROBE_SIDE = 16
_PROBE_QUERIES = 64


class OutputTooLargeError(ValueError):
    """An input cannot be upsampled in the memory available; the message gives the numbers."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one image needs in :func:`predict_files`, by part (an estimate, not a bound).

    ``output``: the float32 result on the device; ``encoder``: the features and the largest
    activation of one encoder crop (the whole LR image, or a ``test.tile`` tile with its halo);
    ``decoder``: one decoder tile's tables, one chunk of queries and the coordinates and
    predictions of the tile's HR pixels (all of them when the LR image is one tile: a small LR
    image upsampled to a huge size is one huge tile); for a grid decoder, which decodes the whole
    image as one grid, the tables of the whole LR image (and, with ``test.tile``, the features
    assembled from the tiles), one chunk of queries and the RGB of every HR pixel;
    ``conversion``: the host memory of the 8-bit PNG conversion (with the output itself when the
    device is the CPU).
    """

    lr_size: tuple[int, int]
    hr_size: tuple[int, int]
    device: str
    output: int
    encoder: int
    decoder: int
    conversion: int

    @property
    def device_peak(self) -> int:
        """Peak on the device; on the CPU the conversion runs in the same memory."""
        peak = self.output + self.encoder + self.decoder
        return peak + self.conversion if self.on_host else peak

    @property
    def on_host(self) -> bool:
        return torch.device(self.device).type == "cpu"

    @property
    def host_peak(self) -> int:
        return self.conversion


def _tensor_bytes(value: object) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, tuple | list):
        return sum(_tensor_bytes(item) for item in value)
    return 0


def _largest_block(blocks: nn.ModuleList, call: Callable[[], object]) -> int:
    """Bytes of a block's input and of every output of the modules inside it, the largest over
    ``blocks`` while ``call()`` runs: what a grid decoder's block holds at once per query chunk (an
    upper bound; its largest single activation is about half of it)."""
    largest, running = 0, 0

    def start(module, inputs) -> None:
        nonlocal running
        running = _tensor_bytes(inputs)

    def add(module, inputs, output) -> None:
        nonlocal running
        running += _tensor_bytes(output)

    def end(module, inputs, output) -> None:
        nonlocal largest
        largest = max(largest, running)

    handles = [block.register_forward_pre_hook(start) for block in blocks]
    handles += [m.register_forward_hook(add) for block in blocks for m in block.modules()]
    handles += [block.register_forward_hook(end) for block in blocks]
    _call_hooked(call, handles)
    return largest


def _call_hooked(call: Callable[[], object], handles: list) -> None:
    """``call()`` without gradients, then the hooks of ``handles`` removed (also on an error)."""
    try:
        with torch.no_grad():
            call()
    finally:
        for handle in handles:
            handle.remove()


def _largest_activation(net: nn.Module, call: Callable[[], object]) -> int:
    """Bytes of the largest (inputs + output) of one module call while ``call()`` runs."""
    largest = 0

    def hook(module, inputs, output) -> None:
        nonlocal largest
        largest = max(largest, _tensor_bytes(inputs) + _tensor_bytes(output))

    _call_hooked(call, [module.register_forward_hook(hook) for module in net.modules()])
    return largest


@dataclass(frozen=True)
class _PerUnitCosts:
    """Bytes per LR pixel (encoder, tables) and per query, measured on a small probe."""

    encoder_per_pixel: float
    tables_per_position: float
    per_query: float
    features_per_pixel: float = 0.0


def _probe_costs(net: ImplicitSR | GridSR, device: torch.device) -> _PerUnitCosts:
    probe = torch.zeros(1, 3, _PROBE_SIDE, _PROBE_SIDE, device=device)
    found: dict[str, object] = {}

    def encode() -> None:
        found["feat"] = net.encode(probe)

    activation = _largest_activation(net, encode)
    feat = found["feat"]
    pixels = _PROBE_SIDE * _PROBE_SIDE
    feat_bytes = feat.numel() * feat.element_size()
    with torch.no_grad():
        grid = net.prepare(feat)
    table_bytes = sum(t.numel() * t.element_size() for t in grid.tables)
    coord = torch.rand(1, _PROBE_QUERIES, 2, device=device) * 2 - 1
    cell = torch.full((1, _PROBE_QUERIES, 2), 2 / (2 * _PROBE_SIDE), device=device)

    def query() -> None:
        if isinstance(net, GridSR):  # the probe's queries decoded as one grid
            found["rgb"] = net.decode(feat, coord, cell)
        else:
            found["rgb"] = net.query_grid(grid, coord, cell)

    query_bytes = max(_largest_activation(net, query), 2 * coord.numel() * 4 + 3 * 4)
    if isinstance(net, GridSR):
        query_bytes = max(query_bytes, _largest_block(net.blocks, query))
    return _PerUnitCosts(
        encoder_per_pixel=(activation + feat_bytes) / pixels,
        tables_per_position=table_bytes / pixels,
        per_query=query_bytes / _PROBE_QUERIES,
        features_per_pixel=feat_bytes / pixels,
    )


def _grid_parts(
    costs: _PerUnitCosts,
    lr_size: tuple[int, int],
    hr_pixels: int,
    budget: QueryBudget,
    crop: int,
) -> tuple[int, int]:
    """``(encoder, decoder)`` bytes of a grid decoder's whole-image decode (see
    :class:`MemoryEstimate`)."""
    lr_pixels = lr_size[0] * lr_size[1]
    assembled = 0 if budget.tile is None else costs.features_per_pixel * lr_pixels
    decoder = (
        costs.tables_per_position * lr_pixels
        + costs.per_query * min(budget.max_queries, hr_pixels)
        + GRID_BYTES_PER_PIXEL * hr_pixels
    )
    return int(costs.encoder_per_pixel * crop + assembled), int(decoder)


def _tile_decoder(
    net: ImplicitSR,
    costs: _PerUnitCosts,
    lr_size: tuple[int, int],
    hr_size: tuple[int, int],
    budget: QueryBudget,
) -> int:
    """Bytes of a local head's largest decoder tile (see :class:`MemoryEstimate`)."""
    height, width = hr_size
    side = min(DECODER_TILE, budget.tile or max(lr_size))
    tables_side = side + 2 * (net.lookup_reach + net.table_reach)
    tile_hr_pixels = round(
        min(1.0, side / lr_size[0]) * height * min(1.0, side / lr_size[1]) * width
    )
    return int(
        costs.tables_per_position * tables_side**2
        + costs.per_query * min(budget.max_queries, tile_hr_pixels)
        + TILE_BYTES_PER_PIXEL * tile_hr_pixels
    )


def estimate_memory(
    net: ImplicitSR | GridSR,
    lr_size: tuple[int, int],
    hr_size: tuple[int, int],
    *,
    budget: QueryBudget = DEFAULT_QUERY_BUDGET,
    device: str | torch.device = "cpu",
    costs: _PerUnitCosts | None = None,
) -> MemoryEstimate:
    """What upsampling one ``lr_size`` image to ``hr_size`` needs (see :class:`MemoryEstimate`).

    The encoder's and decoder's parts scale a probe of the network on a small LR image: the largest
    module activation seen there per LR pixel times the encoder crop, the tables per LR position
    times one decoder tile (with the head's reach; a grid decoder's: the whole LR image), the
    largest activation per query times ``budget.max_queries``; the rest counts the tensors
    :func:`~ipe_lightning.inference.upsample` and the PNG conversion allocate per HR pixel.
    """
    device = torch.device(device)
    costs = costs or _probe_costs(net, device)
    height, width = hr_size
    tile = budget.tile
    if tile is None:
        crop = lr_size[0] * lr_size[1]
    else:
        halo = receptive_radius(net.encoder)
        crop = min(lr_size[0], tile + 2 * halo) * min(lr_size[1], tile + 2 * halo)
    hr_pixels = height * width
    conversion = CONVERSION_BYTES_PER_PIXEL * hr_pixels
    if device.type != "cpu":  # the output is copied to the host first
        conversion += HOST_COPY_BYTES_PER_PIXEL * hr_pixels
    if isinstance(net, GridSR):
        encoder, decoder = _grid_parts(costs, lr_size, hr_pixels, budget, crop)
    else:
        encoder = int(costs.encoder_per_pixel * crop)
        decoder = _tile_decoder(net, costs, lr_size, hr_size, budget)
    return MemoryEstimate(
        lr_size=tuple(lr_size),
        hr_size=(height, width),
        device=str(device),
        output=OUTPUT_BYTES_PER_PIXEL * hr_pixels,
        encoder=encoder,
        decoder=decoder,
        conversion=conversion,
    )


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the file counts kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory(device: str | torch.device) -> int | None:
    """Free bytes on ``device``: ``torch.cuda.mem_get_info`` on a GPU; for the host, psutil's
    ``available`` if psutil is installed, else ``MemAvailable`` of ``/proc/meminfo``; ``None``
    when unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        import psutil
    except ImportError:
        return _meminfo_available()
    return int(psutil.virtual_memory().available)


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def check_memory(
    estimates: dict[Path, MemoryEstimate],
    asked: str,
    *,
    budget: QueryBudget,
    available: Callable[[str], int | None],
) -> None:
    """Raise :class:`OutputTooLargeError` for the inputs whose estimate exceeds free memory."""
    free = {kind: available(kind) for kind in {e.device for e in estimates.values()} | {"cpu"}}
    problems = []
    for path, e in estimates.items():
        needs = [(e.device, e.device_peak)]
        if not e.on_host:
            needs.append(("cpu", e.host_peak))
        for kind, need in needs:
            if free[kind] is not None and need > free[kind]:
                problems.append(
                    f"  {path.name}: LR {e.lr_size[0]}x{e.lr_size[1]} -> HR "
                    f"{e.hr_size[0]}x{e.hr_size[1]} needs about {_gb(need)} on {kind} "
                    f"(output {_gb(e.output)} float32, encoder {_gb(e.encoder)}, decoder tile "
                    f"{_gb(e.decoder)}, 8-bit conversion {_gb(e.conversion)}); "
                    f"{_gb(free[kind])} available"
                )
    if not problems:
        return
    tile_hint = (
        f"a smaller test.tile (now {budget.tile})"
        if budget.tile
        else "test.tile=<LR pixels> (e.g. test.tile=128) to encode in tiles"
    )
    raise OutputTooLargeError(
        f"{asked} cannot fit in memory:\n"
        + "\n".join(problems)
        + f"\nAsk for a smaller predict.size or predict.scale (the output alone takes "
        f"{OUTPUT_BYTES_PER_PIXEL + CONVERSION_BYTES_PER_PIXEL} bytes per HR pixel on the host); "
        f"{tile_hint} bounds the encoder's part."
    )


def estimate_inputs(
    net: ImplicitSR,
    files: list[Path],
    scale: float | Sequence[float] | None,
    size: Sequence[int] | None,
    budget: QueryBudget,
    device: torch.device,
) -> dict[Path, MemoryEstimate]:
    """The estimate of every input whose header is readable (the others fail when decoded).

    Header sizes are as stored (before EXIF orientation), which changes no area.
    """
    lr_sizes = scan_images(files).sizes
    if not lr_sizes:
        return {}
    costs = _probe_costs(net, device)
    estimates = {
        path: estimate_memory(
            net,
            lr_size,
            output_size(lr_size, scale, size),
            budget=budget,
            device=device,
            costs=costs,
        )
        for path, lr_size in lr_sizes.items()
    }
    largest = max(estimates.values(), key=lambda e: e.device_peak)
    log.info(
        "largest input: LR %dx%d -> HR %dx%d, about %s on %s",
        *largest.lr_size,
        *largest.hr_size,
        _gb(largest.device_peak),
        largest.device,
    )
    return estimates
