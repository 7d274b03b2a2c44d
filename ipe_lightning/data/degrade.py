"""Degradation: Pillow bicubic downsampling of uint8 images and the docs/method.md §4 crop rule.

Pillow's ``Image.resize(..., BICUBIC)`` is antialiased (its kernel widens with the downscale
factor) and works on the uint8 image, as in the LIIF code base (docs/method.md §3, §4). Other
bicubic implementations (torch, MATLAB ``imresize``) give different pixels and must not be swapped
in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from ipe_lightning.scales import as_scale_pair

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


def generate_lr(hr: np.ndarray, scale: float | Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(lr, hr_crop)`` for any scale, docs/method.md §4 (LIIF ``SRImplicitDownsampled`` at test).

    The HR is cropped from the top-left corner to ``round(h_lr·s) x round(w_lr·s)`` and ``lr`` is
    Pillow bicubic of that crop.
    """
    lr_size = generated_lr_size(hr.shape[:2], scale)
    if min(lr_size) < 1:
        raise ValueError(
            f"an image of {hr.shape[0]}x{hr.shape[1]} is too small for scale {scale}: "
            f"its LR would be {lr_size[0]}x{lr_size[1]}"
        )
    crop_h, crop_w = generated_hr_size(lr_size, scale)
    hr_crop = hr[:crop_h, :crop_w]
    return resize_bicubic(hr_crop, lr_size), np.ascontiguousarray(hr_crop)


def paired_lr_matches(hr_size: tuple[int, int], lr_size: tuple[int, int], scale: int) -> bool:
    """Does a provided LR of ``lr_size`` fit an HR of ``hr_size`` at ``scale`` (``HR // s``)?"""
    return lr_size == (hr_size[0] // scale, hr_size[1] // scale)


def crop_to_paired_lr(hr: np.ndarray, lr: np.ndarray, scale: int) -> np.ndarray:
    """The HR cropped to ``LR·s`` (docs/method.md §4, LIIF ``SRImplicitPaired``)."""
    return np.ascontiguousarray(hr[: lr.shape[0] * scale, : lr.shape[1] * scale])
