"""Upsample image files with a trained network (``python run.py mode=predict ...``).

Every input gets its own output name (:func:`output_names`), written whole or not at all; before
anything runs the memory each image needs is estimated and compared with what the device (and,
for the 8-bit PNG, the host) has free (:mod:`ipe_lightning.memory_estimate`): a job that cannot
fit is refused with the numbers, not left to fail inside torch's allocator after hours of work.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ipe_lightning.atomic import atomic_open
from ipe_lightning.bicubic import to_uint8
from ipe_lightning.data.images import decode_rgb, list_images, unique_stems
from ipe_lightning.inference import DEFAULT_QUERY_BUDGET, QueryBudget, upsample
from ipe_lightning.memory_estimate import (
    MemoryEstimate,
    OutputTooLargeError,
    available_memory,
    check_memory,
    estimate_inputs,
    estimate_memory,
)
from ipe_lightning.models.base import ImplicitSR
from ipe_lightning.scales import scale_tag

# A file name's bytes (NAME_MAX of Linux and macOS file systems), less the room the temporary
# beside it takes while it is written (atomic.py: ``.<name>.<pid>-<random>.tmp``).
NAME_MAX = 255
OUTPUT_NAME_MAX = NAME_MAX - 32


class PredictionError(RuntimeError):
    """Some inputs could not be upsampled (the others were written)."""


@dataclass
class PredictionSummary:
    output_dir: Path | None = None
    written: list[Path] = field(default_factory=list)
    existing: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    # inputs that predict.size stretched: (input, its size, the size asked)
    stretched: list[tuple[Path, tuple[int, int], tuple[int, int]]] = field(default_factory=list)


# A size whose two scale factors differ by more than this (relative) changes the aspect ratio by
# more than the rounding of a whole-pixel size can explain.
STRETCH_TOLERANCE = 0.01


def stretches(image_size: Sequence[int], size: Sequence[int] | None) -> bool:
    """Whether upsampling an ``(H, W)`` image to ``size`` scales its height and width by factors
    that differ (beyond :data:`STRETCH_TOLERANCE`), i.e. distorts it."""
    if size is None:
        return False
    scale_h, scale_w = size[0] / image_size[0], size[1] / image_size[1]
    return abs(scale_h - scale_w) > STRETCH_TOLERANCE * max(scale_h, scale_w)


def interactive() -> bool:
    """Progress bars only on a terminal: in a log file they are lines of escape codes."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def input_files(source: str | Path) -> list[Path]:
    """One image file, or every image file in a folder (non-images ignored)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if source.is_dir():
        files = list_images(source)
        if not files:
            raise FileNotFoundError(f"no image files (png, jpg, bmp, tif, webp) in {source}")
        return files
    raise FileNotFoundError(f"input {source} is neither a file nor a folder")


def fitted_name(stem: str, ending: str, limit: int = OUTPUT_NAME_MAX) -> str:
    """``<stem><ending>`` if it fits in ``limit`` bytes, else the stem cut to fit, followed by
    ``~`` and a short hash of the whole stem (so two long stems that start alike stay apart)."""
    if len((stem + ending).encode()) <= limit:
        return stem + ending
    digest = "~" + hashlib.sha256(stem.encode()).hexdigest()[:10]
    room = max(0, limit - len((digest + ending).encode()))
    cut = stem.encode()[:room].decode(errors="ignore")  # not inside a multi-byte character
    return cut + digest + ending


def output_name(
    stem: str, scale: float | Sequence[float] | None, size: Sequence[int] | None
) -> str:
    """``<stem>_x2.5.png``, ``<stem>_x2x3.png`` (the scale's tag) or ``<stem>_<H>x<W>.png``; a
    name too long for the file system keeps the start of the stem and a hash of it
    (:func:`fitted_name`)."""
    tag = f"{size[0]}x{size[1]}" if size is not None else scale_tag(scale)
    return fitted_name(stem, f"_{tag}.png")


def output_names(
    files: Sequence[Path], scale: float | Sequence[float] | None, size: Sequence[int] | None
) -> list[str]:
    """One output name per input, all distinct (:func:`unique_stems`, :func:`output_name`):
    ``photo.png`` → ``photo_x2.png``; ``same.PNG`` and ``same.jpg`` → ``same_PNG_x2.png`` and
    ``same_jpg_x2.png``."""
    return [output_name(stem, scale, size) for stem in unique_stems(files)]


def _what_was_asked(scale: float | Sequence[float] | None, size: Sequence[int] | None) -> str:
    if size is not None:
        return f"predict.size=[{size[0]},{size[1]}]"
    return f"predict.scale={scale}"


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision not in {"32", "32-true", "fp32"}:
        raise ValueError(f"precision must be '32' or 'bf16', got {precision!r}")
    return contextlib.nullcontext()


def predict_files(
    net: ImplicitSR,
    files: list[Path],
    output_dir: str | Path,
    *,
    scale: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
    overwrite: bool = False,
    device: str | torch.device = "cpu",
    precision: str = "32",
    budget: QueryBudget = DEFAULT_QUERY_BUDGET,
) -> PredictionSummary:
    """Upsample each file to an 8-bit PNG in ``output_dir`` within ``budget`` (queries at a time,
    encoder tiles); bad inputs are reported, not fatal."""
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale=... or size=[H, W]")
    if scale is not None and not isinstance(scale, int | float):
        scale = list(scale)
    device = torch.device(device)
    net = net.to(device).eval()
    names = output_names(files, scale, size)
    estimates = estimate_inputs(net, files, scale, size, budget, device)
    check_memory(estimates, _what_was_asked(scale, size), budget=budget, available=available_memory)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = PredictionSummary(output_dir=output_dir)
    pairs = zip(files, names, strict=True)
    for path, name in tqdm(pairs, desc="images", unit="img", disable=not interactive()):
        target = output_dir / name
        if target.exists() and not overwrite:
            summary.existing.append(target)
            continue
        try:
            pixels = decode_rgb(path)
        except Exception as error:  # any unreadable file is reported and skipped
            summary.failed.append((path, f"{type(error).__name__}: {error}"))
            continue
        if stretches(pixels.shape[:2], size):
            summary.stretched.append((path, tuple(pixels.shape[:2]), tuple(size)))
        with autocast(device, precision):
            sr = upsample_pixels(net, pixels, scale, size, budget, device)
        with atomic_open(target, "wb") as handle:  # a kill leaves no torn PNG to keep
            Image.fromarray(to_uint8(sr[0].float())).save(handle, format="PNG")
        summary.written.append(target)
    return summary


def upsample_pixels(
    net: ImplicitSR,
    pixels: np.ndarray,
    scale: float | Sequence[float] | None,
    size: Sequence[int] | None,
    budget: QueryBudget,
    device: torch.device,
) -> torch.Tensor:
    """Decoded uint8 ``(H, W, 3)`` pixels upsampled to a ``(1, 3, H', W')`` float image (copied
    into a tensor: decoded arrays may be read-only)."""
    image = torch.tensor(pixels).permute(2, 0, 1)[None].to(device, torch.float32) / 255
    return upsample(net, image, scale=scale, size=size, progress=interactive(), **budget.options())


def report(summary: PredictionSummary) -> str:
    """What predict did, where, and what the reader should know (stretched inputs)."""
    where = f" to {summary.output_dir}" if summary.output_dir is not None else ""
    lines = [f"wrote {len(summary.written)} image(s){where}"]
    for path, (h, w), (out_h, out_w) in summary.stretched:
        lines.append(
            f"warning: predict.size=[{out_h},{out_w}] stretched {path.name} ({h}x{w}): its "
            f"aspect ratio {w / h:.3g} became {out_w / out_h:.3g}; predict.scale keeps it"
        )
    if summary.existing:
        lines.append(
            f"kept {len(summary.existing)} existing output(s) (overwrite=true replaces them): "
            + ", ".join(p.name for p in summary.existing)
        )
    for path, reason in summary.failed:
        lines.append(f"could not read {path}: {reason}")
    return "\n".join(lines)


__all__ = [
    "MemoryEstimate",
    "OutputTooLargeError",
    "PredictionError",
    "PredictionSummary",
    "available_memory",
    "estimate_memory",
    "input_files",
    "output_names",
    "predict_files",
    "report",
]
