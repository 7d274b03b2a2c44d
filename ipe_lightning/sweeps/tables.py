"""Sweep results and the paper's numbers → a table in the paper's layout; md / csv / tex text.

Pure functions: nothing here reads files except :func:`load_paper_numbers`. A table is

- **columns**: groups of (set, scale), e.g. DIV2K ×2-×4 "In-distribution" then ×6-×30
  "Out-of-distribution" (Table 1), or one group per benchmark (Table 2);
- **rows**: one per variant (a job of the sweep), grouped as the paper groups them, plus
  reference rows: ``bicubic`` (our bicubic numbers, which every job measures on the same images)
  and rows the paper reports but the suite does not train (``paper``: e.g. EDSR ×2 only);
- **cells**: our value, the paper's value beside it and the difference ``ours − paper``; a row
  whose job did not finish shows its status (``failed``, ``missing``, ...) instead of numbers.
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

METRIC_SETS = {"psnr": ("psnr",), "psnr_ssim": ("psnr", "ssim")}
DECIMALS = {"psnr": 2, "ssim": 4}
# Fields of paper_tables.csv that identify a paper row (dataset and scale come from the column).
PAPER_KEY_FIELDS = ("table", "encoder", "method", "variant", "train_scales")
ROW_KINDS = ("job", "bicubic", "paper")
FINISHED = "finished"


def scale_key(scale: float | Sequence[float]) -> str:
    """``x2``, ``x2.5``, ``x2x3``: the scale part of a loader name ``<set>/x<scale>``.

    Mirrors ``ipe_lightning.data.eval_sets.scale_tag`` (a test keeps them equal) without
    importing the data stack, so reports build without torch.
    """
    pair = (scale, scale) if isinstance(scale, int | float) else tuple(scale)
    if len(pair) != 2:
        raise ValueError(f"a scale is a number or a pair [s_h, s_w], got {scale!r}")
    scale_h, scale_w = (float(value) for value in pair)

    def number(value: float) -> str:
        return str(int(value)) if value.is_integer() else repr(value)

    if scale_h == scale_w:
        return f"x{number(scale_h)}"
    return f"x{number(scale_h)}x{number(scale_w)}"


# --------------------------------------------------------------------------------------------
# Layout


@dataclass(frozen=True)
class ColumnGroup:
    """Consecutive columns under one heading: one evaluation set at several scales."""

    label: str
    set: str
    scales: tuple[Any, ...]

    @property
    def loaders(self) -> tuple[str, ...]:
        return tuple(f"{self.set}/{scale_key(scale)}" for scale in self.scales)


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
            scales=tuple(_plain_scale(s) for s in group["scales"]),
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
    return TableLayout(
        title=str(spec.get("title") or title),
        metric=metric,
        columns=columns,
        rows=tuple(rows),
        paper_table=spec.get("paper_table"),
    )


def layout_to_dict(layout: TableLayout) -> dict[str, Any]:
    """The inverse of :func:`layout_from_dict` (for the sweep manifest)."""
    return {
        "title": layout.title,
        "metric": layout.metric,
        "paper_table": layout.paper_table,
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
    scales: dict[str, set[tuple[float, ...]]] = {}
    for result in results.values():
        for loader in result.metrics:
            set_name, _, tag = loader.rpartition("/")
            parsed = _parse_scale_key(tag)
            if set_name and parsed:
                scales.setdefault(set_name, set()).add(parsed)
    columns = tuple(
        ColumnGroup(
            label=name,
            set=name,
            scales=tuple(s[0] if s[0] == s[1] else list(s) for s in sorted(found)),
        )
        for name, found in scales.items()
    )
    jobs = tuple(RowSpec(label=variant, variant=variant) for variant in variants)
    rows = (RowSpec(label="Bicubic", kind="bicubic"), *jobs)
    return TableLayout(title=title, metric="psnr", columns=columns, rows=rows)


def _plain_scale(scale: Any) -> Any:
    if isinstance(scale, int | float):
        return int(scale) if float(scale).is_integer() else float(scale)
    return [_plain_scale(s) for s in scale]


def _parse_scale_key(tag: str) -> tuple[float, float] | None:
    """``x2`` → (2, 2); ``x2x3`` → (2, 3); anything else → None."""
    parts = tag.split("x")
    try:
        if len(parts) == 2 and parts[0] == "":
            return float(parts[1]), float(parts[1])
        if len(parts) == 3 and parts[0] == "":
            return float(parts[1]), float(parts[2])
    except ValueError:
        return None
    return None


# --------------------------------------------------------------------------------------------
# Inputs: job results and the paper's numbers


@dataclass(frozen=True)
class JobResult:
    """What is known about one job: its status and, when it finished, its metrics.

    ``status``: ``finished``, ``failed``, ``preempted``, ``interrupted`` (a checkpoint but no
    record: killed), ``running`` or ``missing`` (never started / no trace). ``note``: why (the
    error message) or where (its directory).
    """

    status: str
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    note: str = ""

    @classmethod
    def from_record(cls, record: Mapping[str, Any], note: str = "") -> JobResult:
        """From a ``metrics.json`` record (``ipe_lightning.tasks.write_record``)."""
        status = str(record.get("status", "failed"))
        if status == FINISHED and not record.get("metrics"):
            status, note = "failed", note or "finished without test metrics"
        return cls(
            status=status, metrics=record.get("metrics") or {}, note=record.get("error") or note
        )


def load_paper_numbers(path: str | None = None) -> list[dict[str, str]]:
    """The paper's numbers, one dict per table cell (``paper_tables.csv``, shipped as package
    data; a ``path`` reads another file of the same columns)."""
    if path is not None:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    text = (
        importlib.resources.files("ipe_lightning") / "resources" / "paper_tables.csv"
    ).read_text()
    return list(csv.DictReader(io.StringIO(text)))


def paper_cell(
    paper_rows: Iterable[Mapping[str, str]],
    key: Mapping[str, str],
    dataset: str,
    scale: Any,
    metrics: Sequence[str],
) -> dict[str, float]:
    """The paper's values for the row ``key`` at (``dataset``, ``scale``); ``{}`` if it has none.

    Raises ``ValueError`` when ``key`` matches several paper rows (an ambiguous table spec).
    """
    if isinstance(scale, list | tuple):
        return {}  # the paper reports uniform scales only
    matches = [
        row
        for row in paper_rows
        if row["dataset"] == dataset
        and math.isclose(float(row["scale"]), float(scale))
        and all(row.get(name, "") == str(value) for name, value in key.items())
    ]
    if len(matches) > 1:
        raise ValueError(f"paper row {dict(key)} is ambiguous at {dataset} x{scale}: {matches}")
    if not matches:
        return {}
    return {m: float(matches[0][m]) for m in metrics if matches[0].get(m) not in (None, "")}


# --------------------------------------------------------------------------------------------
# The table


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


# --------------------------------------------------------------------------------------------
# Rendering


def _number(value: float, metric: str) -> str:
    return f"{value:.{DECIMALS[metric]}f}"


def _signed(value: float, metric: str) -> str:
    return f"{value:+.{DECIMALS[metric]}f}"


def _scale_label(scale: Any, *, latex: bool = False) -> str:
    text = scale_key(scale)[1:].replace("x", "×")
    if latex:
        return "$\\times" + text.replace("×", "{\\times}") + "$"
    return "×" + text


def _row_groups(rows: Sequence[Row]) -> list[tuple[str, list[Row]]]:
    """Consecutive rows with the same group label (first-appearance order, as in the spec)."""
    groups: list[tuple[str, list[Row]]] = []
    for row in rows:
        if groups and groups[-1][0] == row.spec.group:
            groups[-1][1].append(row)
        else:
            groups.append((row.spec.group, [row]))
    return groups


def _legend(table: Table) -> str:
    names = " / ".join(m.upper() for m in table.layout.metrics)
    return (
        f"Each cell: ours {names} (paper's {names}, Δ = ours − paper). Bold: our best per column. "
        "–: not reported / not evaluated."
    )


@dataclass(frozen=True)
class CellMarkup:
    """How one output format writes a table cell: ours (best in bold), the paper's, the Δ."""

    missing: str
    bold: str  # a format with one {}
    italic: str
    separator: str
    delta: str  # format of one signed difference
    with_delta: str  # formats of the whole cell: {ours}, {paper}, {delta}
    without_delta: str


MARKDOWN = CellMarkup(
    "–", "**{}**", "*{}*", " / ", "{}", "{ours} ({paper}, Δ {delta})", "{ours} ({paper})"
)
LATEX = CellMarkup(
    "--",
    "\\textbf{{{}}}",
    "\\textit{{{}}}",
    "/",
    "${}$",
    "{ours} {{\\scriptsize({paper}, {delta})}}",
    "{ours} {{\\scriptsize({paper})}}",
)


def render_cell(row: Row, cell: Cell, metrics: Sequence[str], markup: CellMarkup) -> str:
    """Our numbers (or the row's status), then the paper's and the difference where known."""
    if row.has_numbers and cell.ours:
        parts = []
        for m in metrics:
            text = _number(cell.ours[m], m) if m in cell.ours else markup.missing
            parts.append(markup.bold.format(text) if m in cell.best else text)
        ours = markup.separator.join(parts)
    elif row.status in (FINISHED, "bicubic", "paper"):
        ours = markup.missing
    else:
        ours = markup.italic.format(row.status)
    if not cell.paper:
        return ours
    paper = markup.separator.join(
        _number(cell.paper[m], m) if m in cell.paper else markup.missing for m in metrics
    )
    diffs = [cell.diff(m) for m in metrics]
    if all(d is None for d in diffs):
        return markup.without_delta.format(ours=ours, paper=paper)
    delta = markup.separator.join(
        markup.delta.format(_signed(d, m)) if d is not None else markup.missing
        for m, d in zip(metrics, diffs, strict=True)
    )
    return markup.with_delta.format(ours=ours, paper=paper, delta=delta)


def _status_suffix(row: Row) -> str:
    if row.spec.kind == "paper":
        return " (paper only)"
    if row.spec.kind == "job" and row.status != FINISHED:
        return f" — {row.status.upper()}"
    return ""


def render_markdown(table: Table) -> str:
    """A README-ready GitHub-flavoured markdown table, with a legend and the incomplete jobs."""
    metrics = table.layout.metrics
    columns = table.columns
    header = ["Method"]
    for group, scale, _ in columns:
        first = scale == group.scales[0]
        prefix = f"{group.label} " if first and group.label else ""
        header.append(f"{prefix}{_scale_label(scale)}")
    lines = []
    if table.layout.title:
        lines += [f"### {table.layout.title}", ""]
    lines += [_legend(table), ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join([":---"] + [":---:"] * len(columns)) + "|")
    for group, rows in _row_groups(table.rows):
        if group:
            lines.append("| " + " | ".join([f"**{group}**"] + [""] * len(columns)) + " |")
        for row in rows:
            cells = [render_cell(row, cell, metrics, MARKDOWN) for cell in row.cells]
            lines.append("| " + " | ".join([row.spec.label + _status_suffix(row), *cells]) + " |")
    incomplete = table.incomplete
    if incomplete:
        lines += ["", f"Incomplete jobs ({len(incomplete)}):", ""]
        for row in incomplete:
            note = f": {' '.join(row.note.split())}" if row.note else ""
            lines.append(f"- `{row.spec.variant}` ({row.spec.label}): **{row.status}**{note}")
    return "\n".join(lines) + "\n"


def render_csv(table: Table) -> str:
    """One line per row; per (set, scale) and metric: ours, the paper's value and the difference.

    Empty fields: no value. ``status`` says why a job row has none (failed, missing, ...).
    """
    metrics = table.layout.metrics
    header = ["group", "label", "kind", "variant", "status", "note"]
    for _, _, loader in table.columns:
        for m in metrics:
            header += [f"{loader}/{m}", f"{loader}/{m}/paper", f"{loader}/{m}/diff"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        line = [row.spec.group, row.spec.label, row.spec.kind, row.spec.variant or "", row.status]
        line.append(row.note)
        for cell in row.cells:
            for m in metrics:
                diff = cell.diff(m)
                line += [
                    _csv_number(cell.ours.get(m)),
                    _csv_number(cell.paper.get(m)),
                    _csv_number(diff),
                ]
        writer.writerow(line)
    return out.getvalue()


def _csv_number(value: float | None) -> str:
    return "" if value is None else str(round(value, 6))


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # Unicode of our labels and legend, for pdflatex:
    "−": "$-$",
    "–": "--",
    "—": "---",
    "×": r"$\times$",
    "Δ": r"$\Delta$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(char, char) for char in text)


def render_latex(table: Table) -> str:
    """A booktabs ``table`` (needs ``\\usepackage{booktabs}``): grouped column headings with
    ``\\cmidrule``, row groups separated by ``\\midrule``, our best per column in bold, the
    paper's value and the difference in small type beside ours."""
    metrics = table.layout.metrics
    columns = table.columns
    count = len(columns)
    lines = [
        "% Generated by `python sweep.py report`; needs \\usepackage{booktabs}.",
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(table.layout.title)}. {latex_escape(_legend(table))}}}",
        "\\resizebox{\\linewidth}{!}{%",
        f"\\begin{{tabular}}{{l{'c' * count}}}",
        "\\toprule",
    ]
    headings, rules, start = [], [], 2
    for group in table.layout.columns:
        width = len(group.scales)
        headings.append(f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(group.label)}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    lines.append(" & " + " & ".join(headings) + " \\\\")
    lines.append("".join(rules))
    lines.append(
        "Method & " + " & ".join(_scale_label(s, latex=True) for _, s, _ in columns) + " \\\\"
    )
    for group, rows in _row_groups(table.rows):
        lines.append("\\midrule")
        if group:
            lines.append(
                f"\\multicolumn{{{count + 1}}}{{l}}{{\\textit{{{latex_escape(group)}}}}} \\\\"
            )
        for row in rows:
            label = latex_escape(row.spec.label + _status_suffix(row))
            cells = [render_cell(row, cell, metrics, LATEX) for cell in row.cells]
            lines.append(" & ".join([label, *cells]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}}", "\\end{table}"]
    return "\n".join(lines) + "\n"
