"""``psnr_vs_scale.{png,pdf}``: PSNR gain over bicubic against scale, one line per variant.

Every variant has its own marker and line style (variants a few hundredths of a dB apart must not
hide one another), error bars (± one standard deviation) where it has several seeds, and the
paper's curve, where the paper has the row, dashed in the variant's colour. A debug run's plot
says so across it.
"""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipe_lightning.results import FINISHED, JobResult
from ipe_lightning.runtime.examples import debug_note
from ipe_lightning.sweeps.table import Table

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*", "h", "p")
LINE_STYLES = ("-", (0, (5, 1)), "-.", (0, (1, 1)), (0, (3, 1, 1, 1, 1, 1)))

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
        label = f"{row.spec.group}: {row.spec.label}" if row.spec.group else row.spec.label
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


def gain_curves(table: Table, results: Results) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """``{set: {row label: [(scale, mean psnr − bicubic psnr), ...]}}`` (:func:`gain_series`)."""
    return {
        set_name: {s.label: [(p[0], p[1]) for p in s.points] for s in series}
        for set_name, series in gain_series(table, results).items()
    }


def style(index: int) -> dict[str, Any]:
    """Marker and line style of the ``index``-th variant: no two of the first 60 share both."""
    return {
        "marker": MARKERS[index % len(MARKERS)],
        "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
    }


def draw_psnr_gain(table: Table, results: Results, *, debug: str | None = None) -> Any:
    """The matplotlib figure of :func:`plot_psnr_gain` (one panel per set)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on clusters
    import matplotlib.pyplot as plt

    series = gain_series(table, results)
    panels = max(len(series), 1)
    figure, axes = plt.subplots(1, panels, figsize=(max(5.5 * panels, 8), 4.8), squeeze=False)
    for axis, (set_name, lines) in zip(axes[0], series.items(), strict=False):
        for index, line in enumerate(lines):
            scales, means, stds, counts = zip(*line.points, strict=True)
            seeds = max(counts)
            label = line.label + (f" (n = {seeds} seeds, ± std)" if seeds > 1 else "")
            drawn = axis.errorbar(
                scales,
                means,
                yerr=stds if seeds > 1 else None,
                capsize=3 if seeds > 1 else 0,
                markersize=6,
                markerfacecolor="none",
                label=label,
                **style(index),
            )
            if line.paper:
                paper_scales, paper_gains = zip(*line.paper, strict=True)
                axis.plot(
                    paper_scales,
                    paper_gains,
                    color=drawn.lines[0].get_color(),
                    linestyle="--",
                    linewidth=0.9,
                    alpha=0.7,
                    label=f"{line.label} (paper)",
                )
        axis.set_xscale("log")
        ticks = sorted({p[0] for line in lines for p in line.points})
        axis.set_xticks(ticks, [f"×{s:g}" for s in ticks])
        axis.minorticks_off()
        axis.axhline(0.0, color="grey", linewidth=0.8)
        axis.set_title(set_name)
        axis.set_xlabel("scale")
        axis.set_ylabel("PSNR − bicubic PSNR (dB)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="x-small", ncol=2 if len(lines) > 4 else 1)
    if not series:
        axes[0][0].text(0.5, 0.5, "no finished jobs yet", ha="center", va="center")
        axes[0][0].set_axis_off()
    figure.suptitle(textwrap.fill(table.layout.title or "PSNR gain over bicubic", 90))
    if debug:  # along the bottom, in red
        figure.text(0.5, 0.01, debug_note(debug), color="red", weight="bold", ha="center")
    figure.tight_layout(rect=(0, 0.05 if debug else 0, 1, 1))
    return figure


def plot_psnr_gain(
    table: Table, results: Results, path: str | Path, *, debug: str | None = None
) -> None:
    """Write the plot to ``path`` (PNG) and beside it as PDF (same name, ``.pdf``)."""
    import matplotlib.pyplot as plt

    figure = draw_psnr_gain(table, results, debug=debug)
    path = Path(path)
    figure.savefig(path, dpi=120)
    figure.savefig(path.with_suffix(".pdf"))
    plt.close(figure)
