"""Whole-image upsampling with bounded decoder memory (METHOD.md §4: every HR pixel queried)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ipe_lightning.coords import coord_of_indices
from ipe_lightning.models.base import ImplicitSR, check_lr

# LIIF test code queries 30000 pixels at a time.
DEFAULT_MAX_QUERIES = 30000


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


@torch.no_grad()
def upsample(
    net: ImplicitSR,
    image: torch.Tensor,
    scale: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
    max_queries: int = DEFAULT_MAX_QUERIES,
) -> torch.Tensor:
    """Upsample ``image (B, 3, h, w)`` in ``[0, 1]`` to ``(B, 3, H, W)`` in ``[0, 1]``.

    Pixels are queried ``max_queries`` at a time, so decoder memory does not grow with the output
    size; the result equals one query of all pixels at once.
    """
    check_lr(image)
    if max_queries < 1:
        raise ValueError(f"max_queries must be positive, got {max_queries}")
    height, width = output_size(tuple(image.shape[-2:]), scale, size)
    batch = image.shape[0]
    feat = net.encode(to_network_range(image))
    cell = image.new_tensor([2 / height, 2 / width])
    output = image.new_empty(batch, height * width, 3)
    for start in range(0, height * width, max_queries):
        index = torch.arange(start, min(start + max_queries, height * width), device=image.device)
        coord = coord_of_indices(index, (height, width), dtype=image.dtype).expand(batch, -1, -1)
        prediction = net.query(feat, coord, cell.expand_as(coord))
        output[:, start : start + len(index)] = prediction
    return from_network_range(output).transpose(1, 2).reshape(batch, 3, height, width)
