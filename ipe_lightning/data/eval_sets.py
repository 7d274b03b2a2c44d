"""Evaluation sets (docs/method.md §4): one dataset per (set, scale), items ready for the metrics.

A set is a name and a spec (``eval.sets.<name>`` in ``conf/eval/sets/*.yaml``):

``images``   an image source (:mod:`ipe_lightning.data.sources`): ``DIV2K``, ``Benchmark``,
             ``ImageFolders`` or ``BundledPhotos``; its test images and its provided LR files
``scales``   a list whose entries are a number ``s`` or a pair ``[s_h, s_w]``
``channel``  where the metrics are computed: ``rgb`` or ``y`` (BT.601 luma, docs/method.md §4)
``shave``    border pixels left out of the metrics: an integer, or a rule resolved per scale:
             ``scale`` = ``ceil(max(s_h, s_w))`` (benchmarks: ``s``) and
             ``scale_plus_6`` = ``ceil(max(s_h, s_w)) + 6`` (LIIF test code: DIV2K ``s + 6``)
``paired``   use the provided bicubic LR files where the source has them (default true)
``degrade``  how LR is generated where no file is provided: ``pillow`` (default) or ``matlab``
             (:mod:`ipe_lightning.data.degrade`; ``eval.degrade``, which follows ``data.degrade``)

The name appears in logs as ``test/<name>/x<scale>/...``. LR inputs: at a scale where the source
ships LR files (x2, x3, x4 of DIV2K and the benchmarks) the provided LR file, with the HR cropped
to ``LR·s``; at any other scale (non-integer and per-axis included) the docs/method.md §4 crop rule
and the set's ``degrade`` resize (Pillow bicubic by default). Items are ``lr (3, h, w)``,
``hr (3, H, W)`` float32 in ``[0, 1]``, ``name``, ``scale`` ``(s_h, s_w)``, ``channel`` and the
resolved integer ``shave``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ipe_lightning.data.cache import CacheWriteError
from ipe_lightning.data.crops import to_tensor_image
from ipe_lightning.data.degrade import (
    check_degrade,
    crop_to_paired_lr,
    generate_lr,
    generated_lr_size,
    paired_lr_matches,
)
from ipe_lightning.data.images import (
    BadImageError,
    ImageReader,
    Scan,
    check_images,
    scan_images,
    unique_stems,
)
from ipe_lightning.data.layouts import DatasetNotFoundError, require_dir
from ipe_lightning.data.sources import ImageSource, require_source
from ipe_lightning.errors import SettingError
from ipe_lightning.scales import Scale, as_scale_pair, scale_tag

CHANNELS = ("rgb", "y")
SHAVE_RULES = ("scale", "scale_plus_6")


def resolve_shave(rule: str | int, scale: float | Sequence[float]) -> int:
    """The border in pixels for ``scale`` (see the module docstring for the rules)."""
    if isinstance(rule, bool):
        raise ValueError(f"shave must be an integer or one of {SHAVE_RULES}, got {rule!r}")
    if isinstance(rule, int):
        if rule < 0:
            raise ValueError(f"shave must be non-negative, got {rule}")
        return rule
    # Non-integer and per-axis scales round up: at least the benchmarks' s pixels on every side.
    largest = math.ceil(max(as_scale_pair(scale)))
    if rule == "scale":
        return largest
    if rule == "scale_plus_6":
        return largest + 6
    raise ValueError(f"shave must be an integer or one of {SHAVE_RULES}, got {rule!r}")


@dataclass(frozen=True)
class EvalSetSpec:
    """One evaluation set (see the module docstring)."""

    name: str
    images: ImageSource
    scales: tuple[Scale, ...]
    channel: str = "y"
    shave: str | int = "scale"
    paired: bool = True
    degrade: str = "pillow"

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any]) -> EvalSetSpec:
        """Validate the config of set ``name``; unknown keys and bad values are errors naming it."""
        if not name or not isinstance(name, str) or "/" in name:
            raise ValueError(f"an eval set needs a name without '/', got {name!r}")
        spec = dict(spec)
        known = set(cls.__dataclass_fields__) - {"name"}
        if unknown := set(spec) - known:
            raise ValueError(
                f"eval set {name!r}: unknown keys {sorted(unknown)}, known: {sorted(known)}"
            )
        require_source(spec.get("images"), f"eval set {name!r}: images")
        if spec.get("channel", "y") not in CHANNELS:
            raise ValueError(
                f"eval set {name!r}: channel must be one of {CHANNELS}, got {spec['channel']!r}"
            )
        scales = spec.get("scales")
        if not scales or isinstance(scales, str | int | float):
            raise ValueError(f"eval set {name!r}: scales must be a non-empty list, got {scales!r}")
        spec["scales"] = tuple(as_scale_pair(s) for s in scales)
        if below := [s for s in scales if min(as_scale_pair(s)) < 1]:
            # an SR evaluation upsamples: a scale below 1 would score a downsampling
            raise SettingError(
                f"eval set {name!r}: every scale in eval.scales (eval.sets.{name}.scales) must be "
                f">= 1 for super-resolution, got {below}"
            )
        resolve_shave(spec.get("shave", "scale"), spec["scales"][0])  # validates the rule
        check_degrade(spec.get("degrade", "pillow"), f"eval.degrade (eval.sets.{name}.degrade)")
        return cls(name=name, **spec)


@dataclass(frozen=True)
class EvalPair:
    """An HR image and, for a paired scale, its provided LR file."""

    name: str
    hr: Path
    lr: Path | None = None


class EvalImages(Dataset):
    """The images of one set at one scale (paired LR files or generated LR)."""

    def __init__(
        self,
        pairs: Sequence[EvalPair],
        scale: float | Sequence[float],
        reader: ImageReader,
        *,
        channel: str = "y",
        shave: str | int = "scale",
        paired_scale: int | None = None,
        degrade: str = "pillow",
        skipped: Mapping[Path, str] | None = None,
    ) -> None:
        self.pairs = list(pairs)
        # HR files of the set left out as unreadable (data.skip_bad=true), each with why
        self.skipped = dict(skipped or {})
        self.scale = as_scale_pair(scale)
        self.reader = reader
        self.channel = channel
        self.shave = resolve_shave(shave, self.scale)
        self.paired_scale = paired_scale
        self.degrade = check_degrade(degrade)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        hr = _read(self.reader, pair.hr)
        if self.paired_scale is None:
            lr, hr = generate_lr(hr, self.scale, self.degrade)
        else:
            lr = _read(self.reader, pair.lr)
            check_paired_size(pair, hr.shape[:2], lr.shape[:2], self.paired_scale)
            hr = crop_to_paired_lr(hr, lr, self.paired_scale)
        return {
            "lr": to_tensor_image(lr),
            "hr": to_tensor_image(hr),
            "name": pair.name,
            "scale": self.scale,
            "channel": self.channel,
            "shave": self.shave,
        }


def _read(reader: ImageReader, path: Path) -> np.ndarray:
    try:
        return reader(path)
    except CacheWriteError:  # the image is fine; its message names the cache entry
        raise
    except Exception as err:  # e.g. pixel data cut short: the header scan cannot see that
        raise RuntimeError(f"could not read evaluation image {path}: {err}") from err


def collate_eval(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch of one: ``lr (1, 3, h, w)``, ``hr (1, 3, H, W)``; metadata stays plain Python."""
    if len(batch) != 1:
        raise ValueError(f"evaluation images differ in size: use batch_size=1, got {len(batch)}")
    (item,) = batch
    return {
        **item,
        "lr": item["lr"][None],
        "hr": item["hr"][None],
        "scale": tuple(float(s) for s in item["scale"]),
    }


def check_paired_size(
    pair: EvalPair, hr_size: tuple[int, int], lr_size: tuple[int, int], scale: int
) -> None:
    """A provided LR must be ``HR // s`` on both axes; else an error naming the pair."""
    if not paired_lr_matches(tuple(hr_size), tuple(lr_size), scale):
        raise BadImageError(
            f"LR {pair.lr} is {lr_size[0]}x{lr_size[1]}, but its HR {pair.hr} is "
            f"{hr_size[0]}x{hr_size[1]}: expected {hr_size[0] // scale}x{hr_size[1] // scale} "
            f"(HR // {scale}) for x{scale}; or eval.sets.<set>.paired=false to generate the LR"
        )


def paired_scale_of(spec: EvalSetSpec, scale: Scale) -> int | None:
    """The integer scale whose LR files a set uses at ``scale``, or ``None`` (generated LR)."""
    scale_h, scale_w = scale
    if not (spec.paired and scale_h == scale_w and scale_h.is_integer()):
        return None
    return int(scale_h) if int(scale_h) in spec.images.paired_scales else None


def build_eval_datasets(
    spec: EvalSetSpec, reader: ImageReader, *, skip_bad: bool = False, scan: Scan = scan_images
) -> list[tuple[str, EvalImages]]:
    """``[("<name>/x<scale>", dataset), ...]`` in the order of ``spec.scales``, checked up front.

    Checks, with ``scan`` (a header scan by default): the folders exist, the HR images are
    readable (``skip_bad`` drops bad ones with a warning), every paired LR file exists, is readable
    and is ``HR // s``, and every generated LR has at least one pixel.
    """
    hr_paths = spec.images.test_images(spec.name)
    what = f"eval set {spec.name!r}"
    found = check_images(hr_paths, skip_bad=skip_bad, what=what, scan=scan)
    hr_sizes = found.sizes
    if not hr_sizes:
        raise DatasetNotFoundError(f"eval set {spec.name!r} has no readable HR images left")
    datasets = []
    for scale in spec.scales:
        paired_scale = paired_scale_of(spec, scale)
        if paired_scale is None:
            names = unique_stems(list(hr_sizes))
            pairs = [EvalPair(name, hr) for name, hr in zip(names, hr_sizes, strict=True)]
            for pair in pairs:
                _check_generated_size(spec, pair, hr_sizes[pair.hr], scale)
        else:
            pairs = _paired(spec, paired_scale, hr_sizes, scan)
        dataset = EvalImages(
            pairs,
            scale,
            reader,
            channel=spec.channel,
            shave=spec.shave,
            paired_scale=paired_scale,
            degrade=spec.degrade,
            skipped=found.bad,
        )
        datasets.append((f"{spec.name}/{scale_tag(scale)}", dataset))
    return datasets


def _check_generated_size(
    spec: EvalSetSpec, pair: EvalPair, hr_size: tuple[int, int], scale: Scale
) -> None:
    lr_size = generated_lr_size(hr_size, scale)
    if min(lr_size) < 1:
        raise SettingError(
            f"eval set {spec.name!r}: {pair.hr} ({hr_size[0]}x{hr_size[1]}) is too small for "
            f"scale {scale_tag(scale)}: its LR would be {lr_size[0]}x{lr_size[1]}; use smaller "
            "eval.scales for this set"
        )


def _paired(
    spec: EvalSetSpec, scale: int, hr_sizes: dict[Path, tuple[int, int]], scan: Scan
) -> list[EvalPair]:
    require_dir(spec.images.lr_dir(scale), f"x{scale} LR folder of eval set {spec.name!r}")
    names = unique_stems(list(hr_sizes))
    pairs = [
        EvalPair(name, hr, spec.images.lr_file(hr, scale))
        for name, hr in zip(names, hr_sizes, strict=True)
    ]
    missing = [pair for pair in pairs if not pair.lr.is_file()]
    if missing:
        listing = "\n".join(f"  HR {pair.hr} -> LR {pair.lr}" for pair in missing)
        raise DatasetNotFoundError(
            f"eval set {spec.name!r} x{scale}: {len(missing)} LR file(s) missing:\n{listing}"
        )
    lr_scan = scan(pair.lr for pair in pairs)
    if lr_scan.bad:
        listing = "\n".join(f"  {path}: {reason}" for path, reason in lr_scan.bad.items())
        raise ValueError(f"eval set {spec.name!r} x{scale}: unreadable LR file(s):\n{listing}")
    for pair in pairs:
        check_paired_size(pair, hr_sizes[pair.hr], lr_scan.sizes[pair.lr], scale)
    return pairs
