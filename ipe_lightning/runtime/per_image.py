"""``per_image.csv``: one row per test image, whose means are the logged test means.

:class:`PerImageResults` turns what ``SRModule.test_step`` returns for each batch (its loader,
image names and per-image scores) into rows, gathers them from every rank when the test ends and
has global rank 0 write them beside ``metrics.json`` (the schema: :mod:`ipe_lightning.results`).
"""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
import torch

from ipe_lightning import results
from ipe_lightning.runtime.rank import is_rank_zero


def gather_results_across_ranks(items: list[Any]) -> list[Any]:
    """Every rank's ``items``, on every rank (rank order); ``items`` itself without a process
    group. ``items`` must be picklable (``torch.distributed.all_gather_object``).

    Test loaders are split between ranks without duplicates (each image is on one rank), so the
    gathered results hold each image once whatever the rank count.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return list(items)
    gathered: list[list[Any] | None] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, list(items))
    return [item for part in gathered for item in part or []]


def per_image_rows(loader: str, names: Any, scores: dict[str, torch.Tensor]) -> list[dict]:
    """The rows of one batch of loader ``<set>/x<scale>``: ``names`` is one name (a batch of one
    image) or one per image, ``scores`` one value per image for each score of the file."""
    names = [names] if isinstance(names, str) else list(names)
    set_name, _, tag = loader.rpartition("/")
    values = {key: value.tolist() for key, value in scores.items()}
    return [
        {
            "set": set_name,
            "scale": tag.removeprefix("x"),
            "image": str(name),
            **{key: float(values[key][index]) for key in results.PER_IMAGE_FIELDS[3:]},
        }
        for index, name in enumerate(names)
    ]


class PerImageResults(pl.Callback):
    """Write ``<dirpath>/per_image.csv`` at the end of every test, in loader order and by image
    name within a loader (module doc)."""

    def __init__(self, dirpath: str | os.PathLike) -> None:
        self.dirpath = dirpath
        self._rows: list[tuple[int, dict[str, Any]]] = []  # (loader index, row) of this rank

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._rows = []

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        rows = per_image_rows(outputs["loader"], outputs["name"], outputs["scores"])
        self._rows.extend((dataloader_idx, row) for row in rows)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        gathered = gather_results_across_ranks(self._rows)  # a collective: every rank calls it
        if is_rank_zero():
            ordered = sorted(gathered, key=lambda entry: (entry[0], entry[1]["image"]))
            results.write_per_image(self.dirpath, [row for _, row in ordered])
