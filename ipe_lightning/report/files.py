"""A sweep's report files, from its directory or from results given: tables and the plot.

Report files: ``table.md``/``.tex`` (ours beside the paper's numbers, with the ΔPSNR intervals
against the reference row), ``table_clean.md``/``.tex`` (only our numbers, ± std, significance
marks: for a paper), ``table.csv`` (wide: a line per row), ``table_long.csv`` (tidy: a line per
job × set × scale × seed), ``psnr_vs_scale.{png,pdf}``. A sweep run with ``debug=<choice>`` says
so in each of them; without per-image results the tables say there are no intervals.

This is where a sweep directory's results are read (``sweep.json`` and the job directories,
through :mod:`ipe_lightning.sweep_files`; W&B runs in ``wandb_source``); the table and its
renderers only see ``JobResult`` values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ipe_lightning.atomic import write_text_atomic
from ipe_lightning.report.paper_numbers import load_paper_numbers
from ipe_lightning.report.render import render_latex, render_markdown
from ipe_lightning.report.render_csv import render_csv, render_long_csv
from ipe_lightning.report.table import PerImage, Table, build_table
from ipe_lightning.results import FINISHED, JobResult, per_image_problems
from ipe_lightning.sweep_files import MANIFEST, per_image_from_dir, read_manifest, results_from_dir
from ipe_lightning.table_layout import TableLayout

REPORT_FILES = (
    "table.md",
    "table.tex",
    "table_clean.md",
    "table_clean.tex",
    "table.csv",
    "table_long.csv",
    "psnr_vs_scale.png",
    "psnr_vs_scale.pdf",
)


def write_report(
    out_dir: str | Path,
    layout: TableLayout,
    results: Mapping[str, JobResult],
    paper_rows: Sequence[Mapping[str, str]] | None = None,
    *,
    per_image: PerImage | None = None,
    reference: str | None = None,
    debug: str | None = None,
) -> Table:
    """Write the report files (module doc) into ``out_dir``; return the table.

    ``reference`` (another row than the layout's) is refused without per-image results: there is
    nothing to compare with, and a report that ignored it would look like it had.
    """
    if reference is not None and not any((per_image or {}).values()):
        raise ValueError(
            f"--reference {reference}: no per-image results (a job's per_image.csv, a W&B run's "
            "test/per_image table) to compare with: no confidence intervals"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results, per_image = checked_per_image(results, per_image or {})
    table = build_table(
        layout,
        results,
        load_paper_numbers() if paper_rows is None else paper_rows,
        per_image=per_image,
        reference=reference,
        debug=debug,
    )
    for name, text in (
        ("table.md", render_markdown(table)),
        ("table.tex", render_latex(table)),
        ("table_clean.md", render_markdown(table, "clean")),
        ("table_clean.tex", render_latex(table, "clean")),
        ("table.csv", render_csv(table)),
        ("table_long.csv", render_long_csv(table)),
    ):
        write_text_atomic(out_dir / name, text)  # fsynced, renamed, the umask's permissions
    from ipe_lightning.report.plots import plot_psnr_gain

    seeds = {row.spec.variant: [job.result for job in row.jobs] for row in table.rows if row.jobs}
    plot_psnr_gain(table, seeds, out_dir / "psnr_vs_scale.png", debug=table.debug)
    return table


def checked_per_image(
    results: Mapping[str, JobResult], per_image: PerImage
) -> tuple[dict[str, JobResult], dict[str, list]]:
    """Each job's per-image rows checked against its record (:func:`per_image_problems`): where
    they disagree (a NaN, an image missing), the job's result names the loader and its rows there
    are left out, so no interval or bold rests on them and the table marks the cell."""
    checked, kept = dict(results), {}
    for name, rows in per_image.items():
        result = results.get(name)
        problems = per_image_problems(result, list(rows)) if result is not None else {}
        if problems:
            checked[name] = replace(result, per_image_problems=problems)
        kept[name] = [row for row in rows if f"{row['set']}/x{row['scale']}" not in problems]
    return checked, kept


def report_sweep_dir(
    sweep_dir: str | Path, out_dir: str | Path | None = None, reference: str | None = None
) -> Table:
    """The report of a sweep directory, from whatever its jobs have written so far, written
    into ``out_dir`` (default: the sweep directory); ``reference`` overrides the layout's."""
    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        raise FileNotFoundError(
            f"{sweep_dir / MANIFEST} not found: is {sweep_dir} a directory made by sweep.py?"
        )
    results = results_from_dir(sweep_dir, manifest.job_names)
    return write_report(
        sweep_dir if out_dir is None else out_dir,
        manifest.table_layout(results),
        results,
        per_image=per_image_from_dir(sweep_dir, manifest.job_names),
        reference=reference,
        debug=manifest.debug,
    )


def summary(table: Table) -> str:
    """One line per incomplete job (each seed of a row is a job), or that all finished."""
    jobs = [job for row in table.rows if row.spec.kind == "job" for job in row.jobs]
    incomplete = [job for job in jobs if job.result.status != FINISHED]
    if not incomplete:
        return f"all {len(jobs)} jobs finished"
    lines = [f"{len(jobs) - len(incomplete)} of {len(jobs)} jobs finished; incomplete:"]
    lines += [f"  {job.name}: {job.result.status} {job.result.note}".rstrip() for job in incomplete]
    return "\n".join(lines)
