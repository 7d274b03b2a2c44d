"""The run record every job writes: ``metrics.json`` (rank 0, written atomically)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_TEST_KEY = re.compile(r"^test/(?P<loader>.+)/(?P<metric>psnr|ssim|bicubic_psnr|bicubic_ssim)$")


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it: readers never see half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")
        temporary = handle.name
    os.replace(temporary, path)


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
