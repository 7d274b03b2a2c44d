"""A table: a layout filled with the jobs' results and the paper's numbers (no files read).

Each **cell** holds our value (the mean over the row's seeds, with its standard deviation and
n), the paper's value and the difference ``ours − paper``, and, when the jobs wrote per-image
results, the mean per-image ΔPSNR against the table's reference row with its 95 % paired
bootstrap interval (``statistics``; with fewer than ``MIN_IMAGES`` paired images it is kept
but claims nothing: no mark, no bold). A row whose jobs did not finish carries their status
(``failed``, ``missing``, ...).

**Best** (bold), per column and metric among the finished variants:

- with per-image results for every candidate: the highest mean, and only when the paired
  bootstrap interval of its difference to every other candidate excludes 0 (a tie is no win)
  and rests on enough images to mean it;
- without them (e.g. W&B runs or old records): the highest value at the printed precision, ties
  all marked (nothing to measure the noise with). The legend says which rule a table used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ipe_lightning.report.paper_numbers import paper_cell
from ipe_lightning.report.statistics import MIN_IMAGES, Interval, mean_std, paired_difference
from ipe_lightning.results import FINISHED, JobResult
from ipe_lightning.sweep_files import split_seed
from ipe_lightning.table_layout import ColumnGroup, RowSpec, TableLayout

DECIMALS = {"psnr": 2, "ssim": 4}  # printed precision: the paper's
PerImage = Mapping[str, Sequence[Mapping[str, Any]]]  # job name -> per_image.csv rows


@dataclass(frozen=True)
class JobRun:
    """One job of a row: its name, its seed (``None`` without seeds) and its result."""

    name: str
    seed: int | None
    result: JobResult


@dataclass(frozen=True)
class Cell:
    ours: Mapping[str, float]
    paper: Mapping[str, float]
    best: frozenset[str] = frozenset()
    std: Mapping[str, float] = field(default_factory=dict)  # over seeds, when n > 1
    n: int = 0  # finished seeds behind ``ours``
    delta: Interval | None = None  # per-image ΔPSNR against the reference row, 95 % CI

    def diff(self, metric: str) -> float | None:
        if metric in self.ours and metric in self.paper:
            return self.ours[metric] - self.paper[metric]
        return None

    @property
    def significant(self) -> bool:
        """The ΔPSNR interval against the reference excludes 0, on enough images to say so."""
        return self.delta is not None and self.delta.meaningful and self.delta.excludes_zero


@dataclass(frozen=True)
class Row:
    spec: RowSpec
    status: str  # a JobResult status, or "bicubic" / "paper" for reference rows
    note: str
    cells: tuple[Cell, ...]
    jobs: tuple[JobRun, ...] = ()
    is_reference: bool = False

    @property
    def has_numbers(self) -> bool:
        return self.status in (FINISHED, "bicubic") or any(cell.ours for cell in self.cells)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(job.seed for job in self.jobs if job.seed is not None)


@dataclass(frozen=True)
class Table:
    layout: TableLayout
    rows: tuple[Row, ...]
    best_rule: str = "precision"  # "noise" when every bold was tested against the noise
    reference: str | None = None  # the variant the ΔPSNR intervals compare against
    debug: str | None = None  # the debug=<choice> the jobs ran with: the numbers mean nothing
    without_per_image: tuple[str, ...] = ()  # finished jobs with no per-image results
    # set → its images, where fewer than statistics.MIN_IMAGES: no mark, no bold there
    too_few_images: Mapping[str, int] = field(default_factory=dict)

    @property
    def columns(self) -> tuple[tuple[ColumnGroup, Any, str], ...]:
        return _columns(self.layout)

    @property
    def incomplete(self) -> tuple[Row, ...]:
        """Rows of jobs that did not finish (failed, missing, ...)."""
        return tuple(r for r in self.rows if r.spec.kind == "job" and r.status != FINISHED)

    @property
    def reference_row(self) -> Row | None:
        return next((r for r in self.rows if r.is_reference), None)


def build_table(
    layout: TableLayout,
    results: Mapping[str, JobResult],
    paper_rows: Sequence[Mapping[str, str]] = (),
    per_image: PerImage | None = None,
    reference: str | None = None,
    debug: str | None = None,
) -> Table:
    """Fill ``layout`` with ``results`` (by job; ``<variant>_seed-<n>`` jobs are one row) and the
    paper's numbers; ``per_image`` (job → rows) gives the intervals and the noise-aware best.

    ``reference`` (default: the layout's) names the variant the ΔPSNR intervals compare against.
    A variant of the layout without a result is ``missing``; results of variants the layout does
    not list are appended as rows of their own (never silently dropped).
    """
    per_image = per_image or {}
    reference = reference or layout.reference
    runs: dict[str, list[JobRun]] = {}
    for name, result in results.items():
        variant, seed = split_seed(name)
        runs.setdefault(variant, []).append(JobRun(name, seed, result))
    specs = list(layout.rows)
    listed = {spec.variant for spec in specs if spec.kind == "job"}
    specs += [
        RowSpec(label=v, variant=v, group="Not in the table spec") for v in runs if v not in listed
    ]
    if reference is not None and reference not in {s.variant for s in specs if s.kind == "job"}:
        raise ValueError(f"the reference row {reference!r} is not a variant of the table")
    filling = _Filling(
        layout=layout,
        columns=_columns(layout),
        runs=runs,
        bicubic=_bicubic_metrics(results.values()),
        scores={variant: _scores(jobs, per_image) for variant, jobs in runs.items()},
        paper_rows=paper_rows,
        reference=reference,
    )
    rows = [filling.row(spec) for spec in specs]
    marked, rule = _mark_best(rows, filling.scores, filling.columns)
    finished = [job.name for r in rows for job in r.jobs if job.result.status == FINISHED]
    return Table(
        layout=layout,
        rows=tuple(marked),
        best_rule=rule,
        reference=reference,
        debug=debug,
        without_per_image=tuple(name for name in finished if not per_image.get(name)),
        too_few_images=_too_few_images(filling.scores),
    )


@dataclass(frozen=True)
class _Filling:
    """What every row of a table is filled from."""

    layout: TableLayout
    columns: tuple[tuple[ColumnGroup, Any, str], ...]
    runs: Mapping[str, list[JobRun]]
    bicubic: Mapping[str, Mapping[str, float]]
    scores: Mapping[str, Scores]
    paper_rows: Sequence[Mapping[str, str]]
    reference: str | None

    def row(self, spec: RowSpec) -> Row:
        """One row: its jobs' status and, per column, our values, the paper's and the ΔPSNR."""
        jobs: tuple[JobRun, ...] = ()
        if spec.kind == "job":
            jobs = tuple(sorted(self.runs.get(spec.variant or "", []), key=_seed_order))
            if not jobs:
                jobs = (JobRun(spec.variant or "", None, JobResult("missing")),)
            unfinished = [job.result for job in jobs if job.result.status != FINISHED]
            status = unfinished[0].status if unfinished else FINISHED
            note = "; ".join(r.note for r in unfinished if r.note)
            done = [job.result.metrics for job in jobs if job.result.status == FINISHED]
        elif spec.kind == "bicubic":
            status, note, done = "bicubic", "", [self.bicubic]
        else:
            status, note, done = "paper", "not trained by this sweep", []
        cells = tuple(self.cell(spec, done, column) for column in self.columns)
        is_reference = spec.kind == "job" and spec.variant == self.reference
        return Row(spec, status, note, cells, jobs, is_reference=is_reference)

    def cell(
        self, spec: RowSpec, done: Sequence[Mapping], column: tuple[ColumnGroup, Any, str]
    ) -> Cell:
        group, scale, loader = column
        metrics = self.layout.metrics
        ours, std, count = {}, {}, 0
        for m in metrics:
            values = [float(v[loader][m]) for v in done if m in v.get(loader, {})]
            if values:
                ours[m], spread = mean_std(values)
                count = len(values)
                if spread is not None:
                    std[m] = spread
        paper = {}
        if spec.paper:
            key = {"table": self.layout.paper_table or "", **spec.paper}
            paper = paper_cell(self.paper_rows, key, group.set, scale, metrics)
        delta = None
        if spec.kind == "job" and self.reference and spec.variant != self.reference:
            slot = (group.set, loader, "psnr")
            delta = _interval(self.scores, spec.variant or "", self.reference, slot)
        return Cell(ours=ours, paper=paper, std=std, n=count, delta=delta)


def _too_few_images(scores: Mapping[str, Scores]) -> dict[str, int]:
    """Set → its images (the most any job measured in it), for the sets with fewer than
    ``MIN_IMAGES``: their intervals, against the reference or between rows, mean nothing."""
    found: dict[str, int] = {}
    for variant in scores.values():
        for (set_name, _, _), seeds in variant.items():
            count = max(len(images) for images in seeds.values())
            found[set_name] = max(found.get(set_name, 0), count)
    return {name: count for name, count in found.items() if count < MIN_IMAGES}


def _seed_order(job: JobRun) -> tuple[int, int]:
    return (0, job.seed) if job.seed is not None else (-1, 0)


Scores = dict[tuple[str, str, str], dict[Any, dict[str, float]]]


def _scores(jobs: Iterable[JobRun], per_image: PerImage) -> Scores:
    """A variant's per-image values: (set, loader, metric) → {seed: {image: value}}, finished
    jobs only."""
    found: Scores = {}
    for job in jobs:
        if job.result.status != FINISHED:
            continue
        for line in per_image.get(job.name, ()):
            loader = f"{line['set']}/x{line['scale']}"
            for metric in DECIMALS:
                value = line.get(metric)
                if value is not None and math.isfinite(float(value)):
                    slot = found.setdefault((str(line["set"]), loader, metric), {})
                    slot.setdefault(job.seed, {})[str(line["image"])] = float(value)
    return found


def _interval(scores: Mapping[str, Scores], ours: str, other: str, slot: tuple) -> Interval | None:
    """The paired bootstrap interval of ``ours − other`` on one cell, or ``None`` when either
    has no per-image values there. Seeds pair by number when both rows ran the same seeds;
    otherwise each image's values are averaged over the row's seeds first."""
    a, b = scores.get(ours, {}).get(slot), scores.get(other, {}).get(slot)
    if not a or not b:
        return None
    images = sorted(set.intersection(*(set(v) for v in (*a.values(), *b.values()))))
    if not images:
        return None

    def matrix(values: Mapping[Any, Mapping[str, float]], seeds: Sequence[Any]) -> np.ndarray:
        return np.array([[values[s][i] for i in images] for s in seeds])

    if set(a) == set(b):
        seeds = sorted(a, key=lambda s: (s is not None, s or 0))
        return paired_difference(matrix(a, seeds), matrix(b, seeds))
    return paired_difference(matrix(a, list(a)).mean(0), matrix(b, list(b)).mean(0))


def _columns(layout: TableLayout) -> tuple[tuple[ColumnGroup, Any, str], ...]:
    """(group, scale, loader) for every column, left to right."""
    return tuple(
        (group, scale, loader)
        for group in layout.columns
        for scale, loader in zip(group.scales, group.loaders, strict=True)
    )


def _bicubic_metrics(results: Iterable[JobResult]) -> dict[str, dict[str, float]]:
    """Bicubic numbers per loader from the finished jobs (all jobs measure the same images)."""
    found: dict[str, dict[str, float]] = {}
    for result in results:
        if result.status != FINISHED:
            continue
        for loader, values in result.metrics.items():
            for metric in ("psnr", "ssim"):
                value = values.get(f"bicubic_{metric}")
                if value is not None:
                    found.setdefault(loader, {}).setdefault(metric, float(value))
    return found


def _mark_best(
    rows: list[Row], scores: Mapping[str, Scores], columns: Sequence[tuple[ColumnGroup, Any, str]]
) -> tuple[list[Row], str]:
    """Mark our best value per column and metric among the finished variants (module doc);
    return the rows and the rule used (``noise`` or ``precision``)."""

    def shown(value: float, metric: str) -> float:
        return round(value, DECIMALS[metric])

    candidates = [r for r in rows if r.spec.kind == "job" and r.status == FINISHED]
    noise_known = bool(candidates) and all(scores.get(r.spec.variant or "") for r in candidates)
    best: dict[tuple[int, str], set[str]] = {}
    for index, (group, _scale, loader) in enumerate(columns):
        metrics = {m for row in candidates for m in row.cells[index].ours}
        for metric in metrics:
            entries = [
                (r, r.cells[index].ours[metric])
                for r in candidates
                if metric in r.cells[index].ours
            ]
            if noise_known:
                leader = max(entries, key=lambda entry: entry[1])[0].spec.variant or ""
                slot = (group.set, loader, metric)
                gaps = [
                    _interval(scores, leader, r.spec.variant or "", slot)
                    for r, _ in entries
                    if r.spec.variant != leader
                ]
                # A lone row beats nobody; a gap on too few images shows no win.
                wins = bool(gaps) and all(
                    gap is not None and gap.meaningful and gap.low > 0 for gap in gaps
                )
                best[(index, metric)] = {leader} if wins else set()
            else:
                top = max(shown(v, metric) for _, v in entries)
                best[(index, metric)] = {
                    r.spec.variant or "" for r, v in entries if shown(v, metric) == top
                }
    marked = []
    for row in rows:
        if any(row is c for c in candidates):
            cells = tuple(
                replace(
                    cell,
                    best=frozenset(
                        m for m in cell.ours if row.spec.variant in best.get((index, m), set())
                    ),
                )
                for index, cell in enumerate(row.cells)
            )
            row = replace(row, cells=cells)
        marked.append(row)
    return marked, "noise" if noise_known else "precision"
