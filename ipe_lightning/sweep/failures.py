"""Failed jobs, told: from Hydra's ``JobReturn``s into the job directories and ``sweep.json``.

A job records its own failure in ``metrics.json`` (``recorded_failure``, ``runtime/job.py``).
One that fails before it gets that far (its config does not resolve in the job, the launcher
cannot start it) leaves only a ``JobReturn`` holding the exception: :func:`record_launch_failures`
writes the record the job could not, so the report, the summary and a resumed sweep see it like
any other failure. :func:`note_failures` lists every failed job's one-line error in ``sweep.json``.

A ``JobReturn`` names its job by the Hydra config the job ran with (``hydra.sweep.subdir``, which
the sweep sets to the job's name): its ``overrides`` are the job's task overrides only, never
``hydra.*``. A failure the launcher returned without that config is told on the console and
written nowhere; so is one whose directory another live process holds (its record is that
process's to write).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ipe_lightning.errors import describe, one_line, traceback_tail
from ipe_lightning.results import read_record, write_record
from ipe_lightning.runtime.lock import DirectoryInUse, DirectoryLock
from ipe_lightning.sweep_files import read_manifest, results_from_dir, write_manifest


def failed_returns(returns: Iterable[Any]) -> dict[str, BaseException]:
    """``job name → exception`` of each ``JobReturn`` whose job raised. The name is the job's
    ``hydra.sweep.subdir`` (its directory in the sweep); a return without Hydra config gets
    ``<job N>`` (N: its place in ``returns``), which is no directory."""
    from hydra.core.utils import JobStatus

    failed = {}
    for index, job_return in enumerate(returns):
        if job_return.status != JobStatus.FAILED:
            continue
        try:
            _ = job_return.return_value  # raises the job's exception
        except Exception as error:
            failed[job_subdir(job_return) or unnamed(index)] = error
    return failed


def job_subdir(job_return: Any) -> str | None:
    """The job's directory under the sweep directory, from the Hydra config it ran with."""
    hydra_cfg = getattr(job_return, "hydra_cfg", None)
    if hydra_cfg is None:
        return None
    try:
        subdir = OmegaConf.select(hydra_cfg, "hydra.sweep.subdir")
    except Exception:  # an interpolation that resolves only inside the job
        return None
    return str(subdir) if subdir not in (None, "") else None


def unnamed(index: int) -> str:
    return f"<job {index}>"


def record_launch_failures(
    sweep_dir: str | Path,
    failures: Mapping[str, BaseException],
    overrides: Mapping[str, list[str]],
) -> None:
    """A failed record for each failed job of ``overrides`` (name → the job's overrides) whose
    directory has no record of this failure and is not held by another live process."""
    for name, error in failures.items():
        if name.split("/")[0] not in overrides:
            print(
                f"[sweep] {name} failed (no directory to record it in): {one_line(error)}",
                file=sys.stderr,
            )
            continue
        job_dir = Path(sweep_dir) / name
        try:
            with DirectoryLock(job_dir, "run", what=f"run directory {job_dir}").held():
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
        except DirectoryInUse as busy:
            print(f"[sweep] {name}: {one_line(error)}; not recorded there: {busy}", file=sys.stderr)


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
