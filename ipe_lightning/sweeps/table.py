"""A table: a layout filled with the jobs' results and the paper's numbers (no files read).

Each **cell** holds our value, the paper's value and the difference ``ours − paper``; a row whose
job did not finish carries its status (``failed``, ``missing``, ...) instead of numbers. Our best
value per column is marked (values equal at the printed precision tie).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ipe_lightning.results import FINISHED, JobResult
from ipe_lightning.sweeps.layout import ColumnGroup, RowSpec, TableLayout
from ipe_lightning.sweeps.paper_numbers import paper_cell

DECIMALS = {"psnr": 2, "ssim": 4}  # printed precision: the paper's


@dataclass(frozen=True)
class Cell:
    ours: Mapping[str, float]
    paper: Mapping[str, float]
    best: frozenset[str] = frozenset()

    def diff(self, metric: str) -> float | None:
        if metric in self.ours and metric in self.paper:
            return self.ours[metric] - self.paper[metric]
        return None


@dataclass(frozen=True)
class Row:
    spec: RowSpec
    status: str  # a JobResult status, or "bicubic" / "paper" for reference rows
    note: str
    cells: tuple[Cell, ...]

    @property
    def has_numbers(self) -> bool:
        return self.status in (FINISHED, "bicubic")


@dataclass(frozen=True)
class Table:
    layout: TableLayout
    rows: tuple[Row, ...]

    @property
    def columns(self) -> tuple[tuple[ColumnGroup, Any, str], ...]:
        return _columns(self.layout)

    @property
    def incomplete(self) -> tuple[Row, ...]:
        """Rows of jobs that did not finish (failed, missing, ...)."""
        return tuple(r for r in self.rows if r.spec.kind == "job" and r.status != FINISHED)


def build_table(
    layout: TableLayout,
    results: Mapping[str, JobResult],
    paper_rows: Sequence[Mapping[str, str]] = (),
) -> Table:
    """Fill ``layout`` with ``results`` (by variant) and the paper's numbers.

    A variant of the layout without a result is ``missing``; results of variants the layout does
    not list are appended as rows of their own (never silently dropped).
    """
    metrics = layout.metrics
    specs = list(layout.rows)
    listed = {spec.variant for spec in specs if spec.kind == "job"}
    specs += [
        RowSpec(label=v, variant=v, group="Not in the table spec")
        for v in results
        if v not in listed
    ]
    bicubic = _bicubic_metrics(results.values())
    columns = _columns(layout)
    rows = []
    for spec in specs:
        if spec.kind == "job":
            result = results.get(spec.variant or "", JobResult("missing"))
            status, note = result.status, result.note
            values = result.metrics if status == FINISHED else {}
        elif spec.kind == "bicubic":
            status, note, values = "bicubic", "", bicubic
        else:
            status, note, values = "paper", "not trained by this sweep", {}
        key = dict(spec.paper or {})
        if spec.paper is not None:
            key.setdefault("table", layout.paper_table or "")
        cells = []
        for group, scale, loader in columns:
            ours = {m: float(values[loader][m]) for m in metrics if m in values.get(loader, {})}
            paper = paper_cell(paper_rows, key, group.set, scale, metrics) if spec.paper else {}
            cells.append(Cell(ours=ours, paper=paper))
        rows.append(Row(spec=spec, status=status, note=note, cells=tuple(cells)))
    return Table(layout=layout, rows=tuple(_mark_best(rows)))


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


def _mark_best(rows: list[Row]) -> list[Row]:
    """Mark our best value per column and metric among the finished variants; values equal at
    the printed precision are tied (all bold)."""

    def shown(value: float, metric: str) -> float:
        return round(value, DECIMALS[metric])

    def is_candidate(row: Row) -> bool:
        return row.spec.kind == "job" and row.status == FINISHED

    best: dict[tuple[int, str], float] = {}
    for row in filter(is_candidate, rows):
        for index, cell in enumerate(row.cells):
            for metric, value in cell.ours.items():
                slot = (index, metric)
                best[slot] = max(best.get(slot, -math.inf), shown(value, metric))
    marked = []
    for row in rows:
        if is_candidate(row):
            cells = tuple(
                Cell(
                    ours=cell.ours,
                    paper=cell.paper,
                    best=frozenset(
                        m for m, v in cell.ours.items() if shown(v, m) == best[(index, m)]
                    ),
                )
                for index, cell in enumerate(row.cells)
            )
            row = Row(spec=row.spec, status=row.status, note=row.note, cells=cells)
        marked.append(row)
    return marked
