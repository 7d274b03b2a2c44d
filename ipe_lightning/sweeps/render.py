"""A table as text: GitHub markdown, CSV and a booktabs LaTeX table.

Every format shows the same cells: ours (our best per column in bold), the paper's value and the
difference, or the status of a job that did not finish.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ipe_lightning.results import FINISHED
from ipe_lightning.scales import scale_tag
from ipe_lightning.sweeps.table import DECIMALS, Cell, Row, Table


def _number(value: float, metric: str) -> str:
    return f"{value:.{DECIMALS[metric]}f}"


def _signed(value: float, metric: str) -> str:
    return f"{value:+.{DECIMALS[metric]}f}"


def _scale_label(scale: Any, *, latex: bool = False) -> str:
    text = scale_tag(scale)[1:].replace("x", "×")
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
