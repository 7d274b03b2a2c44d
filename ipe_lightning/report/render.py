"""A table as text: GitHub markdown and a booktabs LaTeX table, in two modes.

Markdown and LaTeX here, CSV in :mod:`ipe_lightning.report.render_csv`.

- ``paper`` (``table.md``/``.tex``): ours (our best per column in bold; the mean over the
  seeds, as the legend says), the paper's value and the difference, or the status of a job that
  did not finish; the markdown adds the ΔPSNR intervals against the reference row (or says that
  there are none: no per-image results, or too few images for a set);
- ``clean`` (``table_clean.md``/``.tex``): only our numbers, ``mean ± std`` over seeds, n, and a
  mark where the ΔPSNR interval against the reference excludes 0: what pastes into a paper.

A table of a ``debug=`` run says so in every format (the CSVs: ``report/render_csv.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ipe_lightning.report.statistics import MIN_IMAGES
from ipe_lightning.report.table import DECIMALS, Cell, Row, Table
from ipe_lightning.results import FINISHED
from ipe_lightning.scales import scale_tag
from ipe_lightning.table_layout import ColumnGroup

MODES = ("paper", "clean")
SIGNIFICANT = "†"  # the ΔPSNR interval against the reference row excludes 0
PARTIAL = "‡"  # measured on fewer images than the set holds (data.skip_bad=true skipped some)
UNCHECKED = "§"  # per_image.csv disagrees with metrics.json: left out of intervals and bold


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


def debug_warning(table: Table) -> str:
    """The line every artefact of a ``debug=`` run carries (empty for a real run)."""
    if not table.debug:
        return ""
    return (
        f"DEBUG RUN (debug={table.debug}): tiny data and schedule, the numbers are meaningless "
        "and not comparable with the paper's."
    )


def _best_rule(table: Table) -> str:
    if table.best_rule == "noise":
        return (
            "Bold: our best per column, only where the 95 % paired bootstrap interval (over images"
            " and seeds) of its difference to every other row excludes 0."
        )
    return "Bold: our best per column at the printed precision (no per-image results to test it)."


def _no_per_image(table: Table) -> bool:
    """No finished job has per-image results: there is nothing to build an interval from."""
    finished = [job for row in table.rows if row.spec.kind == "job" for job in row.jobs]
    finished = [job for job in finished if job.result.status == FINISHED]
    return bool(finished) and len(table.without_per_image) == len(finished)


def _reference_legend(table: Table) -> str:
    row = table.reference_row
    if row is None:
        return ""
    if _no_per_image(table):
        return f"No {SIGNIFICANT}: no per-image results: no confidence intervals."
    return (
        f"{SIGNIFICANT}: the 95 % paired bootstrap interval of the per-image ΔPSNR against "
        f"{row.spec.label} (the reference) excludes 0."
    )


def _too_few_legend(table: Table) -> str:
    """Which sets have too few images for an interval to mean anything (no mark, no bold)."""
    few = table.too_few_images
    if not few:
        return ""
    sets = ", ".join(f"{name} ({count} images)" for name, count in few.items())
    return (
        f"No {SIGNIFICANT} and no bold in {sets}: fewer than {MIN_IMAGES} paired images, too few "
        "for a 95 % interval to mean anything."
    )


def _cell_marks(row: Row, loader: str) -> str:
    """:data:`PARTIAL` and :data:`UNCHECKED` where one of the row's jobs earns them in a column."""
    results = [job.result for job in row.jobs if job.result.status == FINISHED]
    partial = any(result.set_size(loader) for result in results)
    unchecked = any(loader in result.per_image_problems for result in results)
    return (PARTIAL if partial else "") + (UNCHECKED if unchecked else "")


def cell_notes(table: Table) -> list[str]:
    """One sentence per job and set measured on fewer images than the set holds (which files
    were skipped, and why), and per job and column whose per-image results were left out."""
    notes = []
    for row in table.rows:
        for job in row.jobs:
            result = job.result
            if result.status != FINISHED:
                continue
            sizes = {}
            for group, scale, loader in table.columns:
                if result.set_size(loader):
                    sizes.setdefault(group.set, []).append((scale, *result.set_size(loader)))
            for set_name, found in sizes.items():
                scales = ", ".join(_scale_label(scale) for scale, _, _ in found)
                measured, held = found[0][1], found[0][2]
                skipped = result.skipped[set_name].items()
                files = "; ".join(f"{name}: {why}" for name, why in skipped)
                notes.append(
                    f"{PARTIAL} {job.name}, {set_name} {scales}: {measured} of {held} images; "
                    f"skipped as unreadable (data.skip_bad=true): {files}."
                )
            for _, _, loader in table.columns:
                why = result.per_image_problems.get(loader)
                if why:
                    notes.append(
                        f"{UNCHECKED} {job.name}, {loader}: per_image.csv disagrees with "
                        f"metrics.json ({why}); no interval or bold rests on it."
                    )
    return notes


def _seeds_legend(table: Table, clean_file: str) -> str:
    """What the paper mode's numbers are when rows have several seeds (its cells have no room
    for ± std and n: the clean table has them)."""
    counts = {c.n for row in table.rows if row.spec.kind == "job" for c in row.cells if c.n}
    if not counts or max(counts) < 2:
        return ""
    if len(counts) == 1:
        return f"Ours: mean over n = {max(counts)} seeds (± std in {clean_file})."
    n = f"{min(counts)}–{max(counts)}"
    return f"Ours: mean over n = {n} seeds (each row's n and ± std in {clean_file})."


def _legend(
    table: Table, mode: str = "paper", clean_file: str = "table_clean.md", first: str = ""
) -> str:
    """What the cells and marks of a table mean; ``first``: how a cell reads, where the format
    differs from the markdown's."""
    names = " / ".join(m.upper() for m in table.layout.metrics)
    if mode == "clean":
        first = (
            first or f"Each cell: our {names}, mean ± standard deviation over n seeds where n > 1."
        )
        parts = [first, _best_rule(table), _reference_legend(table), _too_few_legend(table)]
    else:
        first = first or f"Each cell: ours {names} (paper's {names}, Δ = ours − paper)."
        parts = [first, _seeds_legend(table, clean_file), _best_rule(table)]
        parts.append(_too_few_legend(table))
    parts.append("–: not reported / not evaluated.")
    return " ".join(p for p in parts if p)


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
    plus_minus: str = " ± {}"
    significant: str = SIGNIFICANT


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
    plus_minus="\\,{{\\scriptsize$\\pm${}}}",
    significant="$^{\\dagger}$",
)
_LATEX_MARKS = {PARTIAL: "$^{\\ddagger}$", UNCHECKED: "$^{\\S}$"}


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


def render_clean_cell(row: Row, cell: Cell, metrics: Sequence[str], markup: CellMarkup) -> str:
    """Our numbers only: ``mean ± std`` (n > 1), bold where best, the significance mark."""
    if not (row.has_numbers and cell.ours):
        if row.status in (FINISHED, "bicubic", "paper"):
            return markup.missing
        return markup.italic.format(row.status)
    parts = []
    for m in metrics:
        if m not in cell.ours:
            parts.append(markup.missing)
            continue
        text = _number(cell.ours[m], m)
        text = markup.bold.format(text) if m in cell.best else text
        if m in cell.std:
            text += markup.plus_minus.format(_number(cell.std[m], m))
        parts.append(text)
    mark = markup.significant if cell.significant else ""
    return markup.separator.join(parts) + mark


def _row_label(row: Row, mode: str) -> str:
    label = row.spec.label
    if mode == "clean" and len(row.seeds) > 1:
        label += f" (n = {len(row.seeds)})"
    if mode == "clean" and row.is_reference:
        label += " (reference)"
    return label + _status_suffix(row)


def _status_suffix(row: Row) -> str:
    if row.spec.kind == "paper":
        return " (paper only)"
    if row.spec.kind == "job" and row.status != FINISHED:
        return f" — {row.status.upper()}"
    return ""


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def render_markdown(table: Table, mode: str = "paper") -> str:
    """A README-ready GitHub-flavoured markdown table, with a legend and the incomplete jobs
    (``mode``: module doc)."""
    _check_mode(mode)
    metrics = table.layout.metrics
    columns = table.columns
    header = ["Method"]
    for group, scale, _ in columns:
        first = scale == group.scales[0]
        prefix = f"{group.label} " if first and group.label else ""
        header.append(f"{prefix}{_scale_label(scale)}")
    lines = []
    if table.debug:
        lines += [f"> **{debug_warning(table)}**", ""]
    if table.layout.title:
        lines += [f"### {table.layout.title}", ""]
    lines += [_legend(table, mode), ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join([":---"] + [":---:"] * len(columns)) + "|")
    for group, rows in _row_groups(table.rows):
        if group:
            lines.append("| " + " | ".join([f"**{group}**"] + [""] * len(columns)) + " |")
        for row in rows:
            render = render_clean_cell if mode == "clean" else render_cell
            cells = [
                render(row, cell, metrics, MARKDOWN) + _cell_marks(row, loader)
                for cell, (_, _, loader) in zip(row.cells, columns, strict=True)
            ]
            lines.append("| " + " | ".join([_row_label(row, mode), *cells]) + " |")
    notes = cell_notes(table)
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    if mode == "paper":
        lines += _markdown_intervals(table, header)
    incomplete = table.incomplete
    if incomplete:
        lines += ["", f"Incomplete jobs ({len(incomplete)}):", ""]
        for row in incomplete:  # by job: a row of seeds names the seeds that did not finish
            jobs = [j.name for j in row.jobs if j.result.status != FINISHED] or [row.spec.variant]
            names = ", ".join(f"`{name}`" for name in jobs)
            note = f": {' '.join(row.note.split())}" if row.note else ""
            lines.append(f"- {names} ({row.spec.label}): **{row.status}**{note}")
    return "\n".join(lines) + "\n"


def _interval_text(cell: Cell) -> str:
    if cell.delta is None:
        return "–"
    d = cell.delta
    if not d.meaningful:  # the mean difference is a fact; its "interval" would claim too much
        return f"{d.mean:+.3f} ({d.images} images: no CI)"
    mark = SIGNIFICANT if cell.significant else ""
    return f"{d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}]{mark}"


def _markdown_intervals(table: Table, header: list[str]) -> list[str]:
    """ΔPSNR against the reference row: mean per-image difference and its 95 % interval; or why
    there is none (no per-image results, too few images in a set)."""
    reference = table.reference_row
    if reference is None:
        return []
    heading = f"#### ΔPSNR (dB) against {reference.spec.label}: mean per-image difference [95 % CI]"
    rows = [r for r in table.rows if r.spec.kind == "job" and any(c.delta for c in r.cells)]
    missing = ", ".join(f"`{name}`" for name in table.without_per_image)
    if _no_per_image(table):
        return [
            "",
            heading,
            "",
            f"**no per-image results: no confidence intervals** (none of the "
            f"{len(table.without_per_image)} finished jobs has them; a job writes them as "
            "`per_image.csv`, a W&B run logs them as its `test/per_image` table).",
        ]
    if not rows:
        return []
    lines = [
        "",
        heading,
        "",
        "Paired bootstrap over images (and seeds); " + _reference_legend(table),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + [":---:"] * len(table.columns)) + "|",
    ]
    for row in rows:
        cells = [_interval_text(cell) for cell in row.cells]
        lines.append("| " + " | ".join([row.spec.label, *cells]) + " |")
    few = table.too_few_images
    if few:
        lines += ["", f"Too few images for a 95 % interval (fewer than {MIN_IMAGES}):", ""]
        lines += [
            f"- {name}: {count} paired images, fewer than {MIN_IMAGES}: its intervals are not "
            f"meaningful; only the mean difference is shown, with no {SIGNIFICANT} and no bold."
            for name, count in few.items()
        ]
    if table.without_per_image:
        lines += ["", f"No per-image results for {missing}: the intervals leave them out."]
    return lines


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
    "±": r"$\pm$",
    ">": r"$>$",  # OT1 text mode would print ¿ and ¡
    "<": r"$<$",
    "†": r"$^{\dagger}$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(char, char) for char in text)


_TABLE_NUMBER = re.compile(r"^\s*Table\s+\w+\s*[:.]\s*", re.IGNORECASE)


def latex_label(table: Table, mode: str = "paper") -> str:
    """``tab:<paper table or title>``, ``-clean`` for the clean mode: a stable ``\\ref`` key."""
    stem = table.layout.paper_table or table.layout.title or "sweep"
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "sweep"
    return f"tab:{slug}" + ("-clean" if mode == "clean" else "")


# Columns of one tabular, so that a table keeps the text size of a paper and fits its width:
# one metric at \small (~30 pt a column), PSNR / SSIM at \scriptsize (~46 pt a column).
PANEL_COLUMNS = {1: 8, 2: 5}
_PANEL_SIZE = {1: ("\\small", "4pt"), 2: ("\\scriptsize", "2.5pt")}


def latex_panels(table: Table) -> list[list[ColumnGroup]]:
    """The column groups of each tabular of the LaTeX table, left to right, then top to bottom:
    consecutive groups while they fit :data:`PANEL_COLUMNS` (a wider group alone), so a wide
    table (in- and out-of-distribution, four benchmarks) is stacked rather than shrunk."""
    limit = PANEL_COLUMNS.get(len(table.layout.metrics), 5)
    panels: list[list[ColumnGroup]] = []
    width = 0
    for group in table.layout.columns:
        if panels and width + len(group.scales) <= limit:
            panels[-1].append(group)
            width += len(group.scales)
        else:
            panels.append([group])
            width = len(group.scales)
    return panels


def _latex_rows(table: Table, mode: str, groups: list[ColumnGroup]) -> list[str]:
    """The heading and body of one tabular: the table's rows over ``groups``' columns; in the
    paper mode each of our rows the paper has is followed by the paper's numbers, small."""
    metrics = table.layout.metrics
    wanted = {id(group) for group in groups}
    columns = [
        (index, column) for index, column in enumerate(table.columns) if id(column[0]) in wanted
    ]
    count = len(columns)
    headings, rules, start = [], [], 2
    for group in groups:
        width = len(group.scales)
        headings.append(f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(group.label)}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    lines = [
        f"\\begin{{tabular}}{{@{{}}l{'c' * count}@{{}}}}",
        "\\toprule",
        " & " + " & ".join(headings) + " \\\\",
        "".join(rules),
        "Method & "
        + " & ".join(_scale_label(scale, latex=True) for _, (_, scale, _) in columns)
        + " \\\\",
    ]
    render = render_clean_cell if mode == "clean" else render_ours
    for group, rows in _row_groups(table.rows):
        lines.append("\\midrule")
        if group:
            lines.append(
                f"\\multicolumn{{{count + 1}}}{{@{{}}l}}{{\\textit{{{latex_escape(group)}}}}} \\\\"
            )
        for row in rows:
            cells = [
                render(row, row.cells[i], metrics, LATEX)
                + "".join(_LATEX_MARKS[m] for m in _cell_marks(row, loader))
                for i, (_, _, loader) in columns
            ]
            if row.spec.kind == "job" and not row.has_numbers:  # its status, once across
                cells = [f"\\multicolumn{{{count}}}{{c}}{{\\textit{{{latex_escape(row.status)}}}}}"]
            lines.append(" & ".join([_latex_label(row, mode), *cells]) + " \\\\")
            papers = [_paper_numbers(row.cells[i], metrics) for i, _ in columns]
            if mode == "paper" and row.spec.kind == "job" and any(papers):
                small = [f"{{\\scriptsize {text}}}" if text else "" for text in papers]
                lines.append(" & ".join(["\\quad{\\scriptsize paper}", *small]) + " \\\\")
    return [*lines, "\\bottomrule", "\\end{tabular}"]


def _latex_label(row: Row, mode: str) -> str:
    """The row's label; its cells say a job's status, a row of the paper's numbers is in italics
    (the notes say so): a label column no wider than the labels themselves."""
    label = latex_escape(row.spec.label)
    if mode == "clean" and len(row.seeds) > 1:
        label += f" ($n = {len(row.seeds)}$)"
    if mode == "clean" and row.is_reference:
        label += " (ref.)"
    return f"\\textit{{{label}}}" if row.spec.kind == "paper" else label


def render_ours(row: Row, cell: Cell, metrics: Sequence[str], markup: CellMarkup) -> str:
    """Our numbers alone (best in bold), or the row's status, or the paper's own numbers for a
    row of the paper only."""
    if row.spec.kind in ("paper", "bicubic") and not cell.ours and cell.paper:
        return _paper_numbers(cell, metrics)
    return render_cell(row, replace(cell, paper={}), metrics, markup)


def _paper_numbers(cell: Cell, metrics: Sequence[str]) -> str:
    if not cell.paper:
        return ""
    return "/".join(_number(cell.paper[m], m) if m in cell.paper else "--" for m in metrics)


def render_latex(table: Table, mode: str = "paper") -> str:
    """A booktabs ``table`` at the size of a paper's text (needs ``\\usepackage{booktabs}``): a
    short caption; grouped column headings with ``\\cmidrule``; row groups separated by
    ``\\midrule``; our best per column in bold; a wide table stacked as several tabulars
    (:func:`latex_panels`); what the marks mean in notes under it. ``paper``: each of our rows
    followed by the paper's numbers in small type; ``clean``: ``mean ± std`` and significance
    marks."""
    _check_mode(mode)
    caption = _TABLE_NUMBER.sub("", table.layout.title) or "Results"
    if table.debug:
        caption = f"DEBUG RUN (debug={table.debug}), the numbers mean nothing: {caption}"
    size, separation = _PANEL_SIZE.get(len(table.layout.metrics), _PANEL_SIZE[2])
    # The full width of a two-column paper (panels of 250-380 pt); in one column, table* is table
    environment = "table*"
    lines = ["% Generated by `python sweep.py report`; needs \\usepackage{booktabs}."]
    if table.debug:
        lines.append(f"% {latex_escape(debug_warning(table))}")
    lines += [
        f"\\begin{{{environment}}}[t]",
        "\\centering",
        f"\\caption{{{latex_escape(caption)}}}",
        f"\\label{{{latex_label(table, mode)}}}",
        size,
        f"\\setlength{{\\tabcolsep}}{{{separation}}}",
    ]
    for index, groups in enumerate(latex_panels(table)):
        if index:
            lines.append("\\par\\medskip")
        lines += _latex_rows(table, mode, groups)
    first = ""
    if mode == "paper":
        first = (
            "Ours, with the paper's numbers in small type under each row the paper has "
            "(ours − paper: table.md, table.csv)."
        )
    if any(row.spec.kind == "paper" for row in table.rows):
        first += " Rows in italics: the paper's numbers only."
    notes = [_legend(table, mode, "table_clean.tex", first.strip()), *cell_notes(table)]
    lines.append("\\par\\smallskip")
    lines.append(
        "\\parbox{\\linewidth}{\\footnotesize "
        + " \\\\ ".join(latex_escape(note) for note in notes if note)
        + "}"
    )
    lines.append(f"\\end{{{environment}}}")
    return "\n".join(lines) + "\n"
