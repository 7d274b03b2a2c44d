"""Failed jobs, told: from Hydra's ``JobReturn``s into the job directories and ``sweep.json``.

A job records its own failure in ``metrics.json`` (``tasks.recorded_failure``). One that fails
before it gets that far (its config does not resolve in the job, the launcher cannot start it)
leaves only a ``JobReturn`` holding the exception: :func:`record_launch_failures` writes the
record the job could not, so the report, the summary and a resumed sweep see it like any other
failure. :func:`note_failures` lists every failed job's one-line error in ``sweep.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ipe_lightning.errors import describe, traceback_tail
from ipe_lightning.results import read_record, write_record
from ipe_lightning.sweeps.report import read_manifest, results_from_dir, write_manifest

SUBDIR = "hydra.sweep.subdir="


def failed_returns(returns: Iterable[Any]) -> dict[str, BaseException]:
    """``job name → exception`` of each ``JobReturn`` whose job raised (the name is its
    ``hydra.sweep.subdir``)."""
    from hydra.core.utils import JobStatus

    failed = {}
    for job_return in returns:
        if job_return.status != JobStatus.FAILED:
            continue
        overrides = list(job_return.overrides or [])
        name = next((o[len(SUBDIR) :] for o in overrides if o.startswith(SUBDIR)), None)
        try:
            _ = job_return.return_value  # raises the job's exception
        except Exception as error:
            failed[name or "?"] = error
    return failed


def record_launch_failures(
    sweep_dir: str | Path,
    failures: Mapping[str, BaseException],
    overrides: Mapping[str, list[str]],
) -> None:
    """A failed record for each failed job whose directory has no record of this failure."""
    for name, error in failures.items():
        job_dir = Path(sweep_dir) / name
        record = read_record(job_dir)
        if record is not None and record.get("status") == "failed":
            continue  # the job wrote its own
        write_record(
            job_dir,
            {
                "status": "failed",
                "overrides": list(overrides.get(name, [])),
                "error": describe(error),
                "traceback": traceback_tail(error),
                "metrics": {},
            },
        )


def note_failures(sweep_dir: str | Path) -> dict[str, str]:
    """Write each failed job's one-line error into ``sweep.json`` (``failed``); return them."""
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        return {}
    results = results_from_dir(sweep_dir, manifest.job_names)
    failed = {name: r.note for name, r in results.items() if r.status == "failed"}
    manifest.failed = failed
    write_manifest(sweep_dir, manifest)
    return failed
