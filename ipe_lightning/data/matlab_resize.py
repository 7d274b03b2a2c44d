"""MATLAB ``imresize(A, scale, 'bicubic')``: the resize that made the DIV2K and SR-benchmark LRs.

Written from MATLAB's documented definition (Image Processing Toolbox, ``imresize``: "bicubic
interpolation; the output pixel value is a weighted average of pixels in the nearest 4-by-4
neighborhood", antialiasing on by default when shrinking, output size ``ceil(scale * size)``) and
the algorithm of its ``imresize.m``, function by function:

- ``cubic``: Keys' cubic convolution kernel with ``a = -0.5`` (Keys, "Cubic Convolution
  Interpolation for Digital Image Processing", IEEE Trans. ASSP 29(6), 1981), support 4.
- ``contributions``: when shrinking (``scale < 1``) the kernel is stretched to
  ``h(x) = scale * cubic(scale * x)`` of width ``4 / scale`` (antialiasing); output pixel ``x``
  (1-based) is centred on input coordinate ``u = x / scale + 0.5 * (1 - 1 / scale)``; the taps are
  ``floor(u - width / 2) + (0 .. ceil(width) + 1)``; each output pixel's weights are divided by
  their sum; indices outside ``1..n`` are mirrored through ``[1..n, n..1]`` (symmetric padding,
  the edge pixel repeated). MATLAB releases before about R2013 clamped them instead (replicated
  the edge); every release since mirrors, and that is the one followed here.
- ``dimensionOrder``: the image is resized one dimension at a time, first along the dimension with
  the smaller scale factor; on a tie, rows (height) first.
- ``resizeAlongDim``: each pass writes an array of the input's class, so a uint8 image is rounded
  to uint8 after *every* pass, not only at the end (:func:`imresize_matlab_uint8`).

Pillow's bicubic (``data/degrade.py``, the LIIF protocol) is a different resize: it clamps at the
borders and rounds with its own fixed-point arithmetic; the two must not be swapped silently.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

# MATLAB getMethodInfo: 'bicubic' is the cubic kernel with support width 4.
_CUBIC_WIDTH = 4.0


def cubic_kernel(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with ``a = -0.5`` (MATLAB ``imresize``'s ``cubic``)."""
    # Written as imresize.m writes it (powers, not Horner's form), so the weights take the same
    # floating-point steps; only those steps decide an output that is exactly k + 0.5.
    t = x.abs()
    t2, t3 = t**2, t**3
    near = 1.5 * t3 - 2.5 * t2 + 1  # |x| <= 1
    far = -0.5 * t3 + 2.5 * t2 - 4 * t + 2  # 1 < |x| <= 2
    return torch.where(t <= 1, near, torch.where(t <= 2, far, torch.zeros_like(t)))


def mirror_indices(indices: torch.Tensor, length: int) -> torch.Tensor:
    """0-based indices folded into ``0..length-1`` by symmetric padding (edge repeated).

    MATLAB ``contributions``: ``aux = [1:n, n:-1:1]; indices = aux(mod(indices - 1, 2n) + 1)``.
    """
    folded = torch.remainder(indices, 2 * length)
    return torch.where(folded < length, folded, 2 * length - 1 - folded)


def contributions(
    in_length: int,
    out_length: int,
    scale: float,
    *,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weights, indices)``, each ``(out_length, taps)``: MATLAB ``imresize``'s ``contributions``
    for the bicubic kernel with antialiasing, in float64, indices 0-based and mirrored.

    Output pixel ``k`` is ``sum_j weights[k, j] * input[indices[k, j]]``.
    """
    if scale < 1:  # antialiasing: stretch the kernel so it low-passes before subsampling
        width = _CUBIC_WIDTH / scale

        def kernel(x: torch.Tensor) -> torch.Tensor:
            return scale * cubic_kernel(scale * x)
    else:
        width = _CUBIC_WIDTH
        kernel = cubic_kernel
    x = torch.arange(1, out_length + 1, dtype=torch.float64, device=device)
    # 0.5 in output space maps to 0.5 in input space (pixel edges line up), 1-based.
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    # One tap more than the support needs, as MATLAB takes; an unused tap gets weight 0.
    taps = math.ceil(width) + 2
    indices = left[:, None] + torch.arange(taps, dtype=torch.float64, device=device)
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(dim=1, keepdim=True)
    # MATLAB drops all-zero tap columns; they add nothing, so they are kept here.
    return weights, mirror_indices(indices.long() - 1, in_length)


def resize_along_dim(image: torch.Tensor, dim: int, out_length: int, scale: float) -> torch.Tensor:
    """One MATLAB ``resizeAlongDim`` pass of float64 ``image`` along ``dim``."""
    weights, indices = contributions(image.shape[dim], out_length, scale, device=image.device)
    # The resized dimension goes first, so that each tap gathers whole contiguous rows.
    rows = image.movedim(dim, 0).contiguous()
    flat = rows.reshape(rows.shape[0], -1)
    result = torch.zeros(out_length, flat.shape[1], dtype=torch.float64, device=image.device)
    # Taps accumulated one at a time in MATLAB's order, not a dense (out, in) matrix product: the
    # work is taps x output size (18 taps at x4); duplicate mirrored indices stay separate terms.
    for tap in range(weights.shape[1]):
        result.addcmul_(weights[:, tap, None], flat.index_select(0, indices[:, tap]))
    return result.reshape(out_length, *rows.shape[1:]).movedim(0, dim)


def output_size_and_scale(
    in_size: tuple[int, int],
    scale: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
) -> tuple[tuple[int, int], tuple[float, float]]:
    """MATLAB's ``fixupSizeAndScale``: ``((h, w), (s_h, s_w))`` from exactly one of
    ``scale`` (a number or ``(s_h, s_w)``; size = ``ceil(scale * in)``) and ``size``
    (``(h, w)``; scale = ``out / in`` per axis)."""
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale and size")
    if size is not None:
        out = tuple(int(n) for n in size)
        if len(out) != 2 or min(out) < 1:
            raise ValueError(f"size must be two positive integers (h, w), not {size!r}")
        return (out[0], out[1]), (out[0] / in_size[0], out[1] / in_size[1])
    pair = (scale, scale) if isinstance(scale, numbers.Real) else tuple(scale)
    if len(pair) != 2 or not all(math.isfinite(s) and s > 0 for s in pair):
        raise ValueError(f"scale must be a positive number or (s_h, s_w), not {scale!r}")
    scales = (float(pair[0]), float(pair[1]))
    return (
        (math.ceil(scales[0] * in_size[0]), math.ceil(scales[1] * in_size[1])),
        scales,
    )


def dimension_order(scales: tuple[float, float]) -> tuple[int, int]:
    """MATLAB ``dimensionOrder``: ``(0, 1)`` (height first) unless the width's scale is smaller.

    ``[~, order] = sort(scale)`` is a stable sort, so equal scales keep rows first.
    """
    return (1, 0) if scales[1] < scales[0] else (0, 1)


def to_uint8_matlab(values: torch.Tensor) -> torch.Tensor:
    """Values on the 0..255 scale to uint8 as MATLAB's conversion to ``uint8`` does: saturate to
    ``[0, 255]``, then round half away from zero (``uint8(2.5) == 3``, ``uint8(3.5) == 4``).

    This is also ``im2uint8`` of a ``[0, 1]`` double after scaling by 255. ``torch.round`` rounds
    half to even and must not be used here; after clamping, ``floor(x + 0.5)`` is half away from
    zero.
    """
    return torch.floor(values.to(torch.float64).clamp(0, 255) + 0.5).to(torch.uint8)


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    if image.dim() not in (3, 4):
        raise ValueError(f"expected (C, H, W) or (B, C, H, W), got shape {tuple(image.shape)}")
    return image if image.dim() == 4 else image[None]


def imresize_matlab(
    image: torch.Tensor,
    scale: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
) -> torch.Tensor:
    """MATLAB ``imresize(image, scale, 'bicubic')`` (or ``imresize(image, size, 'bicubic')``) of a
    real-valued image, computed in float64 as MATLAB does for a ``double`` input.

    ``image`` is ``(C, H, W)`` or ``(B, C, H, W)`` of any dtype, on any device (the result stays
    there); values are taken as they are (no rescaling). Returns float64 of the same layout. Give
    exactly one of ``scale`` (a number or ``(s_h, s_w)``) and ``size`` (``(h, w)``). See the module
    docstring for the definition followed.
    """
    batch = _as_batch(image).to(torch.float64)
    out_size, scales = output_size_and_scale(tuple(batch.shape[-2:]), scale, size)
    for axis in dimension_order(scales):
        batch = resize_along_dim(batch, 2 + axis, out_size[axis], scales[axis])
    return batch if image.dim() == 4 else batch[0]


def imresize_matlab_uint8(
    image: torch.Tensor,
    scale: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
) -> torch.Tensor:
    """MATLAB ``imresize(image, scale, 'bicubic')`` of a ``uint8`` image, as the DIV2K and
    benchmark LR files were made: uint8 in, uint8 out.

    As in MATLAB, each one-dimensional pass returns the input's class, so the intermediate image is
    rounded (:func:`to_uint8_matlab`) after the first pass as well as after the second. This is
    not ``to_uint8_matlab(imresize_matlab(image, ...))``: on skimage's astronaut at 1/2, 1/3 and
    1/4 the two differ in 10-14 % of the values, by up to 6 levels (the first pass's overshoot
    beyond [0, 255] is clipped before the second pass).
    """
    if image.dtype != torch.uint8:
        raise TypeError(f"expected a uint8 image, got {image.dtype}")
    batch = _as_batch(image)
    out_size, scales = output_size_and_scale(tuple(batch.shape[-2:]), scale, size)
    for axis in dimension_order(scales):
        passed = resize_along_dim(batch.to(torch.float64), 2 + axis, out_size[axis], scales[axis])
        batch = to_uint8_matlab(passed)
    return batch if image.dim() == 4 else batch[0]
