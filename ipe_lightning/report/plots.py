"""``psnr_vs_scale.{png,pdf}``: PSNR gain over bicubic against scale, one line per variant.

Every variant has its own colour, marker and line style, and is moved a little along the scale
axis (variants a few hundredths of a dB apart must not hide one another), error bars (± one
standard deviation, small caps) where it has several seeds, and the paper's curve, where the paper
has the row, in the variant's colour with one style for all (dotted, a dash for a marker) and one
legend entry, so the legend has one entry per variant and one for the paper. One legend for all
panels, right of them; a debug run's plot says so across it.
"""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipe_lightning.atomic import savefig_atomic
from ipe_lightning.report.table import Table
from ipe_lightning.results import FINISHED, JobResult, debug_note

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")
LINE_STYLES = ("-", (0, (5, 1)), "-.", (0, (1, 1)), (0, (3, 1, 1, 1, 1, 1)))
PAPER_LABEL = "the paper's numbers (dotted, in the row's colour)"
DODGE = 0.008  # decades of scale between neighbouring variants (1.9 %): ×3 and ×4 are 0.125 apart

Results = Mapping[str, JobResult | Sequence[JobResult]]


@dataclass(frozen=True)
class GainSeries:
    """One variant's gain over bicubic on one set: ``(scale, mean, std, n)`` points (std 0 for
    one seed) and the paper's ``(scale, gain)`` points where the paper has the row."""

    label: str
    points: tuple[tuple[float, float, float, int], ...]
    paper: tuple[tuple[float, float], ...] = ()


def _seeds(result: JobResult | Sequence[JobResult] | None) -> list[JobResult]:
    if result is None:
        return []
    runs = [result] if isinstance(result, JobResult) else list(result)
    return [run for run in runs if run.status == FINISHED]


def gain_series(table: Table, results: Results) -> dict[str, list[GainSeries]]:
    """``{set: [series, ...]}`` for the finished variants in table order, at the table's uniform
    scales (per-axis scales have no place on one axis). ``results`` maps a variant to its
    result, or to the results of its seeds."""
    bicubic_paper: dict[str, float] = {}
    for row in table.rows:
        if row.spec.kind == "bicubic":
            for (_, scale, loader), cell in zip(table.columns, row.cells, strict=True):
                if "psnr" in cell.paper and not isinstance(scale, list | tuple):
                    bicubic_paper[loader] = cell.paper["psnr"]
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for row in table.rows:
        seeds = _seeds(results.get(row.spec.variant or "")) if row.spec.kind == "job" else []
        if not seeds:
            continue
        label = _series_label(row.spec.group, row.spec.label)
        for (_, scale, loader), cell in zip(table.columns, row.cells, strict=True):
            if isinstance(scale, list | tuple):
                continue
            gains = [
                run.metrics[loader]["psnr"] - run.metrics[loader]["bicubic_psnr"]
                for run in seeds
                if {"psnr", "bicubic_psnr"} <= set(run.metrics.get(loader, {}))
            ]
            if not gains:
                continue
            entry = found.setdefault(loader.rsplit("/", 1)[0], {}).setdefault(
                label, {"points": {}, "paper": {}}
            )
            std = statistics.stdev(gains) if len(gains) > 1 else 0.0
            entry["points"][float(scale)] = (statistics.fmean(gains), std, len(gains))
            if "psnr" in cell.paper and loader in bicubic_paper:
                entry["paper"][float(scale)] = cell.paper["psnr"] - bicubic_paper[loader]
    return {
        set_name: [
            GainSeries(
                label=label,
                points=tuple((s, *entry["points"][s]) for s in sorted(entry["points"])),
                paper=tuple(sorted(entry["paper"].items())),
            )
            for label, entry in by_label.items()
        ]
        for set_name, by_label in found.items()
    }


def _series_label(group: str, label: str) -> str:
    """``group: label``, or the label alone when it already names its group
    (``EDSR-baseline-MetaSR`` in the group ``EDSR-baseline``)."""
    return f"{group}: {label}" if group and group not in label else label


def gain_curves(table: Table, results: Results) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """``{set: {row label: [(scale, mean psnr − bicubic psnr), ...]}}`` (:func:`gain_series`)."""
    return {
        set_name: {s.label: [(p[0], p[1]) for p in s.points] for s in series}
        for set_name, series in gain_series(table, results).items()
    }


def style(index: int) -> dict[str, Any]:
    """Colour, marker and line style of the ``index``-th variant: no two of the first 60 share
    marker and line style (colours repeat after 10)."""
    return {
        "color": f"C{index % 10}",
        "marker": MARKERS[index % len(MARKERS)],
        "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
    }


def dodged(scales: Sequence[float], index: int, count: int) -> list[float]:
    """``scales`` moved a little along the log axis, the ``index``-th of ``count`` variants to its
    own side, so that equal gains (and their error bars) do not hide one another."""
    factor = 10 ** (DODGE * (index - (count - 1) / 2))
    return [scale * factor for scale in scales]


def _draw_series(
    axis: Any, line: GainSeries, index: int, count: int, look: Mapping[str, Any]
) -> dict[str, Any]:
    """Our curve (hollow markers, ± std bars with small caps under them) and the paper's (same
    colour and marker, small and filled, dashed and thinner); ``{legend label: handle}``."""
    scales, means, stds, counts = zip(*line.points, strict=True)
    seeds = max(counts)
    label = line.label + (f" (n = {seeds} seeds, ± std)" if seeds > 1 else "")
    ours = axis.errorbar(
        dodged(scales, index, count),
        means,
        yerr=stds if seeds > 1 else None,
        capsize=1.5,
        elinewidth=0.8,
        markersize=6,
        markerfacecolor="none",
        linewidth=1.5,
        label=label,
        **look,
    )
    for bar in ours.lines[2]:
        bar.set_alpha(0.6)  # the bars stay legible without covering the markers
    handles = {label: ours}
    if line.paper:
        paper_scales, paper_gains = zip(*line.paper, strict=True)
        (paper,) = axis.plot(  # one style for every paper curve: one legend entry says it
            dodged(paper_scales, index, count),
            paper_gains,
            color=look["color"],
            marker="_",
            markersize=7,
            linestyle=":",
            linewidth=1.0,
            alpha=0.8,
            label=PAPER_LABEL,
        )
        handles[PAPER_LABEL] = paper
    return handles


def _decorate(axis: Any, set_name: str, lines: Sequence[GainSeries]) -> None:
    axis.set_xscale("log")
    ticks = sorted({p[0] for line in lines for p in line.points})
    axis.set_xticks(ticks, [f"×{s:g}" for s in ticks])
    axis.minorticks_off()
    axis.axhline(0.0, color="grey", linewidth=0.8)
    axis.set_title(set_name)
    axis.set_xlabel("scale")
    axis.set_ylabel("PSNR − bicubic PSNR (dB)")
    axis.grid(alpha=0.3)


def draw_psnr_gain(table: Table, results: Results, *, debug: str | None = None) -> Any:
    """The matplotlib figure of :func:`plot_psnr_gain`: one panel per set, one legend for all,
    right of the panels (14 entries inside the axes would cover the curves)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on clusters
    import matplotlib.pyplot as plt

    series = gain_series(table, results)
    labels = list(dict.fromkeys(line.label for lines in series.values() for line in lines))
    looks = {label: style(index) for index, label in enumerate(labels)}  # alike in every panel
    panels = max(len(series), 1)
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels + 3.5, 4.8), squeeze=False)
    handles: dict[str, Any] = {}
    for axis, (set_name, lines) in zip(axes[0], series.items(), strict=False):
        for index, line in enumerate(lines):
            handles |= _draw_series(axis, line, index, len(lines), looks[line.label])
        _decorate(axis, set_name, lines)
    if handles:
        if PAPER_LABEL in handles:  # last, after the variants
            handles[PAPER_LABEL] = handles.pop(PAPER_LABEL)
        axes[0][-1].legend(
            handles.values(),
            handles.keys(),
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
            fontsize="x-small",
        )
    else:
        axes[0][0].text(0.5, 0.5, "no finished jobs yet", ha="center", va="center")
        axes[0][0].set_axis_off()
    figure.suptitle(textwrap.fill(table.layout.title or "PSNR gain over bicubic", 90))
    if debug:  # along the bottom, in red
        figure.text(0.5, 0.01, debug_note(debug), color="red", weight="bold", ha="center")
    figure.tight_layout(rect=(0, 0.05 if debug else 0, 1, 1))  # makes room for the legend
    return figure


def plot_psnr_gain(
    table: Table, results: Results, path: str | Path, *, debug: str | None = None
) -> None:
    """Write the plot to ``path`` (PNG) and beside it as PDF (same name, ``.pdf``)."""
    import matplotlib.pyplot as plt

    figure = draw_psnr_gain(table, results, debug=debug)
    path = Path(path)
    savefig_atomic(figure, path, dpi=120)
    savefig_atomic(figure, path.with_suffix(".pdf"))
    plt.close(figure)
