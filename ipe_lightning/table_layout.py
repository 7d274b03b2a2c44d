"""A table's layout (the ``table:`` section of a sweep file): column groups, rows, metric.

- **columns**: groups of (set, scale), e.g. DIV2K ×2-×4 "In-distribution" then ×6-×30
  "Out-of-distribution" (Table 1), or one group per benchmark (Table 2);
- **reference**: the variant every other row is compared with (per-image ΔPSNR, 95 % CI);
- **rows**: one per variant (a job of the sweep), grouped as the paper groups them, plus
  reference rows: ``bicubic`` (our bicubic numbers, which every job measures on the same images)
  and rows the paper reports but the suite does not train (``paper``: e.g. EDSR ×2 only).

A sweep without a ``table:`` section gets :func:`default_layout`, inferred from its results.
The layout travels in ``sweep.json`` (``ipe_lightning.sweep_files``): the sweep tool writes it, the
report and the figure read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ipe_lightning.results import JobResult
from ipe_lightning.scales import parse_scale_tag, plain_scale, scale_tag

METRIC_SETS = {"psnr": ("psnr",), "psnr_ssim": ("psnr", "ssim")}
ROW_KINDS = ("job", "bicubic", "paper")


@dataclass(frozen=True)
class ColumnGroup:
    """Consecutive columns under one heading: one evaluation set at several scales."""

    label: str
    set: str
    scales: tuple[Any, ...]

    @property
    def loaders(self) -> tuple[str, ...]:
        """The test loader of each column, ``<set>/x<scale>`` (as ``metrics.json`` names it)."""
        return tuple(f"{self.set}/{scale_tag(scale)}" for scale in self.scales)


@dataclass(frozen=True)
class RowSpec:
    """One row: ``kind`` ``job`` (a variant of the sweep), ``bicubic`` or ``paper`` (only)."""

    label: str
    kind: str = "job"
    variant: str | None = None
    group: str = ""
    paper: Mapping[str, str] | None = None  # paper_tables.csv fields; table defaults to layout's


@dataclass(frozen=True)
class TableLayout:
    title: str
    metric: str  # psnr | psnr_ssim
    columns: tuple[ColumnGroup, ...]
    rows: tuple[RowSpec, ...]
    paper_table: str | None = None
    reference: str | None = None  # the variant the ΔPSNR intervals compare against

    @property
    def metrics(self) -> tuple[str, ...]:
        return METRIC_SETS[self.metric]

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(row.variant for row in self.rows if row.kind == "job" and row.variant)


def layout_from_dict(spec: Mapping[str, Any], *, title: str = "") -> TableLayout:
    """A layout from a sweep file's ``table:`` section (see ``conf/sweep/table1.yaml``)."""
    metric = str(spec.get("metric", "psnr"))
    if metric not in METRIC_SETS:
        raise ValueError(f"table.metric must be one of {sorted(METRIC_SETS)}, got {metric!r}")
    columns = tuple(
        ColumnGroup(
            label=str(group.get("label", group["set"])),
            set=str(group["set"]),
            scales=tuple(plain_scale(s) for s in group["scales"]),
        )
        for group in spec.get("columns") or []
    )
    rows = []
    for row in spec.get("rows") or []:
        kind = str(row.get("kind") or ("job" if row.get("variant") else "paper"))
        if kind not in ROW_KINDS:
            raise ValueError(f"table row kind must be one of {ROW_KINDS}, got {kind!r}")
        if kind == "job" and not row.get("variant"):
            raise ValueError(f"table row {row!r} of kind job needs a variant")
        paper = row.get("paper")
        rows.append(
            RowSpec(
                label=str(row.get("label") or row.get("variant") or kind),
                kind=kind,
                variant=str(row["variant"]) if row.get("variant") else None,
                group=str(row.get("group") or ""),
                paper={str(k): str(v) for k, v in paper.items()} if paper else None,
            )
        )
    reference = str(spec["reference"]) if spec.get("reference") else None
    if reference is not None and reference not in {r.variant for r in rows}:
        raise ValueError(f"table.reference {reference!r} is not the variant of one of its rows")
    return TableLayout(
        title=str(spec.get("title") or title),
        metric=metric,
        columns=columns,
        rows=tuple(rows),
        paper_table=spec.get("paper_table"),
        reference=reference,
    )


def layout_to_dict(layout: TableLayout) -> dict[str, Any]:
    """The inverse of :func:`layout_from_dict` (for the sweep manifest)."""
    return {
        "title": layout.title,
        "metric": layout.metric,
        "paper_table": layout.paper_table,
        "reference": layout.reference,
        "columns": [
            {"label": g.label, "set": g.set, "scales": list(g.scales)} for g in layout.columns
        ],
        "rows": [
            {
                "label": r.label,
                "kind": r.kind,
                "variant": r.variant,
                "group": r.group,
                "paper": dict(r.paper) if r.paper else None,
            }
            for r in layout.rows
        ],
    }


def default_layout(
    variants: Sequence[str], results: Mapping[str, JobResult], title: str = ""
) -> TableLayout:
    """For sweeps without a ``table:`` section: a row per variant (grid order), a bicubic row,
    and the (set, scale) columns the finished jobs report, one group per set, scales ascending."""
    scales: dict[str, set[tuple[float, float]]] = {}
    for result in results.values():
        for loader in result.metrics:
            set_name, _, tag = loader.rpartition("/")
            parsed = parse_scale_tag(tag)
            if set_name and parsed:
                scales.setdefault(set_name, set()).add(parsed)
    columns = tuple(
        ColumnGroup(
            label=name,
            set=name,
            scales=tuple(plain_scale(s[0] if s[0] == s[1] else s) for s in sorted(found)),
        )
        for name, found in scales.items()
    )
    jobs = tuple(RowSpec(label=variant, variant=variant) for variant in variants)
    rows = (RowSpec(label="Bicubic", kind="bicubic"), *jobs)
    return TableLayout(title=title, metric="psnr", columns=columns, rows=rows)
