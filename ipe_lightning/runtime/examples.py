"""SR example panels of the test images: labelled LR (nearest) | bicubic | SR | HR tiles of a crop.

``SRModule.test_step`` returns, for every test image, ``{"loader", "name", "lr", "bicubic", "sr",
"hr"}`` (image tensors ``(1, 3, h, w)`` in ``[0, 1]``); :class:`ExampleImages` receives it in
``on_test_batch_end`` and keeps the first ``num_examples`` images of each test loader. Each tile
is labelled on the image itself with what it is, the scale and the PSNR of the crop (the set's
channel, no shave: the crop is the region measured), and the panel's title names the model, the
set, the scale and the image, so a panel says what it shows wherever it is copied to; a debug run
(``debug=tiny``/``smoke``) says so in red above the tiles. Text is 18 px and tiles at least
192 px wide (a 96 px crop is shown at ×2, nearest), legible in a slide or a W&B grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from ipe_lightning.bicubic import to_uint8
from ipe_lightning.metrics import psnr_per_image
from ipe_lightning.results import debug_note
from ipe_lightning.scales import parse_scale_tag

EXAMPLE_KEYS = ("lr", "bicubic", "sr", "hr")
TILE_LABELS = ("LR (nearest)", "bicubic", "SR", "HR")
SEPARATOR = 4  # pixels of background between tiles
BACKGROUND = (255, 255, 255)
DEBUG_COLOUR = (200, 0, 0)
FONT_SIZE = 18
MIN_TILE = 192  # narrower crops are enlarged (nearest): pixels visible, labels fit under them


@cache
def label_font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """DejaVu Sans as shipped with matplotlib (it has ×), else Pillow's default font."""
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def crop_box(
    size: tuple[int, int], crop: int = 96, center: Sequence[float] = (0.5, 0.5)
) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of a ``crop``-pixel square centred at ``center`` (fractions
    of the height and width), moved inside the image; an image smaller than it is taken whole."""
    height, width = size
    side_h, side_w = min(crop, height), min(crop, width)
    top = round(center[0] * height - side_h / 2)
    left = round(center[1] * width - side_w / 2)
    return (
        min(max(top, 0), height - side_h),
        min(max(left, 0), width - side_w),
        side_h,
        side_w,
    )


def example_tiles(
    example: dict[str, torch.Tensor], crop: int = 96, center: Sequence[float] = (0.5, 0.5)
) -> tuple[list[torch.Tensor], tuple[int, int, int, int]]:
    """The LR (nearest-upsampled to the HR size), bicubic, SR and HR crops ``(1, 3, h, w)``,
    clamped to ``[0, 1]``, and the crop's box in HR pixels."""
    hr = example["hr"]
    box = crop_box(tuple(hr.shape[-2:]), crop, center)
    top, left, side_h, side_w = box
    lr_up = F.interpolate(example["lr"], size=tuple(hr.shape[-2:]), mode="nearest")
    tiles = [
        image[..., top : top + side_h, left : left + side_w].clamp(0, 1)
        for image in (lr_up, example["bicubic"], example["sr"], hr)
    ]
    return tiles, box


def _text_height(font: Any) -> int:
    top, bottom = font.getbbox("Ag×")[1::2]
    return int(bottom - top) + 3


def panel_geometry(tile_width: int, debug: str | None = None) -> tuple[int, int, int]:
    """``(zoom, header height, footer height)`` of a panel whose crops are ``tile_width`` wide:
    tile ``i`` starts at row ``header`` and column ``i · (tile_width · zoom + SEPARATOR)``."""
    line = _text_height(label_font())
    zoom = max(1, math.ceil(MIN_TILE / tile_width))
    return zoom, line * (2 if debug else 1) + 2, 2 * line + 2


def example_panel(
    example: dict[str, Any],
    crop: int = 96,
    center: Sequence[float] = (0.5, 0.5),
    *,
    channel: str = "rgb",
    debug: str | None = None,
    model: str | None = None,
) -> np.ndarray:
    """A uint8 panel of four labelled tiles, LR (nearest) | bicubic | SR | HR of one HR crop.

    Above the tiles: the model, the set, the scale and the image name (and, for a debug run,
    :func:`debug_note` in red); under each tile: what it is and the PSNR of the crop against the
    HR crop (dB, on ``channel``). Tiles are :data:`SEPARATOR` pixels apart.
    """
    tiles, _ = example_tiles(example, crop, center)
    side_h, side_w = tiles[0].shape[-2:]
    zoom, header, footer = panel_geometry(side_w, debug)
    scale = parse_scale_tag(str(example.get("loader", "")).rsplit("/", 1)[-1])
    scale_text = "" if scale is None else "×" + "×".join(dict.fromkeys(f"{s:g}" for s in scale))
    font = label_font()
    line = _text_height(font)
    set_name = str(example.get("loader", "")).rsplit("/", 1)[0]
    title = [model or "", f"{set_name} {scale_text}".strip(), str(example.get("name", ""))]
    header_lines = [" · ".join(part for part in title if part)]
    if debug:
        header_lines.append(debug_note(debug))
    tile_h, tile_w = side_h * zoom, side_w * zoom
    width = 4 * tile_w + 3 * SEPARATOR
    canvas = Image.new("RGB", (width, header + tile_h + footer), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for index, text in enumerate(header_lines):
        colour = DEBUG_COLOUR if text.startswith("DEBUG") else (0, 0, 0)
        draw.text((1, 1 + index * line), text, fill=colour, font=font)
    hr_tile = tiles[-1]
    for index, (tile, label) in enumerate(zip(tiles, TILE_LABELS, strict=True)):
        x = index * (tile_w + SEPARATOR)
        image = Image.fromarray(to_uint8(tile))
        if zoom > 1:
            image = image.resize((tile_w, tile_h), Image.NEAREST)
        canvas.paste(image, (x, header))
        if label == "HR":
            measure = "reference"
        else:
            psnr = float(psnr_per_image(tile, hr_tile, shave=0, channel=channel)[0])
            measure = f"{psnr:.2f} dB" if math.isfinite(psnr) else "exact"
        draw.text((x + 1, header + tile_h + 1), label, fill=(0, 0, 0), font=font)
        draw.text(
            (x + 1, header + tile_h + 1 + line),
            measure if label == "HR" else f"PSNR {measure}",
            fill=(0, 0, 0),
            font=font,
        )
    return np.asarray(canvas)


class ExampleImages(pl.Callback):
    """After testing, writes the panels of the first ``num_examples`` images of each test loader
    to ``<dirpath>/<set>_x<scale>_<image>.png`` and to the loggers that take images (rank 0).

    ``crop``: side of the HR crop (pixels); ``center``: where its centre is, as fractions of the
    HR height and width; ``debug``: the debug config of the run (``tiny``, ``smoke``), written on
    every panel.
    """

    def __init__(
        self,
        dirpath: str,
        num_examples: int = 1,
        crop: int = 96,
        center: Sequence[float] = (0.5, 0.5),
        debug: str | None = None,
    ) -> None:
        if crop < 1:
            raise ValueError(f"the example crop must be at least one pixel, got {crop}")
        if len(center) != 2 or not all(0 <= float(c) <= 1 for c in center):
            raise ValueError(f"the example crop's center must be two fractions in [0, 1]: {center}")
        self.dirpath = Path(dirpath)
        self.num_examples = num_examples
        self.crop = int(crop)
        self.center = tuple(float(c) for c in center)
        self.debug = debug
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
        # The set's channel (benchmarks: Y), so a tile's PSNR is measured as the table's.
        example["channel"] = batch.get("channel", "rgb") if isinstance(batch, dict) else "rgb"
        self.examples.append(example)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.examples or not trainer.is_global_zero:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        # the network tested (a test job's: its checkpoint's), as the record names it
        model = str((getattr(pl_module, "hparams", None) or {}).get("model_name") or "") or None
        for example in self.examples:
            panel = example_panel(
                example,
                self.crop,
                self.center,
                channel=example["channel"],
                debug=self.debug,
                model=model,
            )
            stem = f"{example['loader'].replace('/', '_')}_{example['name']}"
            Image.fromarray(panel).save(self.dirpath / f"{stem}.png")
            for logger in trainer.loggers:
                if hasattr(logger, "log_image"):
                    logger.log_image(
                        key=f"examples/{example['loader']}",
                        images=[panel],
                        caption=[f"{model or 'SR'}, {example['name']}: LR | bicubic | SR | HR"],
                    )
        self.examples = []
