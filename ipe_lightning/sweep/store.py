"""The run store: one index of trainings shared by every sweep (``paths.run_store``).

``<run_store>/<identity>.json`` names the job directory that trains (or trained) the model of that
identity (``sweep/identity.py``). A sweep registers each training it launches; a later sweep, of
any table, that needs the same training evaluates that job's ``last.ckpt`` instead of training
again, and one that finds it still running (its locks held, ``sweep/claims.py``) leaves it alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipe_lightning.results import read_record, write_json_atomic
from ipe_lightning.runtime.lock import Holder
from ipe_lightning.sweep.claims import holder_of


def default_run_store(sweep_dir: str | Path) -> Path:
    """``runs/`` beside the sweeps (``paths.run_store: null``): in the ``multirun`` folder that
    holds ``sweep_dir`` (``multirun/<sweep>/<time>``), else beside ``sweep_dir`` itself."""
    sweep_dir = Path(sweep_dir).expanduser().resolve()
    holder = next((p for p in sweep_dir.parents if p.name == "multirun"), sweep_dir.parent)
    return holder / "runs"


@dataclass(frozen=True)
class Training:
    """A training of the store: where it runs, and whether it finished."""

    identity: str
    job_dir: Path

    @property
    def checkpoint(self) -> Path:
        return self.job_dir / "checkpoints" / "last.ckpt"

    def finished(self) -> bool:
        """Trained to the end (its own ``metrics.json`` says so) and its checkpoint is there."""
        try:
            record = read_record(self.job_dir)
        except ValueError:
            return False
        return bool(
            record
            and record.get("status") == "finished"
            and record.get("mode", "train") == "train"
            and self.checkpoint.is_file()
        )

    def holder(self) -> Holder | bool:
        return holder_of(self.job_dir.parent, self.job_dir.name)


class RunStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def entry_path(self, identity: str) -> Path:
        return self.root / f"{identity}.json"

    def find(self, identity: str) -> Training | None:
        try:
            entry = json.loads(self.entry_path(identity).read_text())
        except (OSError, ValueError):
            return None
        return Training(identity, Path(entry["job_dir"]))

    def register(self, identity: str, job_dir: Path, training: dict[str, Any]) -> None:
        """``job_dir`` trains ``identity`` (``training``: the identity's config, for people)."""
        entry = {
            "identity": identity,
            "job_dir": str(Path(job_dir).resolve()),
            "training": training,
        }
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.entry_path(identity), entry)
