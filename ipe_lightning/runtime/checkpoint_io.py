"""Checkpoints that a kill or a full disk cannot tear: Lightning's checkpoint writer, made atomic
in the destination directory (conf/trainer/default.yaml installs it for every trainer).

Lightning 2.6's ``TorchCheckpointIO`` serialises to memory and writes through an fsspec
transaction whose temporary file is in ``$TMPDIR``; committing it is ``shutil.move``. When the
run directory is on another filesystem (node-local ``/tmp``, outputs on NFS or Lustre), that move
is a copy that first truncates the destination: a ``kill -9`` or a full disk during the copy
leaves the previous good ``last.ckpt`` at 0 bytes or torn. Here the temporary file is beside the
destination, fsynced, then renamed (:mod:`ipe_lightning.atomic`), and the file it replaces is
kept as ``<name>.prev.ckpt`` (for the names in ``keep_previous``) until the new one is complete.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning_fabric.utilities.cloud_io import get_filesystem
from lightning_fabric.utilities.types import _PATH
from pytorch_lightning.plugins.io import TorchCheckpointIO

from ipe_lightning.atomic import atomic_open
from ipe_lightning.errors import causes

PREVIOUS = ".prev"  # last.ckpt -> last.prev.ckpt


def previous_path(path: str | os.PathLike) -> Path:
    """Where the checkpoint that ``path`` replaced is kept: ``last.ckpt`` -> ``last.prev.ckpt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}{PREVIOUS}{path.suffix}")


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves replace the file whole or not at all.

    ``keep_previous``: the checkpoint names (stems, ``"last"``) whose replaced file is kept as
    ``<stem>.prev<suffix>``, so a resume has a fallback should the newest become unreadable.
    Remote paths (``s3://``) are written by Lightning's own writer.
    """

    def __init__(self, keep_previous: Sequence[str] = ("last",)) -> None:
        super().__init__()
        self.keep_previous = tuple(keep_previous)

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        previous = previous_path(path) if path.stem in self.keep_previous else None
        try:
            with atomic_open(path, "wb", previous=previous) as handle:
                torch.save(checkpoint, handle)
        except (OSError, RuntimeError) as error:
            # torch's archive writer reports a failed write (a full disk) as its own
            # RuntimeError ("unexpected pos 704 vs 598"), with the OSError as its context
            cause = next((e for e in causes(error) if isinstance(e, OSError)), None)
            if cause is None:
                raise
            kept = f"; the previous {path.name} is unchanged" if path.is_file() else ""
            raise OSError(
                cause.errno, f"could not write checkpoint {path}: {cause.strerror or cause}{kept}"
            ) from error
