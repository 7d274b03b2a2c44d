"""The run record every job writes, ``metrics.json``: one schema, its writer and its reader.

A record is a JSON object (``ipe_lightning.tasks`` fills it) with at least

``version``   :data:`RECORD_VERSION`; a record without one is the pre-versioned form (version 0),
              which has the same fields
``status``    ``finished``, ``failed`` or ``preempted``
``metrics``   ``{"<set>/x<scale>": {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}}``
``error``     why a failed job failed (``Type: message``)
``overrides`` the job's Hydra overrides (what a resumed sweep compares)

Rank 0 writes it atomically, so a reader sees the previous record or the new one, never half.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD_FILE = "metrics.json"
RECORD_VERSION = 1
FINISHED = "finished"

_TEST_KEY = re.compile(r"^test/(?P<loader>.+)/(?P<metric>psnr|ssim|bicubic_psnr|bicubic_ssim)$")


class RecordVersionError(ValueError):
    """A record of a schema version this code does not know (written by newer code)."""


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it: readers never see half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")
        temporary = handle.name
    os.replace(temporary, path)


def write_record(run_dir: str | os.PathLike, record: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``record`` as ``<run_dir>/metrics.json``, stamped with :data:`RECORD_VERSION`;
    return what was written."""
    stamped = {"version": RECORD_VERSION, **{k: v for k, v in record.items() if k != "version"}}
    write_json_atomic(Path(run_dir) / RECORD_FILE, stamped)
    return stamped


def upgrade_record(data: Mapping[str, Any]) -> dict[str, Any]:
    """A record as read from JSON → the current form. Raises :class:`RecordVersionError` for a
    version newer than :data:`RECORD_VERSION` (or not a version at all)."""
    version = data.get("version", 0)  # no version: written before the schema had one
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise RecordVersionError(f"record version must be a whole number, got {version!r}")
    if version > RECORD_VERSION:
        raise RecordVersionError(
            f"record version {version} is newer than this code reads ({RECORD_VERSION})"
        )
    return {**data, "version": RECORD_VERSION}  # version 0 has the fields of version 1


def read_record(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """``<run_dir>/metrics.json`` in the current form; ``None`` when there is none or it is not
    JSON. Raises :class:`RecordVersionError` for a record of an unknown version."""
    try:
        data = json.loads((Path(run_dir) / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return upgrade_record(data)


@dataclass(frozen=True)
class JobResult:
    """What is known about one job: its status and, when it finished, its metrics.

    ``status``: ``finished``, ``failed``, ``preempted``, ``interrupted`` (a checkpoint but no
    record: killed), ``running``, ``started`` (a directory, nothing more) or ``missing`` (never
    started / no trace). ``note``: why (the error message) or where (its directory).
    """

    status: str
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    note: str = ""

    @classmethod
    def from_record(cls, record: Mapping[str, Any], note: str = "") -> JobResult:
        """From a record (:func:`read_record`); a finished record without metrics is failed."""
        status = str(record.get("status", "failed"))
        if status == FINISHED and not record.get("metrics"):
            status, note = "failed", note or "finished without test metrics"
        return cls(
            status=status, metrics=record.get("metrics") or {}, note=record.get("error") or note
        )


def git_commit(directory: str | os.PathLike | None = None) -> str | None:
    """The commit of the code that ran (``+dirty`` when the tree has changes), if known."""
    directory = directory or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def metrics_by_loader(
    logged: list[dict[str, float]] | dict[str, float],
) -> dict[str, dict[str, float]]:
    """``test/<set>/x<scale>/<metric>`` values → ``{"<set>/x<scale>": {metric: value}}``."""
    flat: dict[str, float] = {}
    for entry in logged if isinstance(logged, list) else [logged]:
        flat.update(entry)
    table: dict[str, dict[str, float]] = {}
    for key, value in flat.items():
        match = _TEST_KEY.match(key)
        if match:
            table.setdefault(match["loader"], {})[match["metric"]] = float(value)
    return table
