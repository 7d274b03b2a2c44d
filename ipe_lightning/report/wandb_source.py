"""A sweep's results from W&B's API instead of local files (``sweep.py report --wandb``).

Every job of a sweep logs to the W&B group ``<sweep>_<timestamp>`` with the job's name as run
name, and its test metrics as ``test/<set>/x<scale>/{psnr,ssim,bicubic_psnr,bicubic_ssim}`` in the
run summary. A job that was requeued or resumed has several runs of the same name: the latest
one with test metrics wins. ``mode=test`` runs of a job's checkpoint join its group as
``job_type=eval`` (possibly on other test sets): they are not the job's result and are left out.

Beside the metrics, a run gives the report what the local files would:

- its per-image results: ``runtime/loggers.summarise_test`` logs ``per_image.csv`` as the
  ``wandb.Table`` ``test/per_image``; W&B keeps it as a JSON file of the run (``{"columns": ...,
  "data": ...}``) named in the summary (``{"_type": "table-file", "path": "media/table/..."}``:
  what an offline run of wandb 0.31 writes), which ``run.file(path).download(...)`` fetches;
- its ``debug=`` choice: the run's config is the resolved Hydra config (``tasks.build_trainer``
  logs ``{"config": ...}``), where the choice is only the example panels' ``debug``
  (``conf/callbacks/default.yaml``: ``${hydra:runtime.choices.debug}``).

Only the fake API of ``tests/report/test_wandb_source.py`` has exercised this here: no W&B server
is reachable from the machine the suite is developed on.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ipe_lightning.results import (
    EVAL_JOB_TYPE,
    FINISHED,
    PER_IMAGE_FIELDS,
    JobResult,
    metrics_by_loader,
)

# W&B run states (wandb.apis.public.Run.state) → job statuses of the report.
STATES = {"finished": FINISHED, "running": "running", "pending": "running", "preempting": "running"}
PER_IMAGE_KEY = "test/per_image"  # runtime/loggers.summarise_test
DEBUG_KEYS = ("config", "callbacks", "examples", "debug")  # where a run's config has debug=


@dataclass(frozen=True)
class GroupResults:
    """What a W&B group gives the report: a result per job, the per-image rows of the jobs whose
    run logged them, and the ``debug=`` choice the runs were made with (``None``: a real run)."""

    results: dict[str, JobResult]
    per_image: dict[str, list[dict[str, Any]]]
    debug: str | None


def run_result(run: Any) -> JobResult:
    """One W&B run as a job result. W&B says ``finished`` for any run that called ``finish()``
    (our jobs do, also when they fail), so a run without test metrics is reported as failed."""
    summary = getattr(run, "summary_metrics", None)
    if summary is None:
        summary = dict(getattr(run, "summary", {}) or {})
    metrics = metrics_by_loader({k: v for k, v in summary.items() if _is_number(v)})
    status = STATES.get(str(run.state), "failed")
    note = f"W&B run {getattr(run, 'id', '?')} ({run.state})"
    if status == FINISHED and not metrics:
        return JobResult("failed", {}, note + ": no test metrics")
    return JobResult(status, metrics if status == FINISHED else {}, note)


def chosen_runs(runs: Iterable[Any]) -> dict[str, tuple[Any, JobResult]]:
    """The run and its result per run name; among runs of the same name the latest finished one,
    else the latest (``created_at`` order). Evaluation runs (``job_type=eval``) are left out."""
    by_name: dict[str, list[Any]] = {}
    for run in runs:
        if getattr(run, "job_type", None) == EVAL_JOB_TYPE:
            continue
        by_name.setdefault(str(run.name), []).append(run)
    chosen = {}
    for name, candidates in by_name.items():
        ordered = sorted(candidates, key=lambda r: str(getattr(r, "created_at", "")))
        judged = [(run, run_result(run)) for run in ordered]
        finished = [entry for entry in judged if entry[1].status == FINISHED]
        chosen[name] = finished[-1] if finished else judged[-1]
    return chosen


def run_debug(run: Any) -> str | None:
    """The ``debug=`` choice of a run, from its config (module doc); ``None`` for a real run."""
    value: Any = getattr(run, "config", None) or {}
    for key in DEBUG_KEYS:
        value = value.get(key) if isinstance(value, Mapping) else None
    return None if value in (None, "", "null", "None") else str(value)


def per_image_of_run(run: Any, root: str) -> list[dict[str, Any]]:
    """The rows of the run's ``test/per_image`` table (as ``results.read_per_image`` gives them:
    scores as floats), downloaded under ``root``; ``[]`` when the run logged none."""
    summary = getattr(run, "summary_metrics", None)
    if summary is None:
        summary = dict(getattr(run, "summary", {}) or {})
    entry = summary.get(PER_IMAGE_KEY)
    if not isinstance(entry, Mapping) or entry.get("_type") != "table-file":
        return []
    with run.file(str(entry["path"])).download(root=root, replace=True) as handle:
        table = json.load(handle)
    rows = [dict(zip(table["columns"], values, strict=True)) for values in table["data"]]
    for row in rows:
        for key in PER_IMAGE_FIELDS[:3]:
            row[key] = str(row[key])
        for key in PER_IMAGE_FIELDS[3:]:
            value = row.get(key)
            row[key] = math.nan if value in (None, "") else float(value)
    return rows


def group_from_wandb(api: Any, path: str, group: str) -> GroupResults:
    """The results, the per-image rows and the debug choice of a W&B group (module doc); ``api``
    is a ``wandb.Api()`` (or an object with the same ``runs(path, filters=...)``). A
    per-image table that cannot be read is said on stderr and left out: its row has no
    interval, and the report lists the job among those without per-image results."""
    chosen = chosen_runs(api.runs(path, filters={"group": group}))
    per_image, debug = {}, set()
    with tempfile.TemporaryDirectory(prefix="wandb_per_image_") as root:
        for name, (run, result) in chosen.items():
            if result.status != FINISHED:
                continue
            debug.add(run_debug(run))
            try:
                rows = per_image_of_run(run, f"{root}/{getattr(run, 'id', name)}")
            except Exception as error:  # the API's own errors, a file W&B lost, a bad table
                print(
                    f"[sweep] {name}: its W&B per-image table was not read "
                    f"({type(error).__name__}: {error})",
                    file=sys.stderr,
                )
                rows = []
            if rows:
                per_image[name] = rows
    chosen_debug = ", ".join(sorted(d for d in debug if d)) or None
    results = {name: result for name, (_, result) in chosen.items()}
    return GroupResults(results, per_image, chosen_debug)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
