"""A sweep directory's files as every tool reads them: ``sweep.json``, the jobs' names and what
each job directory holds.

``<sweep_dir>/sweep.json`` (the manifest) is written by the sweep tool when it launches: the
sweep's name, its table layout (:mod:`ipe_lightning.table_layout`), its W&B group, every job's
name and overrides, and the one-line error of each failed job. The report and the figure read it
to know which jobs to expect, so jobs that never started are listed as missing.

``<sweep_dir>/<job>/`` holds a job's ``metrics.json`` and ``per_image.csv``
(:mod:`ipe_lightning.results`), its ``checkpoints/last.ckpt`` and Hydra's ``.hydra/``.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ipe_lightning.results import (
    JobResult,
    RecordVersionError,
    UnreadableRecordError,
    load_record,
    read_per_image,
    read_record,
    write_json_atomic,
)
from ipe_lightning.table_layout import TableLayout, default_layout, layout_from_dict

MANIFEST = "sweep.json"
REPO_CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # conf/sweep/: the sweep files
SINGLE_JOB = "job"  # the name of a grid's only job when nothing else is swept
_SEEDED = re.compile(r"^(?:(?P<variant>.+)_)?seed-(?P<seed>-?\d+)$")


class SweepDefinitionError(ValueError):
    """A sweep file that cannot be found or read; the message says what was expected."""


def available_sweeps(conf_dir: Path = REPO_CONF_DIR) -> list[str]:
    return sorted(path.stem for path in (Path(conf_dir) / "sweep").glob("*.yaml"))


def find_sweep_file(name_or_path: str, conf_dir: Path = REPO_CONF_DIR) -> Path:
    """A sweep by name (``conf/sweep/<name>.yaml``) or by the path of a user's own file."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate.resolve()
    named = Path(conf_dir) / "sweep" / f"{name_or_path}.yaml"
    if named.is_file():
        return named
    raise SweepDefinitionError(
        f"no sweep named {name_or_path!r}: looked for {named} and for a file {candidate}.\n"
        f"Sweeps: {', '.join(available_sweeps(conf_dir)) or '(none)'}; or pass the path of your "
        "own sweep file (see conf/sweep/table4.yaml for the format)."
    )


def read_sweep_file(path: Path) -> dict[str, Any]:
    """A sweep file as plain data (PyYAML)."""
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as error:
        raise SweepDefinitionError(f"{path} is not valid YAML: {error}") from error


def parse_seeds(value: Any, where: str = "seeds") -> tuple[int, ...]:
    """``[0, 1, 2]`` (YAML) or ``"[0,1,2]"`` / ``"0,1,2"`` (text) → ``(0, 1, 2)``."""
    if value in (None, "", []):
        return ()
    if isinstance(value, str):
        value = [v for v in value.strip().strip("[]").split(",") if v.strip()]
    items = value if isinstance(value, list | tuple) else [value]
    try:
        seeds = tuple(int(str(v).strip()) for v in items)
    except ValueError as error:
        message = f"{where}: seeds must be whole numbers, got {value!r}"
        raise SweepDefinitionError(message) from error
    if len(set(seeds)) < len(seeds):
        raise SweepDefinitionError(f"{where}: seeds repeat: {list(seeds)}")
    return seeds


# -- job names ------------------------------------------------------------------------------


def seeded_name(job: str, seed: int) -> str:
    """``table4_liif`` seed 2 → ``table4_liif_seed-2``; the only job of a grid of seeds alone
    (:data:`SINGLE_JOB`) → ``seed-2``, the name such a grid always gave its jobs."""
    return f"seed-{seed}" if job == SINGLE_JOB else f"{job}_seed-{seed}"


def split_seed(job: str) -> tuple[str, int | None]:
    """The inverse of :func:`seeded_name`: ``table4_liif_seed-2`` → ``("table4_liif", 2)``,
    ``seed-2`` → ``("job", 2)``; a job without seeds → ``(job, None)``."""
    match = _SEEDED.match(job)
    if not match:
        return job, None
    return match["variant"] or SINGLE_JOB, int(match["seed"])


def variants(names: Sequence[str]) -> list[str]:
    """Job names with their seeds folded: one row per variant, in grid order."""
    return list(dict.fromkeys(split_seed(name)[0] for name in names))


# -- sweep.json -----------------------------------------------------------------------------


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
    failed: dict[str, str] = field(default_factory=dict)  # job → its one-line error

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
        return default_layout(variants(self.job_names), results, title=self.title)


def debug_choice(overrides: Iterable[str]) -> str | None:
    """``debug=tiny`` among ``overrides`` → ``"tiny"``; ``None`` without one (or ``debug=null``)."""
    chosen = None
    for override in overrides:
        key, _, value = str(override).partition("=")
        if key.lstrip("+~") == "debug":
            chosen = value if value not in ("", "null", "none") else None
    return chosen


def read_manifest(sweep_dir: str | Path) -> Manifest | None:
    try:
        data = json.loads((Path(sweep_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return Manifest(**data)


def write_manifest(sweep_dir: str | Path, manifest: Manifest) -> None:
    write_json_atomic(Path(sweep_dir) / MANIFEST, asdict(manifest))


# -- job directories ------------------------------------------------------------------------

# What a job directory can hold (``ipe_lightning.sweep.resume`` turns each into an action).
JOB_STATES = ("finished", "failed", "preempted", "interrupted", "started", "new", "unreadable")


@dataclass(frozen=True)
class JobState:
    status: str  # one of JOB_STATES
    overrides: tuple[str, ...] | None  # as the job recorded them, if it got that far
    record: dict[str, Any] | None = None
    note: str = ""
    checkpoint: bool = False  # checkpoints/last.ckpt exists: a relaunch resumes from it


def read_job_state(job_dir: str | Path) -> JobState:
    job_dir = Path(job_dir)
    checkpoint = (job_dir / "checkpoints" / "last.ckpt").is_file()
    try:
        record = read_record(job_dir)
    except RecordVersionError as error:
        return JobState("unreadable", None, None, f"metrics.json: {error}", checkpoint)
    if record is not None:
        status = str(record.get("status", "failed"))
        status = status if status in JOB_STATES else "failed"
        overrides = tuple(record.get("overrides") or ())
        return JobState(status, overrides, record, record.get("error", ""), checkpoint)
    recorded = None
    with contextlib.suppress(OSError, yaml.YAMLError):
        recorded = tuple(yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or ())
    if checkpoint:
        note = "stopped (or still running) before its results"
        return JobState("interrupted", recorded, None, note, checkpoint)
    if job_dir.is_dir():
        return JobState("started", recorded, None, "started, no checkpoint yet")
    return JobState("new", None)


def job_result(job_dir: str | Path) -> JobResult:
    """What the report shows for a job directory (``missing`` when there is none)."""
    try:
        record = load_record(job_dir)
    except RecordVersionError as error:
        return JobResult("unreadable", note=f"{Path(job_dir) / 'metrics.json'}: {error}")
    except UnreadableRecordError as error:  # e.g. cut short: it is not a killed job's silence
        return JobResult("unreadable", note=str(error))
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
