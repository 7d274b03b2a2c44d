"""The run record every job writes, ``metrics.json``: one schema, its writer and its reader.

A record is a JSON object (``ipe_lightning.tasks`` fills it) with at least

``version``   :data:`RECORD_VERSION`; a record without one is the pre-versioned form (version 0),
              which has the same fields
``status``    ``finished``, ``failed`` or ``preempted``
``metrics``   ``{"<set>/x<scale>": {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"}}``
``error``     why a failed job failed (``Type: message``)
``traceback`` a failed job's traceback, its last lines (:func:`ipe_lightning.errors.traceback_tail`)
``overrides`` the job's Hydra overrides (what a resumed sweep compares)
``checkpoints`` the training's ``best`` and ``last``; a ``mode=test`` job's ``evaluated`` one (a
              record without it names that one only in its ``ckpt_path=`` override)
``images``    ``{"<set>/x<scale>": n}``: how many images each test loader measured
``skipped``   only when ``data.skip_bad=true`` left files out of a test set:
              ``{"<set>": {"<file>": "<why>"}}``; the set held ``images + len(skipped)`` files
``grid_decode`` only for a grid decoder (SRNO): how its whole test images were decoded,
              ``{"chunk": n, "band": k}``: ``n`` queries held at a time (memory only) and bands
              of ``k`` HR rows decoded as grids of their own (``null``: the whole image as one
              grid), which changes the output (:func:`ipe_lightning.inference.decode_fields`)
``non_finite`` only when a number was not finite: JSON has no Infinity or NaN, so such a number
              is written as ``null`` and listed here as ``{"at": [keys], "value": "Infinity"}``
              (``-Infinity``, ``NaN``); :func:`read_record` puts it back. E.g. the bicubic PSNR
              at scale 1 is infinite: the bicubic image equals the original.

Rank 0 writes it atomically (:mod:`ipe_lightning.atomic`), so a reader sees the previous record or
the new one, never half, and with the permissions the umask gives any new file.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipe_lightning.atomic import atomic_open

RECORD_FILE = "metrics.json"
# Beside the record: one line per test image (tidy), whose means per loader are the record's.
PER_IMAGE_FILE = "per_image.csv"
PER_IMAGE_FIELDS = ("set", "scale", "image", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim")
RECORD_VERSION = 1
FINISHED = "finished"
NON_FINITE = "non_finite"
# W&B job types of mode=train and mode=test runs: the report leaves evaluation runs out
TRAIN_JOB_TYPE, EVAL_JOB_TYPE = "train", "eval"

_TEST_KEY = re.compile(r"^test/(?P<loader>.+)/(?P<metric>psnr|ssim|bicubic_psnr|bicubic_ssim)$")


class RecordVersionError(ValueError):
    """A record of a schema version this code does not know (written by newer code)."""


class UnreadableRecordError(ValueError):
    """A ``metrics.json`` that is there but is not a record: cut short, not JSON, not an
    object. Its message says why."""


def _finite(data: Any, at: tuple[Any, ...] = ()) -> tuple[Any, list[dict[str, Any]]]:
    """``data`` with every non-finite float as ``None``, and where each was (``{"at", "value"}``,
    the value as JavaScript spells it)."""
    if isinstance(data, float) and not math.isfinite(data):
        spelled = "NaN" if math.isnan(data) else ("Infinity" if data > 0 else "-Infinity")
        return None, [{"at": list(at), "value": spelled}]
    if isinstance(data, Mapping):
        pairs = [(key, _finite(value, (*at, key))) for key, value in data.items()]
        return {key: clean for key, (clean, _) in pairs}, [r for _, (_, rs) in pairs for r in rs]
    if isinstance(data, (list, tuple)):
        items = [_finite(value, (*at, index)) for index, value in enumerate(data)]
        return [clean for clean, _ in items], [r for _, rs in items for r in rs]
    return data, []


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (readers never see half), with the umask's permissions; a number
    that is not finite is written as ``null`` (JSON has no Infinity or NaN)."""
    with atomic_open(path, "w") as handle:
        json.dump(_finite(data)[0], handle, indent=2, sort_keys=False, allow_nan=False)
        handle.write("\n")


def write_record(run_dir: str | os.PathLike, record: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``record`` as ``<run_dir>/metrics.json``, stamped with :data:`RECORD_VERSION`
    (non-finite numbers as ``null``, listed in ``non_finite``); return it as
    :func:`read_record` reads it back."""
    stamped = {
        "version": RECORD_VERSION,
        **{k: v for k, v in record.items() if k not in ("version", NON_FINITE)},
    }
    clean, replaced = _finite(stamped)
    on_disk = {**clean, NON_FINITE: replaced} if replaced else clean
    write_json_atomic(Path(run_dir) / RECORD_FILE, on_disk)
    return stamped


def _restore_non_finite(data: dict[str, Any]) -> dict[str, Any]:
    """Put the numbers listed in ``non_finite`` back in place of their ``null``."""
    for entry in data.pop(NON_FINITE, None) or []:
        *keys, last = entry.get("at") or [None]
        node: Any = data
        try:
            for key in keys:
                node = node[key]
            if node[last] is None:
                node[last] = float(entry["value"])  # float() reads Infinity, -Infinity, NaN
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # an entry that does not point at a null: leave the record as it is
    return data


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


def load_record(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """``<run_dir>/metrics.json`` in the current form; ``None`` when there is none. Raises
    :class:`UnreadableRecordError` for a file that is not a JSON object (cut short by a full disk,
    copied in half) and :class:`RecordVersionError` for a record of an unknown version."""
    path = Path(run_dir) / RECORD_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableRecordError(f"{path}: {type(error).__name__}: {error}") from error
    try:
        data = json.loads(text)
    except ValueError as error:
        raise UnreadableRecordError(f"{path}: not JSON ({error})") from error
    if not isinstance(data, dict):
        raise UnreadableRecordError(f"{path}: a JSON {type(data).__name__}, not an object")
    return upgrade_record(_restore_non_finite(data))


def read_record(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """``<run_dir>/metrics.json`` in the current form; ``None`` when there is none or it is not
    a JSON object (:func:`load_record` says why). Raises :class:`RecordVersionError` for a record
    of an unknown version."""
    try:
        return load_record(run_dir)
    except UnreadableRecordError:
        return None


@dataclass(frozen=True)
class JobResult:
    """What is known about one job: its status and, when it finished, its metrics.

    ``status``: ``finished``, ``failed``, ``preempted``, ``interrupted`` (a checkpoint but no
    record: killed), ``unreadable`` (a ``metrics.json`` that cannot be read), ``running``,
    ``started`` (a directory, nothing more) or ``missing`` (never started / no trace). ``note``:
    why (the error message) or where (its directory). ``images``, ``skipped`` and
    ``grid_decode``: the record's (module doc; empty where it has none); ``per_image_problems``:
    loader → why its per-image rows disagree with the record (:func:`per_image_problems`), which
    leaves them out of any comparison.
    """

    status: str
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    note: str = ""
    images: Mapping[str, int] = field(default_factory=dict)
    skipped: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    per_image_problems: Mapping[str, str] = field(default_factory=dict)
    grid_decode: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Mapping[str, Any], note: str = "") -> JobResult:
        """From a record (:func:`read_record`); a finished record without metrics is failed."""
        status = str(record.get("status", "failed"))
        if status == FINISHED and not record.get("metrics"):
            status, note = "failed", note or "finished without test metrics"
        error = str(record.get("error") or "").strip().splitlines()  # its first line: the summary's
        return cls(
            status=status,
            metrics=record.get("metrics") or {},
            note=error[0] if error else note,
            images={str(k): int(v) for k, v in (record.get("images") or {}).items()},
            skipped={str(k): dict(v) for k, v in (record.get("skipped") or {}).items()},
            grid_decode=dict(record.get("grid_decode") or {}),
        )

    def set_size(self, loader: str) -> tuple[int, int] | None:
        """``(measured, held)`` images of ``loader``'s set where the record knows both and files
        were skipped; ``None`` when the loader measured the whole set (or it is not known)."""
        skipped = self.skipped.get(loader.rpartition("/")[0])
        if not skipped or loader not in self.images:
            return None
        return self.images[loader], self.images[loader] + len(skipped)


def debug_note(debug: str | None) -> str:
    """The words every picture of a debug run carries."""
    return f"DEBUG RUN (debug={debug}): the numbers mean nothing"


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


def write_per_image(run_dir: str | os.PathLike, rows: list[Mapping[str, Any]]) -> Path:
    """Write ``<run_dir>/per_image.csv`` (:data:`PER_IMAGE_FIELDS`, floats at full precision)
    atomically; return its path."""
    path = Path(run_dir) / PER_IMAGE_FILE
    with atomic_open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, PER_IMAGE_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _csv_value(row[key]) for key in PER_IMAGE_FIELDS})
    return path


def read_per_image(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of ``<run_dir>/per_image.csv`` (scores as floats); ``[]`` when there is none."""
    try:
        with open(Path(run_dir) / PER_IMAGE_FILE, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return []
    for row in rows:
        for key in PER_IMAGE_FIELDS[3:]:
            row[key] = float(row[key]) if row.get(key) not in (None, "") else math.nan
    return rows


def _csv_value(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


# Per-image means may differ from the logged ones by float32 rounding, never by an image.
_MEAN_TOLERANCE = 1e-4  # relative


def per_image_problems(result: JobResult, rows: list[Mapping[str, Any]]) -> dict[str, str]:
    """Loader → why ``rows`` (a job's ``per_image.csv``) do not stand for ``result`` (its
    ``metrics.json``) there: a score that is not a number, fewer or more rows than the images
    measured, a mean that is not the recorded one, a loader with no rows. Empty when they agree
    (and when there are no rows at all: nothing to compare)."""
    by_loader: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_loader.setdefault(f"{row['set']}/x{row['scale']}", []).append(row)
    if not by_loader:
        return {}
    problems = {
        loader: "no rows in per_image.csv" for loader in result.metrics if loader not in by_loader
    }
    for loader, lines in by_loader.items():
        why = _loader_problem(result, loader, lines)
        if why:
            problems[loader] = why
    return problems


def _loader_problem(result: JobResult, loader: str, lines: list[Mapping[str, Any]]) -> str:
    recorded = result.metrics.get(loader)
    if recorded is None:
        return "rows in per_image.csv, no result in metrics.json"
    names = [str(line["image"]) for line in lines]
    if len(set(names)) < len(names):
        return "an image named twice in per_image.csv"
    not_numbers = [n for n, line in zip(names, lines, strict=True) if not _finite_psnr(line)]
    if not_numbers:
        return f"no finite PSNR for {len(not_numbers)} of {len(lines)} images ({not_numbers[0]})"
    measured = result.images.get(loader)
    if measured is not None and measured != len(lines):
        return f"{len(lines)} rows in per_image.csv for {measured} images measured"
    for metric in ("psnr", "ssim"):
        value = recorded.get(metric)
        if value is None or not math.isfinite(float(value)) or metric not in lines[0]:
            continue
        mean = math.fsum(float(line[metric]) for line in lines) / len(lines)
        if abs(mean - float(value)) > _MEAN_TOLERANCE * max(1.0, abs(float(value))):
            return f"per-image mean {metric} {mean:.4f}, metrics.json {float(value):.4f}"
    return ""


def _finite_psnr(line: Mapping[str, Any]) -> bool:
    try:
        return math.isfinite(float(line["psnr"]))
    except (KeyError, TypeError, ValueError):
        return False
