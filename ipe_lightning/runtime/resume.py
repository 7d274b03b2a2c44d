"""Which checkpoint a run continues from (``resume=auto``): the newest one that can be read.

A ``last.ckpt`` that cannot be read (torn by a kill or a full disk before checkpoints were
written atomically, or damaged since) is reported with its path and what is wrong, moved aside
as ``<name>.corrupt-<time>`` (``.unsafe-<time>`` for one that would execute code), and the next
newest readable training checkpoint in the directory is used: ``last.prev.ckpt``
(runtime/checkpoint_io.py keeps it), then ``best.ckpt`` and any other. With none readable the
run starts afresh, with a warning. Only global rank 0 moves or removes files; every rank makes
the same choice.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ipe_lightning.atomic import leftover_temporaries
from ipe_lightning.models.checkpoint_file import (
    CorruptCheckpointError,
    UnsafeCheckpointError,
    load_weights_only,
)
from ipe_lightning.runtime.log import get_logger
from ipe_lightning.runtime.rank import is_rank_zero

log = get_logger(__name__)

LAST = "last.ckpt"


@dataclass(frozen=True)
class Skipped:
    """A checkpoint that was not resumed from: why, and where it was moved (if it was)."""

    path: Path
    reason: str
    moved_to: Path | None = None


def candidates(checkpoint_dir: Path) -> list[Path]:
    """The directory's checkpoints, newest first (``last.ckpt`` first among equals)."""
    files = [p for p in checkpoint_dir.glob("*.ckpt") if p.is_file()]
    return sorted(files, key=lambda p: (-p.stat().st_mtime, p.name != LAST, p.name))


def _why_not_resumable(path: Path) -> tuple[str, str] | None:
    """``(kind, reason)`` when training cannot resume from ``path``; kind: ``corrupt``,
    ``unsafe`` or ``weights`` (a readable file without training state)."""
    try:
        checkpoint = load_weights_only(path)
    except CorruptCheckpointError as error:
        return "corrupt", error.reason
    except UnsafeCheckpointError as error:
        return "unsafe", str(error).split(": ", 1)[-1]
    except OSError as error:
        return "unreadable", f"{type(error).__name__}: {error}"
    if not isinstance(checkpoint, Mapping) or not {"state_dict", "optimizer_states"} <= set(
        checkpoint
    ):
        return "weights", "no training state (weights only): cannot resume training from it"
    return None


def _move_aside(path: Path, kind: str) -> Path | None:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.{'unsafe' if kind == 'unsafe' else 'corrupt'}-{stamp}")
    try:
        os.replace(path, target)
    except OSError:  # e.g. another rank moved it first, or a read-only directory
        return None
    return target


def choose_checkpoint(
    checkpoint_dir: str | os.PathLike, move_aside: bool | None = None
) -> tuple[Path | None, list[Skipped]]:
    """The newest checkpoint of ``checkpoint_dir`` that training can resume from (``None``: none)
    and the ones skipped on the way. ``move_aside`` (default: on global rank 0) moves unreadable
    files aside and removes temporary files that killed writers left."""
    checkpoint_dir = Path(checkpoint_dir)
    if move_aside is None:
        move_aside = is_rank_zero()
    if move_aside:
        for temporary in leftover_temporaries(checkpoint_dir, "*.ckpt"):
            with contextlib.suppress(OSError):
                temporary.unlink()
    skipped = []
    for path in candidates(checkpoint_dir):
        problem = _why_not_resumable(path)
        if problem is None:
            return path, skipped
        kind, reason = problem
        moved = _move_aside(path, kind) if move_aside and kind != "weights" else None
        skipped.append(Skipped(path, reason, moved))
    return None, skipped


def resume_checkpoint(
    checkpoint_dir: str | os.PathLike, ckpt_path: str | None = None, resume: str = "auto"
) -> str | None:
    """What ``trainer.fit`` resumes from: ``ckpt_path`` if given (checked: an unreadable one
    raises ``CorruptCheckpointError`` / ``UnsafeCheckpointError``); with ``resume=auto`` the
    newest readable checkpoint of ``checkpoint_dir`` (reporting every one skipped); else none."""
    if ckpt_path:
        if os.path.isfile(ckpt_path):
            load_weights_only(ckpt_path)
        return str(ckpt_path)
    if resume != "auto":
        return None
    chosen, skipped = choose_checkpoint(checkpoint_dir)
    for item in skipped:
        where = f"; moved to {item.moved_to.name}" if item.moved_to else ""
        log.warning(f"[ipe-lightning] not resuming from {item.path}: {item.reason}{where}")
    if chosen is not None:
        log.info(f"[ipe-lightning] resuming from {chosen}")
        return str(chosen)
    if skipped:
        log.warning(f"[ipe-lightning] no readable checkpoint in {checkpoint_dir}: starting afresh")
    return None
