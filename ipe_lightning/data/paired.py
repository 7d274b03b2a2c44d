"""Paired training samples: the provided LR files with their HR, for fixed-scale networks.

One sample (LIIF ``sr-implicit-paired`` with ``inp_size`` set, as its ``train_edsr-baseline-x2``
and ``train_rdn-x2`` configs train the one-scale EDSR-baseline and RDN):

1. an LR crop of ``inp_size x inp_size`` at a uniform position of the provided LR file (made
   with MATLAB's bicubic ``imresize``, docs/method.md §5);
2. the HR crop over the same area: side ``inp_size · s``, at ``s`` times the LR position;
3. with probability 1/2 each, in this order and identically for LR and HR: reverse the rows,
   reverse the columns, transpose (:class:`~ipe_lightning.data.crops.Augmentation`);
4. the queries: every HR pixel of the crop (``sample_q=None``, the paper's setting) or
   ``sample_q`` of them, as the random-scale sampler makes them (same batch format).

The random draws are made in that order from the given ``numpy.random.Generator``, so a sample is
a function of the pair and the generator's seed alone.

The pairs are checked as paired evaluation checks them (:mod:`ipe_lightning.data.eval_sets`):
the LR folder exists, every LR file exists, is readable and is ``HR // s``; a failure is one
error that names every pair it concerns. Training LR files live, in both DIV2K layouts (the
suite's ``<root>/DIV2K/`` and the LIIF code base's ``load/div2k/``), in
``DIV2K_train_LR_bicubic/X<s>/<name>x<s>.png`` beside the ``DIV2K_train_HR`` folder.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ipe_lightning.data.cache import CacheWriteError
from ipe_lightning.data.crops import Augmentation, sample_queries, to_tensor_image
from ipe_lightning.data.eval_sets import EvalPair, check_paired_size
from ipe_lightning.data.images import DataWarning, ImageReader, Scan
from ipe_lightning.data.layouts import DatasetNotFoundError, require_dir
from ipe_lightning.errors import UserError

TRAIN_LR_FOLDER = "DIV2K_train_LR_bicubic"  # DIV2K's name, beside DIV2K_train_HR


class PairedDataError(UserError, ValueError):
    """A provided LR file that does not fit its HR (unreadable, or not ``HR // s``)."""


def train_lr_dir(hr_folder: Path, scale: int) -> Path:
    """DIV2K's training LR folder at ``scale``: ``DIV2K_train_LR_bicubic/X<s>`` beside the HR
    folder (``<root>/DIV2K/DIV2K_train_HR`` → ``<root>/DIV2K/DIV2K_train_LR_bicubic/X<s>``)."""
    return Path(hr_folder).parent / TRAIN_LR_FOLDER / f"X{scale}"


def lr_file(lr_dir: Path, hr: Path, scale: int) -> Path:
    """``<lr_dir>/<name>x<s>.png``: how DIV2K and the benchmarks name their LR files."""
    return Path(lr_dir) / f"{hr.stem}x{scale}.png"


def paired_sample(
    lr: np.ndarray,
    hr: np.ndarray,
    rng: np.random.Generator,
    *,
    scale: int,
    inp_size: int = 48,
    sample_q: int | None = None,
    augment: bool = True,
) -> dict[str, torch.Tensor]:
    """One training sample from an LR uint8 ``(h, w, 3)`` and its HR ``(H, W, 3)`` (module doc).

    The HR must hold ``LR · s`` (it is ``HR // s`` checked, or bigger by the rows ``// s``
    dropped). Returns float32 ``lr (3, inp_size, inp_size)``, ``coord (Q, 2)``, ``cell (Q, 2)``
    and ``gt (Q, 3)``; images in ``[0, 1]``.
    """
    height, width = lr.shape[:2]
    if inp_size > min(height, width):
        raise ValueError(f"an LR crop of side {inp_size} does not fit an LR of {height}x{width}")
    if hr.shape[0] < height * scale or hr.shape[1] < width * scale:
        raise ValueError(
            f"an HR of {hr.shape[0]}x{hr.shape[1]} does not hold its x{scale} LR of "
            f"{height}x{width}"
        )
    top = int(rng.integers(0, height - inp_size + 1))
    left = int(rng.integers(0, width - inp_size + 1))
    side = inp_size * scale
    lr_crop = lr[top : top + inp_size, left : left + inp_size]
    hr_crop = hr[top * scale : top * scale + side, left * scale : left * scale + side]
    flips = Augmentation.draw(rng) if augment else Augmentation()
    lr_crop, hr_crop = flips.apply(lr_crop), flips.apply(hr_crop)
    return {"lr": to_tensor_image(lr_crop), **sample_queries(hr_crop, rng, sample_q)}


def checked_pairs(
    hr_sizes: Mapping[Path, tuple[int, int]],
    lr_dir: Path,
    scale: int,
    scan: Scan,
    *,
    what: str,
    setting: str,
) -> dict[EvalPair, tuple[int, int]]:
    """Each HR (readable, with its size) paired with its LR file in ``lr_dir``, and the LR's size.

    As paired evaluation: the folder must exist (``setting`` is the option that names it), and
    every LR file must exist, be readable (``scan``) and be ``HR // s``; otherwise one error that
    lists every pair at fault.
    """
    require_dir(Path(lr_dir), f"x{scale} LR folder of {what} ({setting})")
    pairs = [EvalPair(hr.stem, hr, lr_file(lr_dir, hr, scale)) for hr in hr_sizes]
    missing = [pair for pair in pairs if not pair.lr.is_file()]
    if missing:
        listing = "\n".join(f"  HR {pair.hr} -> LR {pair.lr}" for pair in missing)
        raise DatasetNotFoundError(
            f"{what} x{scale}: {len(missing)} LR file(s) missing ({setting}):\n{listing}"
        )
    lr_scan = scan([pair.lr for pair in pairs])
    if lr_scan.bad:
        listing = "\n".join(f"  {path}: {reason}" for path, reason in lr_scan.bad.items())
        raise PairedDataError(f"{what} x{scale}: unreadable LR file(s):\n{listing}")
    wrong = []
    for pair in pairs:
        try:
            check_paired_size(pair, hr_sizes[pair.hr], lr_scan.sizes[pair.lr], scale)
        except ValueError as err:
            wrong.append(f"  {err}")
    if wrong:
        raise PairedDataError(
            f"{what} x{scale}: {len(wrong)} LR file(s) of the wrong size:\n" + "\n".join(wrong)
        )
    return {pair: lr_scan.sizes[pair.lr] for pair in pairs}


def pairs_fitting_crop(
    lr_sizes: Mapping[EvalPair, tuple[int, int]], inp_size: int, *, what: str
) -> list[EvalPair]:
    """The pairs whose LR holds an ``inp_size`` crop; the others dropped with one
    :class:`DataWarning` that lists them, an error if none is left."""
    small = {pair: size for pair, size in lr_sizes.items() if min(size) < inp_size}
    kept = [pair for pair in lr_sizes if pair not in small]
    listing = "\n".join(f"  {pair.lr} ({h}x{w})" for pair, (h, w) in small.items())
    if not kept:
        raise PairedDataError(
            f"no LR file of {what} holds the {inp_size}x{inp_size} training crop "
            f"(data.inp_size):\n{listing}\nUse larger images or a lower data.inp_size."
        )
    if small:
        warnings.warn(
            f"skipping {len(small)} pair(s) of {what} whose LR is smaller than the "
            f"{inp_size}x{inp_size} training crop (data.inp_size):\n{listing}",
            DataWarning,
            stacklevel=2,
        )
    return kept


class PairedPatches(Dataset):
    """``repeat`` paired samples per pair per epoch, drawn with :func:`paired_sample`.

    Keyed like :class:`~ipe_lightning.data.crops.TrainingPatches`: ``(index, sample_seed)`` pairs
    from an :class:`~ipe_lightning.data.sampler.EpochSampler`, pair ``index % len(pairs)``.
    """

    def __init__(
        self,
        pairs: Sequence[EvalPair],
        reader: ImageReader,
        *,
        scale: int,
        repeat: int = 1,
        inp_size: int = 48,
        sample_q: int | None = None,
        augment: bool = True,
    ) -> None:
        if not pairs:
            raise ValueError("PairedPatches needs at least one pair")
        if repeat < 1:
            raise ValueError(f"repeat must be a positive integer, got {repeat}")
        self.pairs = list(pairs)
        self.reader = reader
        self.repeat = repeat
        self.options = {
            "scale": scale,
            "inp_size": inp_size,
            "sample_q": sample_q,
            "augment": augment,
        }

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def _read(self, path: Path) -> np.ndarray:
        try:
            return self.reader(path)
        except CacheWriteError:  # the image is fine; its message names the cache entry
            raise
        except Exception as err:
            raise RuntimeError(f"could not read training image {path}: {err}") from err

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        if not isinstance(key, tuple | list) or len(key) != 2:
            raise TypeError(
                "PairedPatches is indexed by (index, sample_seed) pairs; load it with an "
                f"EpochSampler, got {key!r}"
            )
        index, sample_seed = key
        pair = self.pairs[index % len(self.pairs)]
        lr, hr = self._read(pair.lr), self._read(pair.hr)
        return paired_sample(lr, hr, np.random.default_rng(sample_seed), **self.options)
