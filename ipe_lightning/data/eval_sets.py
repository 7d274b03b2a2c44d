"""Evaluation sets (METHOD.md §4): one dataset per (set, scale), items ready for the metrics.

A set is described by a spec (one entry of ``eval.sets`` in ``conf/eval/*.yaml``):

``name``     the name in logs: ``test/<name>/x<scale>/...``
``layout``   ``div2k`` (``<root>/DIV2K/DIV2K_valid_HR``), ``benchmark``
             (``<root>/benchmark/<subdir>``), ``bundled`` (the held-out scikit-image photos) or
             ``folder`` (``root`` is an HR folder)
``scales``   a list whose entries are a number ``s`` or a pair ``[s_h, s_w]``
``channel``  where the metrics are computed: ``rgb`` or ``y`` (BT.601 luma, METHOD.md §4)
``shave``    border pixels left out of the metrics: an integer, or a rule resolved per scale:
             ``scale`` = ``ceil(max(s_h, s_w))`` (benchmarks: ``s``) and
             ``scale_plus_6`` = ``ceil(max(s_h, s_w)) + 6`` (LIIF test code: DIV2K ``s + 6``)
``root``     the data root (``div2k``/``benchmark``) or the HR folder (``folder``)
``subdir``   the benchmark's folder name (``Set5``, ``Set14``, ``B100``, ``Urban100``)
``paired``   use the provided bicubic LR files for x2/x3/x4 (default true; ``div2k``/``benchmark``)

LR inputs: at x2, x3, x4 of a paired set the provided LR file, with the HR cropped to ``LR·s``;
at any other scale (non-integer and per-axis included) the METHOD.md §4 crop rule and Pillow
bicubic. Items are ``lr (3, h, w)``, ``hr (3, H, W)`` float32 in ``[0, 1]``, ``name``, ``scale``
``(s_h, s_w)``, ``channel`` and the resolved integer ``shave``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ipe_lightning.data import bundled
from ipe_lightning.data.crops import to_tensor_image
from ipe_lightning.data.degrade import (
    crop_to_paired_lr,
    generate_lr,
    generated_lr_size,
    paired_lr_matches,
)
from ipe_lightning.data.images import ImageSource, readable_images, scan_images
from ipe_lightning.data.layouts import (
    FOLDER_LAYOUT,
    PAIRED_SCALES,
    DatasetNotFoundError,
    benchmark_hr_dir,
    benchmark_lr_dir,
    div2k_lr_dir,
    div2k_valid_dir,
    paired_lr_path,
    require_dir,
    require_images,
    require_root,
)
from ipe_lightning.inference import as_scale_pair

LAYOUTS = ("div2k", "benchmark", "bundled", "folder")
CHANNELS = ("rgb", "y")
SHAVE_RULES = ("scale", "scale_plus_6")

Scale = tuple[float, float]


def scale_tag(scale: float | Sequence[float]) -> str:
    """``x2``, ``x2.5``, ``x2.5x3`` (per-axis): how a scale appears in names and logs."""
    scale_h, scale_w = as_scale_pair(scale)

    def number(value: float) -> str:
        return str(int(value)) if value.is_integer() else repr(value)

    if scale_h == scale_w:
        return f"x{number(scale_h)}"
    return f"x{number(scale_h)}x{number(scale_w)}"


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
    layout: str
    scales: tuple[Scale, ...]
    channel: str = "y"
    shave: str | int = "scale"
    root: str | None = None
    subdir: str | None = None
    paired: bool = True

    @classmethod
    def from_config(cls, spec: Mapping[str, Any]) -> EvalSetSpec:
        """Validate a config entry; unknown keys and bad values are errors naming the set."""
        spec = dict(spec)
        name = spec.get("name")
        known = set(cls.__dataclass_fields__)
        if unknown := set(spec) - known:
            raise ValueError(
                f"eval set {name!r}: unknown keys {sorted(unknown)}, known: {sorted(known)}"
            )
        if not name or not isinstance(name, str) or "/" in name:
            raise ValueError(f"an eval set needs a name without '/', got {name!r}")
        if spec.get("layout") not in LAYOUTS:
            raise ValueError(
                f"eval set {name!r}: layout must be one of {LAYOUTS}, got {spec.get('layout')!r}"
            )
        if spec.get("channel", "y") not in CHANNELS:
            raise ValueError(
                f"eval set {name!r}: channel must be one of {CHANNELS}, got {spec['channel']!r}"
            )
        scales = spec.get("scales")
        if not scales or isinstance(scales, str | int | float):
            raise ValueError(f"eval set {name!r}: scales must be a non-empty list, got {scales!r}")
        spec["scales"] = tuple(as_scale_pair(s) for s in scales)
        if spec["layout"] == "benchmark" and not spec.get("subdir"):
            raise ValueError(f"eval set {name!r}: a benchmark needs subdir (e.g. Set5)")
        resolve_shave(spec.get("shave", "scale"), spec["scales"][0])  # validates the rule
        return cls(**spec)


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
        source: ImageSource,
        *,
        channel: str = "y",
        shave: str | int = "scale",
        paired_scale: int | None = None,
    ) -> None:
        self.pairs = list(pairs)
        self.scale = as_scale_pair(scale)
        self.source = source
        self.channel = channel
        self.shave = resolve_shave(shave, self.scale)
        self.paired_scale = paired_scale

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        hr = _read(self.source, pair.hr)
        if self.paired_scale is None:
            lr, hr = generate_lr(hr, self.scale)
        else:
            lr = _read(self.source, pair.lr)
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


def _read(source: ImageSource, path: Path) -> np.ndarray:
    try:
        return source(path)
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
        raise ValueError(
            f"LR {pair.lr} is {lr_size[0]}x{lr_size[1]}, but its HR {pair.hr} is "
            f"{hr_size[0]}x{hr_size[1]}: expected {hr_size[0] // scale}x{hr_size[1] // scale} "
            f"(HR // {scale}) for x{scale}"
        )


def _hr_images(spec: EvalSetSpec) -> tuple[list[Path], Path | None]:
    """The HR files of a set and the root its LR folders hang from (``None``: no paired LR)."""
    if spec.layout == "bundled":
        return bundled.held_out_photos(), None
    if spec.layout == "folder":
        folder = require_root(
            spec.root,
            "eval.root",
            f"eval set {spec.name!r} (eval=folder) needs a folder of HR images",
            layout=FOLDER_LAYOUT,
        )
        return require_images(folder, f"eval set {spec.name!r} (eval.root)", FOLDER_LAYOUT), None
    root = require_root(
        spec.root,
        "eval.root",
        f"eval set {spec.name!r} needs the folder that holds DIV2K/ and benchmark/ "
        "(eval.root defaults to data.root)",
        env_var="IPE_DATA_ROOT",
    )
    if spec.layout == "div2k":
        hr_dir = div2k_valid_dir(root)
        return require_images(hr_dir, f"DIV2K validation HR of eval set {spec.name!r}"), root
    hr_dir = benchmark_hr_dir(root, spec.subdir)
    return require_images(hr_dir, f"{spec.subdir} HR of eval set {spec.name!r}"), root


def _lr_dir(spec: EvalSetSpec, root: Path, scale: int) -> Path:
    if spec.layout == "div2k":
        return div2k_lr_dir(root, scale)
    return benchmark_lr_dir(root, spec.subdir, scale)


def paired_scale_of(spec: EvalSetSpec, scale: Scale, has_lr_files: bool) -> int | None:
    """The integer scale whose LR files a set uses at ``scale``, or ``None`` (generated LR)."""
    scale_h, scale_w = scale
    if not (spec.paired and has_lr_files and scale_h == scale_w and scale_h.is_integer()):
        return None
    return int(scale_h) if int(scale_h) in PAIRED_SCALES else None


def build_eval_datasets(
    spec: EvalSetSpec | Mapping[str, Any], source: ImageSource, *, skip_bad: bool = False
) -> list[tuple[str, EvalImages]]:
    """``[("<name>/x<scale>", dataset), ...]`` in the order of ``spec.scales``, checked up front.

    Checks (header reads only): the folders exist, the HR images are readable (``skip_bad`` drops
    bad ones with a warning), every paired LR file exists, is readable and is ``HR // s``, and every
    generated LR has at least one pixel.
    """
    if not isinstance(spec, EvalSetSpec):
        spec = EvalSetSpec.from_config(spec)
    hr_paths, root = _hr_images(spec)
    hr_sizes = readable_images(hr_paths, skip_bad=skip_bad, what=f"eval set {spec.name!r}")
    if not hr_sizes:
        raise DatasetNotFoundError(f"eval set {spec.name!r} has no readable HR images left")
    datasets = []
    for scale in spec.scales:
        paired_scale = paired_scale_of(spec, scale, root is not None)
        if paired_scale is None:
            pairs = [EvalPair(hr.stem, hr) for hr in hr_sizes]
            for pair in pairs:
                _check_generated_size(spec, pair, hr_sizes[pair.hr], scale)
        else:
            pairs = _paired(spec, root, paired_scale, hr_sizes)
        dataset = EvalImages(
            pairs,
            scale,
            source,
            channel=spec.channel,
            shave=spec.shave,
            paired_scale=paired_scale,
        )
        datasets.append((f"{spec.name}/{scale_tag(scale)}", dataset))
    return datasets


def _check_generated_size(
    spec: EvalSetSpec, pair: EvalPair, hr_size: tuple[int, int], scale: Scale
) -> None:
    lr_size = generated_lr_size(hr_size, scale)
    if min(lr_size) < 1:
        raise ValueError(
            f"eval set {spec.name!r}: {pair.hr} ({hr_size[0]}x{hr_size[1]}) is too small for "
            f"scale {scale_tag(scale)}: its LR would be {lr_size[0]}x{lr_size[1]}"
        )


def _paired(
    spec: EvalSetSpec, root: Path, scale: int, hr_sizes: dict[Path, tuple[int, int]]
) -> list[EvalPair]:
    lr_dir = require_dir(
        _lr_dir(spec, root, scale), f"x{scale} LR folder of eval set {spec.name!r}"
    )
    pairs = [EvalPair(hr.stem, hr, paired_lr_path(lr_dir, hr, scale)) for hr in hr_sizes]
    missing = [pair for pair in pairs if not pair.lr.is_file()]
    if missing:
        listing = "\n".join(f"  HR {pair.hr} -> LR {pair.lr}" for pair in missing)
        raise DatasetNotFoundError(
            f"eval set {spec.name!r} x{scale}: {len(missing)} LR file(s) missing:\n{listing}"
        )
    lr_scan = scan_images(pair.lr for pair in pairs)
    if lr_scan.bad:
        listing = "\n".join(f"  {path}: {reason}" for path, reason in lr_scan.bad.items())
        raise ValueError(f"eval set {spec.name!r} x{scale}: unreadable LR file(s):\n{listing}")
    for pair in pairs:
        check_paired_size(pair, hr_sizes[pair.hr], lr_scan.sizes[pair.lr], scale)
    return pairs
