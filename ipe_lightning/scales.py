"""Scales and their names: torch-free helpers that the data, inference and report layers share.

A scale is a number ``s`` (both axes) or a pair ``(s_h, s_w)``. Its tag names it in loader names,
logs and reports: ``x2``, ``x2.5``, ``x2x3`` (per-axis).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

Scale = tuple[float, float]


def as_scale_pair(scale: float | Sequence[float]) -> Scale:
    """``s`` or ``(s_h, s_w)`` → ``(s_h, s_w)``, rejecting non-positive or non-finite values."""
    # numbers.Real: numpy's scalars too (np.float32(2), np.int64(2)), as well as int and float
    pair = (scale, scale) if isinstance(scale, numbers.Real) else tuple(scale)
    if len(pair) != 2:
        raise ValueError(f"scale must be a number or a pair (s_h, s_w), got {scale!r}")
    for value in pair:
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ValueError(f"scale must be positive and finite, got {scale!r}")
    return float(pair[0]), float(pair[1])


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def scale_tag(scale: float | Sequence[float]) -> str:
    """``x2``, ``x2.5``, ``x2.5x3`` (per-axis): how a scale appears in names and logs."""
    scale_h, scale_w = as_scale_pair(scale)
    if scale_h == scale_w:
        return f"x{_number(scale_h)}"
    return f"x{_number(scale_h)}x{_number(scale_w)}"


def parse_scale_tag(tag: str) -> Scale | None:
    """The inverse of :func:`scale_tag`: ``x2`` → (2, 2), ``x2x3`` → (2, 3); ``None`` for any
    text :func:`scale_tag` does not write (``x2.0``, ``x02``, ``x 2``, ``x2_0``, ...)."""
    parts = tag.split("x")
    if parts[0] != "" or len(parts) not in (2, 3):
        return None
    try:
        values = [float(part) for part in parts[1:]]
        scale = as_scale_pair(values[0] if len(values) == 1 else values)
    except ValueError:
        return None
    return scale if scale_tag(scale) == tag else None  # float() also reads "2_0", " 2", "+2"


def plain_scale(scale: float | Sequence[float]) -> int | float | list:
    """A scale as config/JSON would write it: ``2``, ``2.5`` or ``[2, 3]``."""
    if isinstance(scale, numbers.Real) and not isinstance(scale, bool):
        return int(scale) if float(scale).is_integer() else float(scale)
    return [plain_scale(s) for s in scale]
