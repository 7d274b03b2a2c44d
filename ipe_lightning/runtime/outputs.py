"""``test.save_outputs=true``: every SR test image as an 8-bit PNG, for other metrics or figures.

Files: ``<dirpath>/<set>/x<scale>/<image>.png``. Under DDP every rank writes the images it tested:
the test loaders give each rank every ``world_size``-th image without padding
(``data/datamodule.py``), so no two ranks write the same file, and the evaluation sets name each
image once (``data/eval_sets.py``). A file is written beside its final name and renamed
(:mod:`ipe_lightning.atomic`), so a job killed mid-write leaves no half image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from PIL import Image

from ipe_lightning.atomic import atomic_open
from ipe_lightning.bicubic import to_uint8


def output_path(dirpath: str | Path, loader: str, name: str) -> Path:
    """``<dirpath>/<set>/x<scale>/<name>.png`` for the test loader ``<set>/x<scale>``."""
    return Path(dirpath) / loader / f"{name}.png"


class SaveOutputs(pl.Callback):
    """Writes each test image's SR output (``test_step``'s ``sr``, rounded to 8 bits) when
    ``enabled``; every rank writes its own images."""

    def __init__(self, dirpath: str, enabled: bool = False) -> None:
        self.dirpath = Path(dirpath)
        self.enabled = bool(enabled)

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self.enabled or not outputs:
            return
        path = output_path(self.dirpath, outputs["loader"], outputs["name"])
        with atomic_open(path, "wb") as handle:
            Image.fromarray(to_uint8(outputs["sr"])).save(handle, format="PNG")
