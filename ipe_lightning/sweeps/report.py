"""The sweep's manifest (``sweep.json``) and its report: tables, the plot.

Report files: ``table.md``/``.tex`` (ours beside the paper's numbers, with the ΔPSNR intervals
against the reference row), ``table_clean.md``/``.tex`` (only our numbers, ± std, significance
marks: for a paper), ``table.csv`` (wide: a line per row), ``table_long.csv`` (tidy: a line per
job × set × scale × seed), ``psnr_vs_scale.{png,pdf}``. A sweep run with ``debug=<choice>`` says
so in each of them; without per-image results the tables say there are no intervals.

The manifest is written by ``sweep.py`` when it launches: the sweep's name, its table layout,
its W&B group and every job's name and overrides. ``sweep.py report <sweep_dir>`` reads it to
know which jobs to expect, so jobs that never started are listed as missing.

This is where a sweep's results are read (the job directories here, W&B runs in
``wandb_source``); the table and its renderers only see ``JobResult`` values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ipe_lightning.atomic import write_text_atomic
from ipe_lightning.results import (
    FINISHED,
    JobResult,
    RecordVersionError,
    read_per_image,
    read_record,
    write_json_atomic,
)
from ipe_lightning.sweeps.layout import TableLayout, default_layout, layout_from_dict
from ipe_lightning.sweeps.paper_numbers import load_paper_numbers
from ipe_lightning.sweeps.render import render_latex, render_markdown
from ipe_lightning.sweeps.render_csv import render_csv, render_long_csv
from ipe_lightning.sweeps.resume import read_job_state
from ipe_lightning.sweeps.table import PerImage, Table, build_table, split_seed

MANIFEST = "sweep.json"
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


@dataclass
class Manifest:
    sweep: str
    definition: str
    title: str
    created: str
    group: str
    jobs: list[dict[str, Any]]  # {"name": ..., "overrides": [...]}
    layout: dict[str, Any] | None = None
    command: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # job → its one-line error (failures.py)

    @property
    def job_names(self) -> list[str]:
        return [job["name"] for job in self.jobs]

    @property
    def debug(self) -> str | None:
        """The ``debug=<choice>`` the jobs ran with (the last one of a job's overrides)."""
        return debug_choice(o for job in self.jobs for o in job.get("overrides") or [])

    def table_layout(self, results: Mapping[str, JobResult]) -> TableLayout:
        if self.layout:
            return layout_from_dict(self.layout, title=self.title)
        return default_layout(_variants(self.job_names), results, title=self.title)


def debug_choice(overrides: Iterable[str]) -> str | None:
    """``debug=tiny`` among ``overrides`` → ``"tiny"``; ``None`` without one (or ``debug=null``)."""
    chosen = None
    for override in overrides:
        key, _, value = str(override).partition("=")
        if key.lstrip("+~") == "debug":
            chosen = value if value not in ("", "null", "none") else None
    return chosen


def _variants(names: Sequence[str]) -> list[str]:
    """Job names with their seeds folded: one row per variant, in grid order."""
    return list(dict.fromkeys(split_seed(name)[0] for name in names))


def read_manifest(sweep_dir: str | Path) -> Manifest | None:
    try:
        data = json.loads((Path(sweep_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return Manifest(**data)


def write_manifest(sweep_dir: str | Path, manifest: Manifest) -> None:
    write_json_atomic(Path(sweep_dir) / MANIFEST, asdict(manifest))


def job_result(job_dir: str | Path) -> JobResult:
    """What the report shows for a job directory (``missing`` when there is none)."""
    try:
        record = read_record(job_dir)
    except RecordVersionError as error:
        return JobResult("unreadable", note=f"{Path(job_dir) / 'metrics.json'}: {error}")
    if record is not None:
        return JobResult.from_record(record, note=str(job_dir))
    state = read_job_state(job_dir)
    status = {"new": "missing"}.get(state.status, state.status)
    return JobResult(status=status, note=state.note or f"no directory {job_dir}")


def results_from_dir(sweep_dir: str | Path, names: Sequence[str]) -> dict[str, JobResult]:
    """Each expected job's result, from ``<sweep_dir>/<name>/metrics.json`` (or its absence)."""
    return {name: job_result(Path(sweep_dir) / name) for name in names}


def per_image_from_dir(sweep_dir: str | Path, names: Sequence[str]) -> dict[str, list]:
    """Each job's ``per_image.csv`` rows (jobs without one are left out)."""
    found = {name: read_per_image(Path(sweep_dir) / name) for name in names}
    return {name: rows for name, rows in found.items() if rows}


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
        _write_text_atomic(out_dir / name, text)
    from ipe_lightning.sweeps.plots import plot_psnr_gain

    seeds = {row.spec.variant: [job.result for job in row.jobs] for row in table.rows if row.jobs}
    plot_psnr_gain(table, seeds, out_dir / "psnr_vs_scale.png", debug=table.debug)
    return table


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


def _write_text_atomic(path: Path, text: str) -> None:
    write_text_atomic(path, text)  # fsynced, renamed, with the umask's permissions
