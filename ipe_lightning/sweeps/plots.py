"""``psnr_vs_scale.png``: PSNR gain over bicubic against scale, one line per variant."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

from ipe_lightning.results import FINISHED, JobResult
from ipe_lightning.sweeps.table import Table


def gain_curves(
    table: Table, results: Mapping[str, JobResult]
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """``{set: {row label: [(scale, psnr − bicubic psnr), ...]}}`` for the finished variants, at
    the table's uniform scales (per-axis scales have no place on one axis)."""
    curves: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for row in table.rows:
        result = results.get(row.spec.variant or "")
        if row.spec.kind != "job" or result is None or result.status != FINISHED:
            continue
        for _, scale, loader in table.columns:
            values = result.metrics.get(loader, {})
            if isinstance(scale, list | tuple) or not {"psnr", "bicubic_psnr"} <= set(values):
                continue
            set_name = loader.rsplit("/", 1)[0]
            label = f"{row.spec.group}: {row.spec.label}" if row.spec.group else row.spec.label
            points = curves.setdefault(set_name, {}).setdefault(label, [])
            points.append((float(scale), values["psnr"] - values["bicubic_psnr"]))
    return {
        name: {label: sorted(set(points)) for label, points in by_label.items()}
        for name, by_label in curves.items()
    }


def plot_psnr_gain(table: Table, results: Mapping[str, JobResult], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on clusters
    import matplotlib.pyplot as plt

    curves = gain_curves(table, results)
    panels = max(len(curves), 1)
    figure, axes = plt.subplots(1, panels, figsize=(max(5.5 * panels, 8), 4.5), squeeze=False)
    for axis, (set_name, by_label) in zip(axes[0], curves.items(), strict=False):
        for label, points in by_label.items():
            scales, gains = zip(*points, strict=True)
            axis.plot(scales, gains, marker="o", label=label)
        axis.set_xscale("log")
        ticks = sorted({s for points in by_label.values() for s, _ in points})
        axis.set_xticks(ticks, [f"×{s:g}" for s in ticks])
        axis.minorticks_off()
        axis.axhline(0.0, color="grey", linewidth=0.8)
        axis.set_title(set_name)
        axis.set_xlabel("scale")
        axis.set_ylabel("PSNR − bicubic PSNR (dB)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    if not curves:
        axes[0][0].text(0.5, 0.5, "no finished jobs yet", ha="center", va="center")
        axes[0][0].set_axis_off()
    figure.suptitle(textwrap.fill(table.layout.title or "PSNR gain over bicubic", 90))
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
