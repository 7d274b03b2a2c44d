"""The training sample (docs/method.md §3) as a pure function of an HR image and a generator.

One sample (LIIF ``SRImplicitDownsampled`` with ``inp_size`` set, and its ``augment`` option):

1. ``s ~ U(scale_min, scale_max)``;
2. an HR crop of side ``round(inp_size · s)`` at a uniform position;
3. the LR: bicubic of the uint8 crop to ``inp_size x inp_size``, Pillow's or, with
   ``degrade="matlab"``, MATLAB's (:mod:`ipe_lightning.data.degrade`);
4. with probability 1/2 each, in this order and identically for LR and HR: reverse the rows,
   reverse the columns, transpose;
5. ``sample_q`` HR pixels without replacement as queries: their LIIF centres (docs/method.md §1)
   in the (square) crop, the cell ``2 / side``, and their RGB as the target.

The random draws are made in that order from the given ``numpy.random.Generator``, so a sample is a
function of the image and the generator's seed alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ipe_lightning.coords import coord_of_indices, make_cell
from ipe_lightning.data.cache import CacheWriteError
from ipe_lightning.data.degrade import lr_resize
from ipe_lightning.data.images import DataWarning, ImageReader


@dataclass(frozen=True)
class Augmentation:
    """The dihedral augmentation of LIIF's training wrapper, applied in field order."""

    flip_rows: bool = False
    flip_cols: bool = False
    transpose: bool = False

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Augmentation:
        """Each flag on with probability 1/2 (LIIF ``augment``: ``random.random() < 0.5``)."""
        flip_rows, flip_cols, transpose = (rng.random(3) < 0.5).tolist()
        return cls(flip_rows, flip_cols, transpose)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Apply to ``(H, W, C)``; returns a view."""
        if self.flip_rows:
            pixels = pixels[::-1]
        if self.flip_cols:
            pixels = pixels[:, ::-1]
        if self.transpose:
            pixels = pixels.swapaxes(0, 1)
        return pixels


def crop_side(inp_size: int, scale: float) -> int:
    """HR crop side for LR side ``inp_size`` at ``scale``: ``round(inp_size · s)`` (LIIF)."""
    return round(inp_size * scale)


def largest_crop_side(inp_size: int, scale_max: float) -> int:
    """The largest HR crop a sampler with ``scale_max`` can ask for: images need this min side."""
    return crop_side(inp_size, scale_max)


def images_fitting_crop(
    sizes: dict[Path, tuple[int, int]], inp_size: int, scale_max: float, *, what: str
) -> list[Path]:
    """The images whose shorter side holds the largest training crop ``round(inp_size·scale_max)``.

    Smaller ones are dropped with one :class:`DataWarning` listing them; if none is left, an error.
    """
    side = largest_crop_side(inp_size, scale_max)
    small = {path: size for path, size in sizes.items() if min(size) < side}
    kept = [path for path in sizes if path not in small]
    rule = f"{side}x{side} = round(inp_size·scale_max) = round({inp_size}·{scale_max:g})"
    listing = "\n".join(f"  {path} ({h}x{w})" for path, (h, w) in small.items())
    if not kept:
        raise ValueError(
            f"no image of {what} holds the largest training crop {rule}:\n{listing}\n"
            "Use larger images or lower data.scale_max / data.inp_size."
        )
    if small:
        warnings.warn(
            f"skipping {len(small)} image(s) of {what} smaller than the largest training crop "
            f"{rule}:\n{listing}",
            DataWarning,
            stacklevel=2,
        )
    return kept


def to_tensor_image(pixels: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` → float32 ``(3, H, W)`` in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).float().div_(255)


def training_sample(
    hr: np.ndarray,
    rng: np.random.Generator,
    *,
    inp_size: int = 48,
    scale_min: float = 1.0,
    scale_max: float = 4.0,
    sample_q: int | None = 2304,
    augment: bool = True,
    degrade: str = "pillow",
) -> dict[str, torch.Tensor]:
    """One training sample from RGB uint8 ``hr (H, W, 3)`` (see the module docstring).

    Returns float32 ``lr (3, inp_size, inp_size)``, ``coord (Q, 2)``, ``cell (Q, 2)`` and
    ``gt (Q, 3)``; images in ``[0, 1]``. ``sample_q=None`` keeps every HR pixel of the crop.
    """
    if not 0 < scale_min <= scale_max:
        raise ValueError(f"need 0 < scale_min <= scale_max, got {scale_min}, {scale_max}")
    scale = float(rng.uniform(scale_min, scale_max))
    side = crop_side(inp_size, scale)
    height, width = hr.shape[:2]
    if side > min(height, width):
        raise ValueError(
            f"an HR crop of side {side} (scale {scale:.3f}) does not fit an image of "
            f"{height}x{width}"
        )
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    hr_crop = np.ascontiguousarray(hr[top : top + side, left : left + side])
    # LIIF: the LR is made from the crop before augmenting, then both get the same flips.
    lr = lr_resize(degrade)(hr_crop, (inp_size, inp_size))
    flips = Augmentation.draw(rng) if augment else Augmentation()
    lr, hr_crop = flips.apply(lr), flips.apply(hr_crop)
    return {"lr": to_tensor_image(lr), **sample_queries(hr_crop, rng, sample_q)}


def sample_queries(
    hr_crop: np.ndarray, rng: np.random.Generator, sample_q: int | None
) -> dict[str, torch.Tensor]:
    """The queries of a square HR crop ``(side, side, 3)``: ``sample_q`` of its pixels drawn
    without replacement, or every pixel (``None``), with their LIIF centres, cells and RGB.

    Returns float32 ``coord (Q, 2)``, ``cell (Q, 2)`` (``2 / side``) and ``gt (Q, 3)`` in
    ``[0, 1]``.
    """
    side = hr_crop.shape[0]
    n_pixels = side * side
    if sample_q is None:
        index = np.arange(n_pixels)
    elif sample_q > n_pixels:
        raise ValueError(f"sample_q={sample_q} exceeds the {n_pixels} pixels of a {side}² crop")
    else:
        index = rng.choice(n_pixels, size=sample_q, replace=False)
    rows, cols = np.divmod(index, side)
    return {
        "coord": coord_of_indices(torch.from_numpy(index), (side, side)),
        "cell": make_cell((side, side), len(index)),
        "gt": torch.from_numpy(hr_crop[rows, cols]).float().div_(255),
    }


class TrainingPatches(Dataset):
    """``repeat`` training samples per image per epoch, drawn with :func:`training_sample`.

    Items are keyed by ``(index, sample_seed)`` pairs from an
    :class:`~ipe_lightning.data.sampler.EpochSampler`: image ``index % len(paths)`` and a
    ``numpy.random.Generator`` seeded with ``sample_seed`` (LIIF's ``repeat`` wrapper, with the
    randomness moved from global state into the key).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        reader: ImageReader,
        *,
        repeat: int = 1,
        inp_size: int = 48,
        scale_min: float = 1.0,
        scale_max: float = 4.0,
        sample_q: int | None = 2304,
        augment: bool = True,
        degrade: str = "pillow",
    ) -> None:
        if not paths:
            raise ValueError("TrainingPatches needs at least one image")
        if repeat < 1:
            raise ValueError(f"repeat must be a positive integer, got {repeat}")
        self.paths = list(paths)
        self.reader = reader
        self.repeat = repeat
        self.options = {
            "inp_size": inp_size,
            "scale_min": scale_min,
            "scale_max": scale_max,
            "sample_q": sample_q,
            "augment": augment,
            "degrade": degrade,
        }

    def __len__(self) -> int:
        return len(self.paths) * self.repeat

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        if not isinstance(key, tuple | list) or len(key) != 2:
            raise TypeError(
                "TrainingPatches is indexed by (index, sample_seed) pairs; load it with an "
                f"EpochSampler, got {key!r}"
            )
        index, sample_seed = key
        path = self.paths[index % len(self.paths)]
        try:
            hr = self.reader(path)
        except CacheWriteError:  # the image is fine; its message names the cache entry
            raise
        except Exception as err:
            raise RuntimeError(f"could not read training image {path}: {err}") from err
        return training_sample(hr, np.random.default_rng(sample_seed), **self.options)
