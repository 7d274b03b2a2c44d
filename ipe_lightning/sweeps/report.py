"""The sweep's manifest (``sweep.json``) and its report: ``table.{md,csv,tex}``, the plot.

The manifest is written by ``sweep.py`` when it launches: the sweep's name, its table layout,
its W&B group and every job's name and overrides. ``sweep.py report <sweep_dir>`` reads it to
know which jobs to expect, so jobs that never started are listed as missing.

This is where a sweep's results are read (the job directories here, W&B runs in
``wandb_source``); the table and its renderers only see ``JobResult`` values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ipe_lightning.results import JobResult, RecordVersionError, read_record, write_json_atomic
from ipe_lightning.sweeps.layout import TableLayout, default_layout, layout_from_dict
from ipe_lightning.sweeps.paper_numbers import load_paper_numbers
from ipe_lightning.sweeps.render import render_csv, render_latex, render_markdown
from ipe_lightning.sweeps.resume import read_job_state
from ipe_lightning.sweeps.table import Table, build_table

MANIFEST = "sweep.json"
REPORT_FILES = ("table.md", "table.csv", "table.tex", "psnr_vs_scale.png")


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

    @property
    def job_names(self) -> list[str]:
        return [job["name"] for job in self.jobs]

    def table_layout(self, results: Mapping[str, JobResult]) -> TableLayout:
        if self.layout:
            return layout_from_dict(self.layout, title=self.title)
        return default_layout(self.job_names, results, title=self.title)


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


def write_report(
    out_dir: str | Path,
    layout: TableLayout,
    results: Mapping[str, JobResult],
    paper_rows: Sequence[Mapping[str, str]] | None = None,
) -> Table:
    """Write the report files into ``out_dir``; return the table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = build_table(layout, results, load_paper_numbers() if paper_rows is None else paper_rows)
    for name, text in (
        ("table.md", render_markdown(table)),
        ("table.csv", render_csv(table)),
        ("table.tex", render_latex(table)),
    ):
        _write_text_atomic(out_dir / name, text)
    from ipe_lightning.sweeps.plots import plot_psnr_gain

    plot_psnr_gain(table, results, out_dir / "psnr_vs_scale.png")
    return table


def report_sweep_dir(sweep_dir: str | Path) -> Table:
    """The report of a sweep directory, from whatever its jobs have written so far."""
    sweep_dir = Path(sweep_dir)
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        raise FileNotFoundError(
            f"{sweep_dir / MANIFEST} not found: is {sweep_dir} a directory made by sweep.py?"
        )
    results = results_from_dir(sweep_dir, manifest.job_names)
    return write_report(sweep_dir, manifest.table_layout(results), results)


def summary(table: Table) -> str:
    """One line per incomplete job, or that all finished."""
    jobs = [row for row in table.rows if row.spec.kind == "job"]
    incomplete = table.incomplete
    if not incomplete:
        return f"all {len(jobs)} jobs finished"
    lines = [f"{len(jobs) - len(incomplete)} of {len(jobs)} jobs finished; incomplete:"]
    lines += [f"  {row.spec.variant}: {row.status} {row.note}".rstrip() for row in incomplete]
    return "\n".join(lines)


def _write_text_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)
