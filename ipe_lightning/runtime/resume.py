"""Which checkpoint a run continues from (``resume=auto``): the newest one that can be read.

A ``last.ckpt`` that cannot be read (torn by a kill or a full disk before checkpoints were
written atomically, or damaged since) is reported with its path and what is wrong, moved aside
as ``<name>.corrupt-<time>`` (``.unsafe-<time>`` for one that would execute code), and the next
newest readable training checkpoint in the directory is used: ``last.prev.ckpt``
(runtime/checkpoint_io.py keeps it), then ``best.ckpt`` and any other. With none readable the
run starts afresh, with a warning. Only global rank 0 moves or removes files; every rank makes
the same choice. A checkpoint that a newer torch wrote is not unreadable but unread: the run
stops naming it (:class:`~ipe_lightning.models.checkpoint_file.NewerFormatError`), and nothing is
moved or started afresh.

Before the trainer restores the chosen checkpoint, :func:`check_resumable` refuses one this
training cannot continue: a file of another project (no training state), another model's (its
name and the keys that differ), or one that has trained more epochs than ``trainer.max_epochs``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ipe_lightning.atomic import leftover_temporaries
from ipe_lightning.errors import SettingError
from ipe_lightning.models.checkpoint_file import (
    CheckpointMismatchError,
    CorruptCheckpointError,
    UnsafeCheckpointError,
    key_differences,
    load_weights_only,
)
from ipe_lightning.runtime.log import get_logger
from ipe_lightning.runtime.rank import is_rank_zero

log = get_logger(__name__)

LAST = "last.ckpt"
TRAINING_STATE = {"state_dict", "optimizer_states"}
NETWORK_PREFIX = "net."  # the module's network in its state dict (module.py: self.net)


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
    ``unsafe`` or ``weights`` (a readable file without training state). A file of a newer torch
    raises ``NewerFormatError``: the next older checkpoint would silently lose its steps."""
    try:
        checkpoint = load_weights_only(path)
    except CorruptCheckpointError as error:
        return "corrupt", error.reason
    except UnsafeCheckpointError as error:
        return "unsafe", str(error).split(": ", 1)[-1]
    except OSError as error:
        return "unreadable", f"{type(error).__name__}: {error}"
    if not has_training_state(checkpoint):
        return "weights", "no training state (weights only): cannot resume training from it"
    return None


def has_training_state(checkpoint: Any) -> bool:
    """Whether ``checkpoint`` (loaded) holds what ``trainer.fit`` restores: weights and
    optimiser states."""
    return isinstance(checkpoint, Mapping) and set(checkpoint) >= TRAINING_STATE


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


@dataclass(frozen=True)
class Resuming:
    """The checkpoint a training continues from, as its messages name it: ``ckpt_path=<file>``,
    or the run directory's own (``resume=auto``), and how to start afresh instead."""

    path: str
    given: bool  # ckpt_path= (else found by resume=auto)

    @property
    def named(self) -> str:
        return f"ckpt_path={self.path}" if self.given else f"{self.path} (resume=auto)"

    @property
    def afresh(self) -> str:
        return "no ckpt_path" if self.given else "resume=never"


def check_resumable(resuming: Resuming, module: nn.Module, max_epochs: int | None) -> None:
    """Refuse the checkpoint before ``trainer.fit`` restores it into ``module``, naming the file
    and what to change, where Lightning would fail with a key error, a list of missing keys, or
    (``max_epochs`` below the checkpoint's epochs) end at once without a word."""
    checkpoint = load_weights_only(resuming.path)
    if not has_training_state(checkpoint):
        held = sorted(map(str, checkpoint))[:6] if isinstance(checkpoint, Mapping) else []
        raise CheckpointMismatchError(
            f"{resuming.named} is not a training checkpoint of this project: it has no "
            f"{' and '.join(sorted(TRAINING_STATE))} (it holds {held or type(checkpoint).__name__}"
            f"); give one of our .ckpt files, or {resuming.afresh} to start afresh"
        )
    _require_same_network(resuming, checkpoint, module)
    _require_epochs_left(resuming, checkpoint, max_epochs)


def _network_shapes(state: Mapping) -> dict[str, tuple[int, ...]]:
    return {
        str(k): tuple(getattr(v, "shape", ()))
        for k, v in state.items()
        if str(k).startswith(NETWORK_PREFIX)
    }


def _require_same_network(resuming: Resuming, checkpoint: Mapping, module: nn.Module) -> None:
    ours = str(getattr(module, "hparams", {}).get("model_name") or "")
    theirs = str((checkpoint.get("hyper_parameters") or {}).get("model_name") or "")
    if ours and theirs and ours != theirs:
        raise CheckpointMismatchError(
            f"{resuming.named} holds {theirs} (trained as model={theirs}), but this training "
            f"builds {ours}: continue it with model={theirs}, or give {resuming.afresh} to "
            f"train {ours} afresh"
        )
    shapes, stored = _network_shapes(module.state_dict()), _network_shapes(checkpoint["state_dict"])
    if shapes == stored:
        return
    differences = key_differences(
        sorted(shapes.keys() - stored),
        sorted(stored.keys() - shapes),
        sorted(k for k in shapes.keys() & stored if shapes[k] != stored[k]),
    )
    raise CheckpointMismatchError(
        f"{resuming.named} does not fit the network of model={ours or '<configured>'}: "
        f"keys {differences}; give a checkpoint of this model, or {resuming.afresh} to start "
        "afresh"
    )


def completed_epochs(checkpoint: Mapping) -> int:
    """The epochs a Lightning checkpoint has finished (its fit loop's count, else ``epoch``)."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["completed"])
    except (KeyError, TypeError, ValueError):
        return int(checkpoint.get("epoch") or 0)


def _require_epochs_left(resuming: Resuming, checkpoint: Mapping, max_epochs: int | None) -> None:
    if max_epochs is None or max_epochs < 0:  # -1: no limit
        return
    done = completed_epochs(checkpoint)
    if max_epochs < done:
        raise SettingError(
            f"trainer.max_epochs={max_epochs}, but {resuming.named} has already trained {done} "
            f"epochs: give trainer.max_epochs >= {done} to continue it, or {resuming.afresh} to "
            "start afresh"
        )
