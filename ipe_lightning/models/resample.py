"""Resize images by any factor with Pillow's bicubic or Lanczos-3 filter, in torch (batched, any
device, any float dtype): the resampler of the fixed-scale baseline (docs/method.md §4).

Pillow's definitions (``Image.resize``, its ``Resample.c``), per axis of ``n`` → ``m`` pixels:

- output pixel ``x`` is centred on input coordinate ``c = (x + 0.5) · n / m`` (pixel areas
  aligned, as the LIIF coordinates);
- the filter is ``bicubic`` (Keys' cubic convolution, ``a = -0.5``, support 2) or ``lanczos``
  (``sinc(t) · sinc(t / 3)`` for ``|t| < 3``);
- when shrinking (``n / m > 1``) the filter is stretched by ``n / m`` (antialiasing): input ``i``
  weighs ``filter((i + 0.5 - c) · m / n)``;
- taps outside the image are dropped and each output pixel's weights divided by their sum;
- the width is resized first, then the height.

Pillow computes the weights and sums in double precision; here the weights are double and the
sums are in the image's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ipe_lightning.errors import SettingError

Kernel = Callable[[torch.Tensor], torch.Tensor]


def keys_cubic(t: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with ``a = -0.5`` (Pillow's ``BICUBIC``), support 2."""
    a = -0.5
    t = t.abs()
    near = ((a + 2) * t - (a + 3)) * t * t + 1  # |t| < 1
    far = a * (((t - 5) * t + 8) * t - 4)  # 1 <= |t| < 2
    return torch.where(t < 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


def lanczos3(t: torch.Tensor) -> torch.Tensor:
    """The Lanczos kernel with ``a = 3``: ``sinc(t) · sinc(t / 3)`` for ``|t| < 3`` (Pillow's
    ``LANCZOS``); ``torch.sinc`` is ``sin(πt) / (πt)``."""
    return torch.where(t.abs() < 3, torch.sinc(t) * torch.sinc(t / 3), torch.zeros_like(t))


# method -> (kernel, support in input pixels before any stretch)
FILTERS: dict[str, tuple[Kernel, float]] = {
    "bicubic": (keys_cubic, 2.0),
    "lanczos": (lanczos3, 3.0),
}
METHODS = tuple(FILTERS)


def check_method(method: object, option: str = "test.resample") -> str:
    """``method`` if it is one of :data:`METHODS`, else a :class:`SettingError` naming
    ``option``."""
    if method not in FILTERS:
        raise SettingError(
            f"{option}={method!r}: choose one of {', '.join(METHODS)} (or null for none)"
        )
    return str(method)


def contributions(
    in_length: int, out_length: int, method: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The taps of each output pixel along one axis: input indices ``(m, T)`` (clamped into the
    image; taps outside it weigh 0) and their float64 weights ``(m, T)``, summing to one."""
    kernel, radius = FILTERS[check_method(method)]
    scale = in_length / out_length
    stretch = max(scale, 1.0)  # antialiasing: the filter widens with the shrink factor
    support = radius * stretch
    centre = (torch.arange(out_length, dtype=torch.float64) + 0.5) * scale
    first = torch.floor(centre - support + 0.5).long()
    index = first[:, None] + torch.arange(2 * math.ceil(support) + 1)
    weights = kernel((index - centre[:, None] + 0.5) * (1.0 / stretch))
    inside = (index >= 0) & (index < in_length)
    weights = torch.where(inside, weights, torch.zeros_like(weights))
    weights = weights / weights.sum(dim=1, keepdim=True)
    return index.clamp(0, in_length - 1), weights


def resize_along(image: torch.Tensor, dim: int, out_length: int, method: str) -> torch.Tensor:
    """``image`` resized to ``out_length`` along ``dim`` (a negative index)."""
    index, weights = contributions(image.shape[dim], out_length, method)
    taps = index.shape[1]
    # (..., m, T, trailing): the taps of each output pixel, then summed with their weights
    gathered = image.index_select(dim, index.flatten().to(image.device))
    gathered = gathered.unflatten(dim, (out_length, taps))
    weights = weights.to(device=image.device, dtype=image.dtype)
    return (gathered * weights.view(out_length, taps, *([1] * (-dim - 1)))).sum(dim=dim)


def resize(image: torch.Tensor, size: Sequence[int], method: str) -> torch.Tensor:
    """``image (..., h, w)`` resized to ``(..., H, W)`` with Pillow's ``method`` filter (bicubic or
    lanczos); an axis whose length does not change is left as it is. No clamping: the filters
    overshoot near edges."""
    check_method(method)
    if not image.is_floating_point():
        raise TypeError(f"resize takes a float image, got dtype {image.dtype}")
    height, width = (int(n) for n in size)
    if width != image.shape[-1]:
        image = resize_along(image, -1, width, method)
    if height != image.shape[-2]:
        image = resize_along(image, -2, height, method)
    return image
