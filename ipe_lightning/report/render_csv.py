"""A table as CSV: :func:`render_csv` the wide table (a line per row, as ``table.md``),
:func:`render_long_csv` the tidy one (a line per job × set × scale × seed, for pandas or R).
Empty fields hold no value; ``debug`` names the ``debug=`` choice of a debug run.
"""

from __future__ import annotations

import csv
import io

from ipe_lightning.report.table import Row, Table
from ipe_lightning.results import FINISHED
from ipe_lightning.scales import scale_tag


def render_csv(table: Table) -> str:
    """The wide table, one line per row; per (set, scale) and metric: ours (the mean over seeds),
    the paper's value and the difference, then the std over seeds, n, the ΔPSNR against the
    reference with its 95 % interval (no interval where the set has too few images for one,
    as ``table.md`` says), and ``warning``: files skipped from the set, per-image results that
    disagree with the record (``table.md``'s marks).

    Empty fields: no value. ``status`` says why a job row has none (failed, missing, ...);
    ``debug`` is the ``debug=`` choice of a debug run (its numbers mean nothing).
    """
    metrics = table.layout.metrics
    header = ["group", "label", "kind", "variant", "status", "note", "debug", "reference"]
    for _, _, loader in table.columns:
        for m in metrics:
            header += [f"{loader}/{m}", f"{loader}/{m}/paper", f"{loader}/{m}/diff"]
        header += [f"{loader}/{m}/std" for m in metrics]
        header += [f"{loader}/n", f"{loader}/dpsnr", f"{loader}/dpsnr_low", f"{loader}/dpsnr_high"]
        header += [f"{loader}/warning"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        line = [row.spec.group, row.spec.label, row.spec.kind, row.spec.variant or "", row.status]
        line += [row.note, table.debug or "", "yes" if row.is_reference else ""]
        for cell, (_, _, loader) in zip(row.cells, table.columns, strict=True):
            for m in metrics:
                diff = cell.diff(m)
                line += [
                    _csv_number(cell.ours.get(m)),
                    _csv_number(cell.paper.get(m)),
                    _csv_number(diff),
                ]
            line += [_csv_number(cell.std.get(m)) for m in metrics]
            delta = cell.delta
            line += [str(cell.n) if cell.n else "", _csv_number(delta.mean) if delta else ""]
            meaningful = delta is not None and delta.meaningful  # else the mean claims no interval
            line += [_csv_number(delta.low), _csv_number(delta.high)] if meaningful else ["", ""]
            line += [cell_warning(row, loader)]
        writer.writerow(line)
    return out.getvalue()


LONG_FIELDS = (
    "group",
    "label",
    "variant",
    "job",
    "seed",
    "status",
    "set",
    "scale",
    "psnr",
    "ssim",
    "bicubic_psnr",
    "bicubic_ssim",
    "paper_psnr",
    "paper_ssim",
    "debug",
)


def render_long_csv(table: Table) -> str:
    """The tidy table: one line per job × set × scale × seed (a job that did not finish: one
    line per column with its status and no numbers); the paper's value beside ours."""
    out = io.StringIO()
    writer = csv.DictWriter(out, LONG_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        for job in row.jobs:
            finished = job.result.status == FINISHED
            for (group, scale, loader), cell in zip(table.columns, row.cells, strict=True):
                values = job.result.metrics.get(loader, {}) if finished else {}
                line = {
                    "group": row.spec.group,
                    "label": row.spec.label,
                    "variant": row.spec.variant or "",
                    "job": job.name,
                    "seed": "" if job.seed is None else job.seed,
                    "status": job.result.status,
                    "set": group.set,
                    "scale": scale_tag(scale)[1:],
                    "debug": table.debug or "",
                }
                for key in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim"):
                    line[key] = _csv_number(values.get(key))
                for key in ("psnr", "ssim"):
                    line[f"paper_{key}"] = _csv_number(cell.paper.get(key))
                writer.writerow(line)
    return out.getvalue()


def cell_warning(row: Row, loader: str) -> str:
    """Why a cell is marked in ``table.md`` (its jobs' skipped files, per-image disagreements)."""
    warnings = []
    for job in row.jobs:
        size = job.result.set_size(loader) if job.result.status == FINISHED else None
        if size:
            warnings.append(f"{job.name}: {size[0]} of {size[1]} images (skipped as unreadable)")
        why = job.result.per_image_problems.get(loader) if job.result.status == FINISHED else None
        if why:
            warnings.append(f"{job.name}: per_image.csv disagrees with metrics.json ({why})")
    return "; ".join(warnings)


def _csv_number(value: float | None) -> str:
    return "" if value is None else str(round(float(value), 6))
