"""Degradation: bicubic downsampling of uint8 images (``data.degrade``) and the docs/method.md §4
crop rule.

Two resizes, chosen by name (:data:`DEGRADATIONS`, :func:`lr_resize`):

- ``pillow`` (the default, the paper's training protocol): Pillow's ``Image.resize(..., BICUBIC)``,
  antialiased (its kernel widens with the downscale factor) on the uint8 image, as in the LIIF code
  base (docs/method.md §3, §4);
- ``matlab``: MATLAB ``imresize(hr, [h w], 'bicubic')`` of the uint8 image
  (:mod:`ipe_lightning.data.matlab_resize`), the resize that made the DIV2K and benchmark LR files.

They differ in 11-19 % of the 8-bit values (docs/performance.md); torch's bicubic is a third,
non-antialiased one and is not offered.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image

from ipe_lightning.data.matlab_resize import imresize_matlab_uint8
from ipe_lightning.errors import SettingError
from ipe_lightning.scales import as_scale_pair

DEGRADATIONS = ("pillow", "matlab")  # data.degrade; the first is the default
Resize = Callable[[np.ndarray, tuple[int, int]], np.ndarray]

# LIIF test code: floor(H / s + 1e-9), so that e.g. 300 / (300 / 7) is 7, not 6.999...
_FLOOR_EPS = 1e-9


def resize_bicubic(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pillow bicubic resize of RGB uint8 ``(H, W, 3)`` to ``size = (h, w)``."""
    height, width = size
    if height < 1 or width < 1:
        raise ValueError(f"cannot resize to {height}x{width}")
    resized = Image.fromarray(np.ascontiguousarray(pixels)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    return np.asarray(resized)


def resize_matlab_bicubic(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """MATLAB ``imresize(pixels, [h w], 'bicubic')`` of RGB uint8 ``(H, W, 3)`` to ``(h, w)``."""
    height, width = size
    if height < 1 or width < 1:
        raise ValueError(f"cannot resize to {height}x{width}")
    chw = torch.tensor(pixels).permute(2, 0, 1)  # a copy: decoded arrays may be read-only
    return imresize_matlab_uint8(chw, size=(height, width)).permute(1, 2, 0).numpy()


_RESIZES: dict[str, Resize] = {"pillow": resize_bicubic, "matlab": resize_matlab_bicubic}


def check_degrade(degrade: str, key: str = "data.degrade") -> str:
    """``degrade`` if it names a resize of :data:`DEGRADATIONS`, else an error naming ``key``."""
    if degrade not in _RESIZES:
        raise SettingError(f"{key} must be one of {', '.join(DEGRADATIONS)}, got {degrade!r}")
    return degrade


def lr_resize(degrade: str = "pillow") -> Resize:
    """The ``(pixels, (h, w)) -> pixels`` uint8 resize that ``data.degrade=<degrade>`` names."""
    return _RESIZES[check_degrade(degrade)]


def generated_lr_size(hr_size: tuple[int, int], scale: float | Sequence[float]) -> tuple[int, int]:
    """``(floor(H / s_h + 1e-9), floor(W / s_w + 1e-9))`` (docs/method.md §4)."""
    scale_h, scale_w = as_scale_pair(scale)
    return (
        math.floor(hr_size[0] / scale_h + _FLOOR_EPS),
        math.floor(hr_size[1] / scale_w + _FLOOR_EPS),
    )


def generated_hr_size(lr_size: tuple[int, int], scale: float | Sequence[float]) -> tuple[int, int]:
    """The HR crop of a generated pair: ``(round(h·s_h), round(w·s_w))`` (docs/method.md §4)."""
    scale_h, scale_w = as_scale_pair(scale)
    return round(lr_size[0] * scale_h), round(lr_size[1] * scale_w)


def generate_lr(
    hr: np.ndarray, scale: float | Sequence[float], degrade: str = "pillow"
) -> tuple[np.ndarray, np.ndarray]:
    """``(lr, hr_crop)`` for any scale, docs/method.md §4 (LIIF ``SRImplicitDownsampled`` at test).

    The HR is cropped from the top-left corner to ``round(h_lr·s) x round(w_lr·s)`` and ``lr`` is
    that crop resized to ``(h_lr, w_lr)`` by ``degrade`` (Pillow or MATLAB bicubic). At an integer
    scale the crop is the benchmark scripts' ``modcrop`` and the MATLAB LR is
    ``imresize(crop, 1/s, 'bicubic')``, as the provided LR files were made.
    """
    resize = lr_resize(degrade)
    lr_size = generated_lr_size(hr.shape[:2], scale)
    if min(lr_size) < 1:
        raise ValueError(
            f"an image of {hr.shape[0]}x{hr.shape[1]} is too small for scale {scale}: "
            f"its LR would be {lr_size[0]}x{lr_size[1]}"
        )
    crop_h, crop_w = generated_hr_size(lr_size, scale)
    hr_crop = hr[:crop_h, :crop_w]
    return resize(hr_crop, lr_size), np.ascontiguousarray(hr_crop)


def paired_lr_matches(hr_size: tuple[int, int], lr_size: tuple[int, int], scale: int) -> bool:
    """Does a provided LR of ``lr_size`` fit an HR of ``hr_size`` at ``scale`` (``HR // s``)?"""
    return lr_size == (hr_size[0] // scale, hr_size[1] // scale)


def crop_to_paired_lr(hr: np.ndarray, lr: np.ndarray, scale: int) -> np.ndarray:
    """The HR cropped to ``LR·s`` (docs/method.md §4, LIIF ``SRImplicitPaired``)."""
    return np.ascontiguousarray(hr[: lr.shape[0] * scale, : lr.shape[1] * scale])
