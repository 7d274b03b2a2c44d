"""SR example panels of the test images: LR (nearest) | bicubic | SR | HR of a central crop.

``SRModule.test_step`` returns, for every test image, ``{"loader", "name", "lr", "bicubic", "sr",
"hr"}`` (image tensors ``(1, 3, h, w)`` in ``[0, 1]``); :class:`ExampleImages` receives it in
``on_test_batch_end`` and keeps the first ``num_examples`` images of each test loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image

EXAMPLE_KEYS = ("lr", "bicubic", "sr", "hr")


def example_panel(example: dict[str, torch.Tensor], crop: int = 96) -> np.ndarray:
    """A uint8 panel LR (nearest-upsampled) | bicubic | SR | HR of a central HR crop."""
    hr = example["hr"][0]
    height, width = hr.shape[-2:]
    side_h, side_w = min(crop, height), min(crop, width)
    top, left = (height - side_h) // 2, (width - side_w) // 2
    lr_up = F.interpolate(example["lr"], size=(height, width), mode="nearest")[0]
    tiles = [
        image[:, top : top + side_h, left : left + side_w]
        for image in (lr_up, example["bicubic"][0], example["sr"][0], hr)
    ]
    panel = torch.cat(tiles, dim=-1).clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return (panel * 255).round().astype(np.uint8)


class ExampleImages(pl.Callback):
    """After testing, writes the panels of the first ``num_examples`` images of each test loader
    to ``<dirpath>/<set>_x<scale>_<image>.png`` and to the loggers that take images (rank 0)."""

    def __init__(self, dirpath: str, num_examples: int = 1) -> None:
        self.dirpath = Path(dirpath)
        self.num_examples = num_examples
        self.examples: list[dict[str, Any]] = []

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.examples = []

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx >= self.num_examples or not trainer.is_global_zero or not outputs:
            return
        example = {"loader": outputs["loader"], "name": outputs["name"]}
        example.update({key: outputs[key].detach().cpu() for key in EXAMPLE_KEYS})
        self.examples.append(example)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.examples or not trainer.is_global_zero:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        for example in self.examples:
            panel = example_panel(example)
            stem = f"{example['loader'].replace('/', '_')}_{example['name']}"
            Image.fromarray(panel).save(self.dirpath / f"{stem}.png")
            for logger in trainer.loggers:
                if hasattr(logger, "log_image"):
                    logger.log_image(
                        key=f"examples/{example['loader']}",
                        images=[panel],
                        caption=[f"{example['name']}: LR | bicubic | SR | HR"],
                    )
        self.examples = []
