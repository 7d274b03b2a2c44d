"""Which :class:`~ipe_lightning.models.fast_decoder.DecodeLayout` the CPU inference decode uses:
measured once per machine, then read from a cache.

The fastest layout depends on the machine: its caches, its BLAS and its thread count. So at the
first large inference decode on a CPU, :func:`inference_layout` times every layout of
:data:`CANDIDATES` on a small decode of the paper's shapes (:func:`time_layout`) and keeps the
fastest, in ``<user cache dir>/ipe-lightning/decode-layout-<key>.json``, one file per machine key
(:func:`machine_key`: CPU model, threads, torch version, device type), written atomically. A
missing, unreadable or foreign file is measured again, and a calibration made on a machine
busier than its CPUs serves its process only (:func:`worth_keeping`). Every layout computes the
same function (tests/models/test_decode_calibration.py): the choice changes speed, never outputs.

Training keeps :data:`~ipe_lightning.models.fast_decoder.ROW_BLOCK` and CUDA the default layout.
``IPE_LIGHTNING_DECODE_CALIBRATION=0`` turns the calibration off (the default layout, no cache);
``IPE_LIGHTNING_CACHE_DIR`` moves the cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import platformdirs
import torch

from ipe_lightning.models.fast_decoder import DEFAULT_LAYOUT, DecodeLayout, decode_projections
from ipe_lightning.models.mlp import PAPER_HIDDEN, SkipMLP

SWITCH_VARIABLE = "IPE_LIGHTNING_DECODE_CALIBRATION"  # "0": off
CACHE_DIR_VARIABLE = "IPE_LIGHTNING_CACHE_DIR"
CACHE_VERSION = 1  # part of every key: bump it when the candidates or the timed decode change

# The default row block and larger ones, each with per-layer and with stacked input products.
# Smaller blocks lose: on a 2-core AMD EPYC at load average 4 (other work), 2048-row blocks timed
# 1.8-1.9x slower than 4096-row ones. Blocks larger than the timed decode's rows cannot be told
# apart from it, and 32768-row blocks would double its rows, so the calibration's time.
CANDIDATES = tuple(
    DecodeLayout(row_block, stacked)
    for stacked in (False, True)
    for row_block in (4096, 8192, 16384)
)
CALIBRATION_ROWS = 16384  # 4096 queries x 4 ensemble branches: one block of the largest candidate
BUDGET_S = 0.75  # further rounds of timings while the calibration has taken less than this
MARGIN = 0.05  # a layout replaces the default only when this much faster: timing noise stays out

Timer = Callable[[DecodeLayout, "CalibrationCase"], float]


@functools.cache
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key(device: torch.device) -> dict[str, Any]:
    """What the fastest layout depends on: CPU model, torch threads, torch version, device type."""
    return {
        "version": CACHE_VERSION,
        "cpu": _cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": device.type,
    }


def cache_dir() -> Path:
    """``$IPE_LIGHTNING_CACHE_DIR``, else ``<user cache dir>/ipe-lightning``."""
    return Path(os.environ.get(CACHE_DIR_VARIABLE) or platformdirs.user_cache_dir("ipe-lightning"))


def cache_path(key: dict[str, Any]) -> Path:
    """One file per machine key, so machines sharing a home directory keep their own choice."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"decode-layout-{digest}.json"


def read_choice(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached choice for ``key``; ``None`` when the file is missing, torn, or of another key."""
    try:
        choice = json.loads(path.read_text())
        layout = DecodeLayout(**choice["layout"])
        valid = isinstance(layout.row_block, int) and layout.row_block > 0
        if choice["key"] == key and valid and isinstance(layout.stacked_inputs, bool):
            return {**choice, "layout": layout}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def write_choice(path: Path, choice: dict[str, Any]) -> None:
    """Write ``choice`` as JSON through a temporary file in the same folder and ``os.replace``: a
    reader sees the old file or the whole new one, and a failed write leaves no file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({**choice, "layout": asdict(choice["layout"])}, indent=2)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class CalibrationCase:
    """The timed decode: the paper's skip MLP (4 x 256, IPE L = 10: 40 encoding inputs) on
    projection tables of a 32 x 32 LR grid, :data:`CALIBRATION_ROWS` rows of x4 queries in
    raster order (as an image is decoded), random values: speed does not depend on them."""

    def __init__(self, rows: int = CALIBRATION_ROWS, dtype: torch.dtype = torch.float32) -> None:
        generator = torch.Generator().manual_seed(0)
        latent_dim, encoding_width, side, scale = 576, 40, 32, 4
        self.latent_dim = latent_dim
        self.mlp = SkipMLP(latent_dim + encoding_width, 3).to(dtype).eval()
        self.tables = tuple(
            torch.randn(1, side * side, width, generator=generator, dtype=dtype)
            for width in PAPER_HIDDEN
        )
        queries = torch.arange(rows // 4)
        row, col = queries // (side * scale) // scale, queries % (side * scale) // scale
        shifts = [(0, 0), (0, 1), (1, 0), (1, 1)]  # the four ensemble branches' LR neighbours
        self.index = torch.stack(
            [
                (row + dy).clamp(max=side - 1) * side + (col + dx).clamp(max=side - 1)
                for dy, dx in shifts
            ]
        )[:, None]
        self.coord_input = torch.randn(
            4, 1, len(queries), encoding_width, generator=generator, dtype=dtype
        )

    def decode(self, layout: DecodeLayout) -> torch.Tensor:
        with torch.no_grad():
            return decode_projections(
                self.mlp, self.tables, self.index, self.coord_input, self.latent_dim, layout=layout
            )


def time_layout(layout: DecodeLayout, case: CalibrationCase) -> float:
    """Seconds of one decode of ``case`` with ``layout``."""
    start = time.perf_counter()
    case.decode(layout)
    return time.perf_counter() - start


def calibrate(timer: Timer = time_layout) -> dict[str, Any]:
    """Time every candidate, in rounds of alternating order while :data:`BUDGET_S` lasts (one
    round at least); the best time of each; the fastest layout if :data:`MARGIN` faster than the
    default."""
    load = _load_average()
    case = CalibrationCase(CALIBRATION_ROWS)
    case.decode(DEFAULT_LAYOUT)  # warm-up: first-touch pages, BLAS threads
    best = dict.fromkeys(CANDIDATES, float("inf"))
    start, order = time.perf_counter(), list(CANDIDATES)
    while True:
        for layout in order:
            best[layout] = min(best[layout], timer(layout, case))
        order.reverse()
        if time.perf_counter() - start >= BUDGET_S:
            break
    fastest = min(best, key=best.__getitem__)
    default = best.get(DEFAULT_LAYOUT, float("inf"))
    chosen = fastest if best[fastest] <= (1 - MARGIN) * default else DEFAULT_LAYOUT
    seconds = {
        f"{c.row_block}{'_stacked' if c.stacked_inputs else ''}": round(t, 4)
        for c, t in best.items()
    }
    return {
        "layout": chosen,
        "seconds": seconds,
        "rows": case.index.numel(),
        "load_average": load,
        "cpus": _available_cpus(),
    }


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on this platform
        return None


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worth_keeping(choice: dict[str, Any]) -> bool:
    """Whether a calibration speaks for the machine rather than for a moment of it: made while
    the load average did not exceed the CPUs. On a 2-core AMD EPYC at load 4-6 (other work),
    8192-row blocks timed 2.4x faster than 4096-row ones, and at load 2 the whole x4 decode ran
    10-20% slower with them; a choice made at such a load serves its own process only."""
    load = choice.get("load_average")
    return load is None or load <= choice.get("cpus", 1)


_chosen: dict[str, dict[str, Any]] = {}  # this process's choices, by machine key


def calibration_enabled() -> bool:
    return os.environ.get(SWITCH_VARIABLE, "1").strip().lower() not in ("0", "false", "no", "off")


def _choice(device: torch.device, measure: bool, timer: Timer) -> dict[str, Any] | None:
    """This process's choice, else the cached one, else (if ``measure``) a new calibration."""
    key = machine_key(device)
    memo = json.dumps(key, sort_keys=True)
    if memo in _chosen:
        return _chosen[memo]
    path = cache_path(key)
    choice = read_choice(path, key)
    if choice is not None:
        choice["source"] = "cached"
    elif measure:
        choice = {"key": key, **calibrate(timer)}
        choice["kept"] = worth_keeping(choice)
        if choice["kept"]:
            with contextlib.suppress(OSError):  # a read-only cache: the next process measures again
                write_choice(path, choice)
        choice["source"] = "calibrated"
    else:
        return None
    _chosen[memo] = {**choice, "path": str(path)}
    return _chosen[memo]


def inference_choice(device: torch.device, timer: Timer = time_layout) -> dict[str, Any]:
    """The layout of this machine's inference decode and where it comes from (``source``:
    ``calibrated`` now, ``cached``, or ``default`` where calibration is off or not for
    ``device``), with the calibration's best seconds per candidate."""
    if not calibration_enabled() or device.type != "cpu":
        return {"layout": DEFAULT_LAYOUT, "source": "default"}
    return _choice(device, measure=True, timer=timer)


def inference_layout(device: torch.device, rows: int, timer: Timer = time_layout) -> DecodeLayout:
    """The layout for an inference decode of ``rows`` rows on ``device``. A decode within one
    block of the smallest candidate runs alike in every row block, so it does not calibrate: it
    takes a choice already made, else the default."""
    if not calibration_enabled() or device.type != "cpu":
        return DEFAULT_LAYOUT
    measure = rows > min(layout.row_block for layout in CANDIDATES)
    choice = _choice(device, measure, timer)
    return DEFAULT_LAYOUT if choice is None else choice["layout"]
