"""Drawing the qualitative comparison of ``sweep.py figure`` (:mod:`ipe_lightning.figure.figure`
chooses what goes in it): one row per scale, the whole HR image with the zoom box, then the crops
with their PSNR, sized in inches so that the figure is exactly as tall as its panels and texts.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ipe_lightning.atomic import savefig_atomic
from ipe_lightning.results import debug_note


@dataclass(frozen=True)
class FigureRow:
    """One scale: the HR image and, in order, the images compared with it (``(1, 3, H, W)``)."""

    scale: float
    hr: torch.Tensor
    images: Mapping[str, torch.Tensor]  # label → image: bicubic first, then the variants
    channel: str = "rgb"


def crop_psnr(image: torch.Tensor, hr: torch.Tensor, box: Sequence[int], channel: str) -> float:
    """PSNR (dB) of ``image`` against ``hr`` inside ``box = (top, left, height, width)``."""
    from ipe_lightning.metrics import psnr_per_image

    top, left, height, width = box
    region = (..., slice(top, top + height), slice(left, left + width))
    return float(psnr_per_image(image[region].clamp(0, 1), hr[region], shave=0, channel=channel))


def _as_image(image: torch.Tensor) -> Any:
    return image[0].detach().clamp(0, 1).permute(1, 2, 0).cpu().float().numpy()


# Geometry in inches, so that the figure is as tall as its panels and their captions: a grid
# sized by fractions leaves the aspect-locked images floating in empty bands.
TILE = 1.55  # the height of every panel
GAP = 0.08  # between panels of a row
MARGINS = {"left": 0.6, "right": 0.08, "top": 0.08, "bottom": 0.06}  # left: the ×scale labels
LABEL_PT, TITLE_PT, DEBUG_PT, CAPTION_PT = 8, 10, 11, 7
LINE = 1.3 / 72  # inches per point of font size: one line of text with its leading
CHAR = 0.55 / 72  # inches per point: the average width of a DejaVu Sans character


def _wrap(text: str, inches: float, points: float) -> str:
    """``text`` wrapped to ``inches`` at ``points``, at spaces only (never inside a name)."""
    width = max(8, int(inches / (CHAR * points)))
    return textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False)


def _tile_caption(
    label: str, image: torch.Tensor, row: FigureRow, box: Sequence[int], inches: float
) -> str:
    if label == "HR":
        return "HR"  # the reference: no PSNR of its own
    value = crop_psnr(image, row.hr, box, row.channel)
    measure = f"{value:.2f} dB" if math.isfinite(value) else "exact"
    return f"{_wrap(label, inches, LABEL_PT)}\n{measure}"


@dataclass(frozen=True)
class Geometry:
    """Where everything goes, in inches: the panels' widths (every panel is ``TILE`` high), the
    band under each row for its captions, the header (title, debug note), the footer (caption)."""

    widths: tuple[float, ...]
    rows: int
    label_band: float
    header: float
    footer: float

    @property
    def size(self) -> tuple[float, float]:
        """The figure's (width, height): its margins, panels and texts, no empty band."""
        panels = sum(self.widths) + GAP * (len(self.widths) - 1)
        height = self.header + self.rows * (TILE + self.label_band) + self.footer
        return MARGINS["left"] + panels + MARGINS["right"], height


def _lines(text: str) -> int:
    return text.count("\n") + 1 if text else 0


def _geometry(
    widths: Sequence[float],
    rows: int,
    captions: Sequence[str],
    title: str,
    debug: bool,
    caption: str,
) -> Geometry:
    label_band = max(_lines(text) for text in captions) * LABEL_PT * LINE
    label_band += 0.08  # the labels' pad under the panel and a little air before the next row
    header = MARGINS["top"] + _lines(title) * TITLE_PT * LINE + (DEBUG_PT * LINE if debug else 0)
    header += 0.1  # between the texts and the panels
    footer = MARGINS["bottom"] + _lines(caption) * CAPTION_PT * LINE
    return Geometry(tuple(widths), rows, label_band, header, footer)


def draw_figure(
    rows: Sequence[FigureRow],
    box: Sequence[int],
    *,
    title: str = "",
    caption: str = "",
    debug: str | None = None,
) -> Any:
    """The matplotlib figure: one row per scale, [HR with the zoom box | crops ... | HR crop],
    exactly as tall as its panels, their captions, the title and the caption."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on clusters
    import matplotlib.pyplot as plt

    _, _, height, width = box
    tiles = [[*row.images.items(), ("HR", row.hr)] for row in rows]
    widths = [TILE * rows[0].hr.shape[-1] / rows[0].hr.shape[-2]]
    widths += [TILE * width / height] * len(tiles[0])  # panels exactly the images' shapes
    captions = [
        [_tile_caption(label, image, row, box, widths[1]) for label, image in row_tiles]
        for row, row_tiles in zip(rows, tiles, strict=True)
    ]
    text_width = MARGINS["left"] + sum(widths) + GAP * (len(widths) - 1)
    title = _wrap(title, text_width, TITLE_PT) if title else ""
    caption = _wrap(caption, text_width, CAPTION_PT) if caption else ""
    flat = [text for line in captions for text in line]
    geometry = _geometry(widths, len(rows), flat, title, bool(debug), caption)
    figure_width, figure_height = geometry.size
    figure = plt.figure(figsize=geometry.size)
    grid = figure.add_gridspec(
        len(rows),
        len(widths),
        width_ratios=widths,
        left=MARGINS["left"] / figure_width,
        right=1 - MARGINS["right"] / figure_width,
        top=1 - geometry.header / figure_height,
        bottom=(geometry.footer + geometry.label_band) / figure_height,
        wspace=GAP / (sum(widths) / len(widths)),  # a fraction of the mean panel width
        hspace=geometry.label_band / TILE,  # a fraction of the panel height
    )
    for index, (row, row_tiles, row_captions) in enumerate(zip(rows, tiles, captions, strict=True)):
        axes = [figure.add_subplot(grid[index, column]) for column in range(len(widths))]
        _draw_row(axes, row, row_tiles, row_captions, box, last=index == len(rows) - 1)
    _draw_texts(figure, geometry, title, debug, caption)
    return figure


def _draw_row(
    axes: Sequence[Any],
    row: FigureRow,
    tiles: Sequence[tuple[str, torch.Tensor]],
    captions: Sequence[str],
    box: Sequence[int],
    *,
    last: bool,
) -> None:
    from matplotlib.patches import Rectangle

    top, left, height, width = box
    whole = axes[0]
    whole.imshow(_as_image(row.hr), interpolation="lanczos")
    zoom = Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor="red")
    whole.add_patch(zoom)
    whole.set_ylabel(f"×{row.scale:g}", fontsize=12, rotation=0, labelpad=18, va="center")
    if last:
        whole.set_xlabel("HR (whole)", fontsize=LABEL_PT)
    for axis, (_, image), text in zip(axes[1:], tiles, captions, strict=True):
        crop = image[..., top : top + height, left : left + width]
        axis.imshow(_as_image(crop), interpolation="nearest")
        axis.set_xlabel(text, fontsize=LABEL_PT)
    for axis in axes:
        axis.set_xticks([])
        axis.set_yticks([])


def _draw_texts(
    figure: Any, geometry: Geometry, title: str, debug: str | None, caption: str
) -> None:
    height = geometry.size[1]
    y = 1 - MARGINS["top"] / height
    if title:
        figure.suptitle(title, fontsize=TITLE_PT, y=y, va="top")
        y -= _lines(title) * TITLE_PT * LINE / height
    if debug:
        note = debug_note(debug)
        figure.text(
            0.5, y, note, color="red", fontsize=DEBUG_PT, ha="center", va="top", weight="bold"
        )
    if caption:
        bottom = MARGINS["bottom"] / height
        figure.text(0.5, bottom, caption, ha="center", va="bottom", fontsize=CAPTION_PT)


def save_figure(figure: Any, stem: str | Path) -> tuple[Path, Path]:
    """Write ``<stem>.pdf`` and ``<stem>.png``, each replaced whole (``atomic.savefig_atomic``)."""
    import matplotlib.pyplot as plt

    stem = Path(stem)
    paths = (stem.with_name(stem.name + ".pdf"), stem.with_name(stem.name + ".png"))
    savefig_atomic(figure, paths[0])
    savefig_atomic(figure, paths[1], dpi=150)
    plt.close(figure)
    return paths
