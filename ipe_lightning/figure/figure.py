"""The paper's qualitative comparison (its Figures 1 and 5) from a sweep (``sweep.py figure``).

One row per scale: the whole HR image with the zoom box, then the same crop of bicubic, of each
finished variant and of HR, with the PSNR of the crop under each (the set's channel, no shave:
the crop is the region measured). One column per table row, labelled as in the table; of a row
run with several seeds the lowest finished seed is shown and the caption says so (``seed 0 of
2``). ``--variants`` takes row names (``table4_liif``) or job names (``table4_liif_seed-1``: that
seed). Each variant is the job's own network (the checkpoint its ``metrics.json`` records) run
on the image of the job's evaluation set, so the LR is the one the table measured (the provided
LR files at x2-x4 of DIV2K), queried as many pixels at a time as the job's test was
(``test.max_queries``). Without ``--crop``, the crop is the window where the variants' crop PSNRs
differ most, summed over the rows (with one variant: where it differs most from bicubic); the
caption and the console say which. Writes ``figure_<set>_<image>.{pdf,png}`` into the sweep
directory (or ``--out DIR``); a debug sweep's figure says so on the image.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ipe_lightning.figure.drawing import FigureRow, draw_figure, save_figure
from ipe_lightning.inference import DEFAULT_QUERY_BUDGET, QueryBudget
from ipe_lightning.results import FINISHED, read_record
from ipe_lightning.sweep_files import (
    REPO_CONF_DIR,
    Manifest,
    read_manifest,
    results_from_dir,
    split_seed,
)
from ipe_lightning.table_layout import RowSpec, TableLayout

DEFAULT_SCALES = (4.0, 12.0, 30.0)
MAX_AUTO_CROP = 120  # pixels: the paper's zooms are small regions of the image


class FigureError(ValueError):
    """The figure cannot be made (no finished job, unknown image or scale, bad option)."""


@dataclass(frozen=True)
class Variant:
    """A finished job of the sweep shown for its table row: the job's name, the row's label, the
    job's checkpoint and, for a row run with several seeds, which seed of how many."""

    name: str
    label: str
    checkpoint: Path
    overrides: tuple[str, ...]
    seed: int | None = None  # None: the sweep ran without seeds=[...]
    seeds: int = 1  # the row's jobs, one per seed


# -- the crop -------------------------------------------------------------------------------


def _window_psnr(image: torch.Tensor, hr: torch.Tensor, side: int, stride: int) -> torch.Tensor:
    error = (image.double().clamp(0, 1) - hr.double()).pow(2).mean(dim=1, keepdim=True)
    mse = F.avg_pool2d(error, side, stride=stride)[0, 0]
    return -10 * torch.log10(mse.clamp_min(1e-12))


def most_different_crop(rows: Sequence[FigureRow], side: int) -> tuple[int, int, int, int]:
    """``(top, left, side, side)`` of the window where the variants differ most: the spread
    (max − min) of their window PSNRs, summed over the rows; with one variant, its absolute
    difference from bicubic. Windows lie on a grid of ``side // 4`` inside every row's HR
    (rows share the top-left corner: every scale crops the HR from there, docs/method.md §4)."""
    height = min(row.hr.shape[-2] for row in rows)
    width = min(row.hr.shape[-1] for row in rows)
    side = max(1, min(side, height, width))
    stride = max(1, side // 4)
    total = None
    for row in rows:
        hr = row.hr[..., :height, :width]
        labels = list(row.images)
        compared = labels[1:] if len(labels) > 2 else labels
        psnrs = torch.stack(
            [_window_psnr(row.images[k][..., :height, :width], hr, side, stride) for k in compared]
        )
        spread = psnrs.max(0).values - psnrs.min(0).values
        total = spread if total is None else total + spread
    assert total is not None
    index = int(torch.argmax(total))
    top, left = divmod(index, total.shape[-1])
    return top * stride, left * stride, side, side


def parse_crop(numbers: Sequence[int]) -> tuple[int, int, int, int]:
    """``(top, left, side)`` or ``(top, left, height, width)`` (HR pixels) → a box."""
    box = [int(number) for number in numbers]
    if len(box) == 3:
        box.append(box[2])
    if len(box) != 4 or min(box) < 0 or min(box[2:]) < 1:
        given = " ".join(map(str, numbers))
        raise FigureError(f"--crop takes TOP LEFT SIDE or TOP LEFT HEIGHT WIDTH, got {given!r}")
    return tuple(box)  # type: ignore[return-value]


# -- the sweep's jobs -----------------------------------------------------------------------


def recorded_checkpoint_paths(record: Mapping[str, Any]) -> list[Path]:
    """The checkpoints a record names, the one its test measured first: the ``evaluated`` one of
    a test job (a job that reused another's training tested that job's ``last.ckpt``; a record
    written before the key existed names it only in its ``ckpt_path=`` override), else ``last``
    (training ends, then the same weights are tested), else ``best``."""
    recorded = record.get("checkpoints") or {}
    paths = [recorded.get(key) for key in ("evaluated", "last", "best")]
    paths += [
        override.split("=", 1)[1]
        for override in record.get("overrides") or []
        if override.startswith("ckpt_path=")
    ]
    return [Path(str(path)) for path in paths if path]


def checkpoint_of(job_dir: Path, record: Mapping[str, Any]) -> Path | None:
    """The checkpoint whose weights the job's test measured (:func:`recorded_checkpoint_paths`);
    a recorded path that moved with the sweep directory is looked up in the job's
    ``checkpoints/``, or in that of the job it names (``<job>/checkpoints/last.ckpt``) beside
    this one."""
    for path in recorded_checkpoint_paths(record):
        beside = job_dir.parent / path.parent.parent.name / "checkpoints" / path.name
        for candidate in (path, job_dir / "checkpoints" / path.name, beside):
            if candidate.is_file():
                return candidate
    return None


def _row_label(spec: RowSpec) -> str:
    return f"{spec.group}: {spec.label}" if spec.group else spec.label


def _jobs_by_row(manifest: Manifest, layout: TableLayout) -> dict[str, list[str]]:
    """Row (variant) → its jobs, lowest seed first; rows in table order, then rows the table
    does not list. ``<variant>_seed-<n>`` jobs are one row, as in the table."""
    jobs: dict[str, list[str]] = {}
    for name in manifest.job_names:
        jobs.setdefault(split_seed(name)[0], []).append(name)
    for names in jobs.values():
        names.sort(key=lambda name: split_seed(name)[1] or 0)
    order = [v for v in layout.variants if v in jobs] + [
        v for v in jobs if v not in layout.variants
    ]
    return {row: jobs[row] for row in order}


def _picks(
    jobs_by_row: Mapping[str, list[str]], wanted: Sequence[str] | None
) -> dict[str, list[list[str]]]:
    """Row → its picks, rows in table order; a pick is a list of jobs of which the first that
    finished is shown: a row name picks all the row's seeds, a job name that job."""
    if not wanted:
        return {row: [jobs] for row, jobs in jobs_by_row.items()}
    picks: dict[str, list[list[str]]] = {}
    for name in wanted:
        row = name if name in jobs_by_row else split_seed(name)[0]
        if name != row and name not in jobs_by_row.get(row, []):
            jobs = [job for names in jobs_by_row.values() for job in names]
            raise FigureError(
                f"variant {name!r} is neither a row nor a job of this sweep; "
                f"rows: {list(jobs_by_row)}; jobs: {jobs}"
            )
        picks.setdefault(row, []).append(jobs_by_row[row] if name == row else [name])
    return {row: picks[row] for row in jobs_by_row if row in picks}


def finished_variants(
    sweep_dir: Path, manifest: Manifest, wanted: Sequence[str] | None = None
) -> list[Variant]:
    """One variant per table row, in table order: the row's lowest finished seed with a
    checkpoint (``wanted``: only those rows, or those jobs; module doc)."""
    results = results_from_dir(sweep_dir, manifest.job_names)
    layout = manifest.table_layout(results)
    labels = {spec.variant: _row_label(spec) for spec in layout.rows if spec.kind == "job"}
    overrides = {job["name"]: tuple(job.get("overrides") or ()) for job in manifest.jobs}
    jobs_by_row = _jobs_by_row(manifest, layout)
    variants = []
    for row, picks in _picks(jobs_by_row, wanted).items():
        checkpoints = {name: _finished_checkpoint(sweep_dir / name) for name in jobs_by_row[row]}
        shown = [
            next((name for name in pick if checkpoints[name] is not None), None) for pick in picks
        ]
        shown = [name for name in jobs_by_row[row] if name in shown]  # in seed order, once
        for name in shown:
            seed = split_seed(name)[1]
            label = labels.get(row, row)
            if len(shown) > 1:  # two seeds of one row side by side: tell them apart
                label += f" (seed {seed})"
            variant = Variant(
                name, label, checkpoints[name], overrides[name], seed, len(jobs_by_row[row])
            )
            variants.append(variant)
    if not variants:
        raise FigureError(f"no finished job with a checkpoint in {sweep_dir}")
    return variants


def _finished_checkpoint(job_dir: Path) -> Path | None:
    record = read_record(job_dir) or {}
    if record.get("status") != FINISHED:
        return None
    checkpoint = checkpoint_of(job_dir, record)
    if checkpoint is None:
        print(
            f"[figure] {job_dir.name}: finished but no checkpoint found; left out", file=sys.stderr
        )
    return checkpoint


def seeds_shown(variants: Sequence[Variant]) -> str:
    """Which seed the columns show, for the caption: ``""`` without seeds, else the seed most
    rows show (``"seed 0 of 2"``) and, in brackets, the rows that show another seed."""
    seeded = [(v.seed, v.seeds) for v in variants if v.seed is not None]
    if not seeded:
        return ""
    counts = Counter(seeded)
    common = min(counts, key=lambda shown: (-counts[shown], shown))  # a tie: the lower seed
    others = [
        f"{v.label}: seed {v.seed} of {v.seeds}"
        for v in variants
        if v.seed is not None and (v.seed, v.seeds) != common
    ]
    return f"seed {common[0]} of {common[1]}" + (f" ({'; '.join(others)})" if others else "")


def job_config(overrides: Sequence[str], conf_dir: Path) -> Any:
    """The config a job of the sweep ran with, composed from its overrides (as ``run.py``)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir), job_name="run", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def eval_items(
    cfg: Any, set_name: str | None, scales: Sequence[float] | None
) -> tuple[str, dict[float, Any]]:
    """``(set, {scale: eval dataset})`` of the job's config ``cfg``: its first set unless
    ``set_name``; ``scales`` (default: those of :data:`DEFAULT_SCALES` the set has, else its
    first, middle and last uniform scales)."""
    from hydra.utils import instantiate

    from ipe_lightning.scales import parse_scale_tag

    datamodule = instantiate(cfg.data)
    datamodule.check("test")
    by_set: dict[str, dict[float, Any]] = {}
    for loader, dataset in datamodule.eval_datasets:
        name, tag = loader.rsplit("/", 1)
        scale = parse_scale_tag(tag)
        if scale is not None and scale[0] == scale[1]:
            by_set.setdefault(name, {})[float(scale[0])] = dataset
    if not by_set:
        raise FigureError("the job has no evaluation set at a uniform scale")
    set_name = set_name or next(iter(by_set))
    if set_name not in by_set:
        raise FigureError(f"--set {set_name!r} is not one of the job's sets {sorted(by_set)}")
    available = sorted(by_set[set_name])
    if scales:
        missing = [s for s in scales if float(s) not in by_set[set_name]]
        if missing:
            raise FigureError(f"scales {missing} are not tested on {set_name}: {available}")
        chosen = [float(s) for s in scales]
    else:
        chosen = [s for s in DEFAULT_SCALES if s in by_set[set_name]]
        if not chosen:
            chosen = sorted({available[0], available[len(available) // 2], available[-1]})
    return set_name, {s: by_set[set_name][s] for s in chosen}


def _item(dataset: Any, image: str | None) -> dict[str, Any]:
    names = [pair.name for pair in dataset.pairs]
    if image is None:
        return dataset[0]
    if image not in names:
        raise FigureError(f"image={image!r} is not in the set; its images: {names[:20]}")
    return dataset[names.index(image)]


def figure_rows(
    variants: Sequence[Variant],
    datasets: Mapping[float, Any],
    image: str | None,
    *,
    budget: QueryBudget = DEFAULT_QUERY_BUDGET,
) -> tuple[str, list[FigureRow]]:
    """Upsample the image at every scale with every variant's network (and bicubic)."""
    from ipe_lightning.bicubic import bicubic_upsample
    from ipe_lightning.inference import upsample
    from ipe_lightning.models import load_network

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    items = {scale: _item(dataset, image) for scale, dataset in datasets.items()}
    outputs: dict[float, dict[str, torch.Tensor]] = {scale: {} for scale in items}
    for scale, item in items.items():
        size = tuple(item["hr"].shape[-2:])
        outputs[scale]["bicubic"] = bicubic_upsample(item["lr"][None], size)
    for variant in variants:
        network, _ = load_network(variant.checkpoint, device)
        with torch.no_grad():
            for scale, item in items.items():
                lr = item["lr"][None].to(device)
                size = tuple(item["hr"].shape[-2:])
                sr = upsample(network, lr, size=size, **budget.options())
                outputs[scale][variant.label] = sr.cpu()
        del network
    name = next(iter(items.values()))["name"]
    rows = [
        FigureRow(scale, item["hr"][None], outputs[scale], str(item.get("channel", "rgb")))
        for scale, item in items.items()
    ]
    return name, rows


def make_figure(
    sweep_dir: str | Path,
    *,
    image: str | None = None,
    crop: Sequence[int] | None = None,
    scales: Sequence[float] | None = None,
    set_name: str | None = None,
    variants: Sequence[str] | None = None,
    out: str | Path | None = None,
    conf_dir: Path | None = None,
) -> tuple[tuple[Path, Path], str]:
    """Make the figure of a sweep directory into ``out`` (default: the sweep directory);
    return the (PDF, PNG) paths and the caption."""
    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        raise FigureError(f"{sweep_dir} has no sweep.json: is it a directory made by sweep.py?")
    chosen = finished_variants(sweep_dir, manifest, variants)
    cfg = job_config(chosen[0].overrides, conf_dir or REPO_CONF_DIR)
    set_name, datasets = eval_items(cfg, set_name, scales)
    budget = QueryBudget.from_config(cfg.test)  # the jobs' own, as their tests ran
    name, rows = figure_rows(chosen, datasets, image, budget=budget)
    if crop is None:
        side = min(MAX_AUTO_CROP, max(16, min(rows[0].hr.shape[-2:]) // 4))
        box = most_different_crop(rows, side)
        how = "chosen where the variants' crop PSNR differ most"
    else:
        box = tuple(int(v) for v in crop)
        how = "given"
    height = min(row.hr.shape[-2] for row in rows)
    width = min(row.hr.shape[-1] for row in rows)
    if box[0] + box[2] > height or box[1] + box[3] > width:
        raise FigureError(
            f"crop {list(box)} does not fit the image ({height}x{width} at every scale)"
        )
    channel = rows[0].channel.upper() if rows[0].channel == "y" else "RGB"
    seeds = seeds_shown(chosen)
    networks = f"each job's {chosen[0].checkpoint.name}" + (f", {seeds}" if seeds else "")
    caption = (
        f"{set_name} image {name}; crop top={box[0]}, left={box[1]}, {box[2]}x{box[3]} HR pixels "
        f"({how}); PSNR of the crop on {channel}. Networks: {networks}."
    )
    debug = manifest.debug  # the debug=... the jobs ran with
    figure = draw_figure(rows, box, title=manifest.title, caption=caption, debug=debug)
    stem = Path(out or sweep_dir) / f"figure_{set_name}_{name}"
    return save_figure(figure, stem), caption
