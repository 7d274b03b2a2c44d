"""A sweep's results from W&B's API instead of local files (``sweep.py report --wandb``).

Every job of a sweep logs to the W&B group ``<sweep>_<timestamp>`` with the job's name as run
name, and its test metrics as ``test/<set>/x<scale>/{psnr,ssim,bicubic_psnr,bicubic_ssim}`` in the
run summary. A job that was requeued or resumed has several runs of the same name: the latest
one with test metrics wins. ``mode=test`` runs of a job's checkpoint join its group as
``job_type=eval`` (possibly on other test sets): they are not the job's result and are left out.

Only the fake API of ``tests/sweeps/test_wandb_source.py`` has exercised this here: no W&B server
is reachable from the machine the suite is developed on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ipe_lightning.results import FINISHED, JobResult, metrics_by_loader
from ipe_lightning.runtime.loggers import EVAL_JOB_TYPE

# W&B run states (wandb.apis.public.Run.state) → job statuses of the report.
STATES = {"finished": FINISHED, "running": "running", "pending": "running", "preempting": "running"}


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


def results_from_runs(runs: Iterable[Any]) -> dict[str, JobResult]:
    """The result per run name; among runs of the same name the latest finished one, else the
    latest (``created_at`` order). Evaluation runs (``job_type=eval``) are left out."""
    by_name: dict[str, list[Any]] = {}
    for run in runs:
        if getattr(run, "job_type", None) == EVAL_JOB_TYPE:
            continue
        by_name.setdefault(str(run.name), []).append(run)
    results = {}
    for name, candidates in by_name.items():
        ordered = sorted(candidates, key=lambda r: str(getattr(r, "created_at", "")))
        judged = [run_result(run) for run in ordered]
        finished = [result for result in judged if result.status == FINISHED]
        results[name] = finished[-1] if finished else judged[-1]
    return results


def results_from_wandb(api: Any, path: str, group: str) -> dict[str, JobResult]:
    """``api``: a ``wandb.Api()`` (or an object with the same ``runs(path, filters=...)``)."""
    return results_from_runs(api.runs(path, filters={"group": group}))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
