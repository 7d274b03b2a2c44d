"""The qualitative comparison as drawn: every crop labelled with its PSNR, the figure as tall as
its panels and texts, pictures written whole."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from ipe_lightning.figure.drawing import crop_psnr, draw_figure, save_figure
from ipe_lightning.metrics import psnr_per_image
from tests.support.figures import noisy, rows_with_one_region_that_differs


def test_the_psnr_under_a_crop_is_that_of_the_crop():
    hr = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    sr = noisy(hr, 0.1, 3)
    expected = psnr_per_image(sr[..., 5:25, 8:18], hr[..., 5:25, 8:18], shave=0, channel="y")
    assert crop_psnr(sr, hr, (5, 8, 20, 10), "y") == pytest.approx(float(expected))


def test_one_row_per_scale_with_every_crop_labelled_and_a_debug_mark(tmp_path):
    rows = rows_with_one_region_that_differs()
    box = (36, 6, 24, 24)
    figure = draw_figure(rows, box, title="Table 4", caption="crop chosen", debug="tiny")
    axes = figure.axes
    assert len(axes) == 3 * 5  # [whole | bicubic | A | B | HR] per scale
    assert [axes[5 * i].get_ylabel() for i in range(3)] == ["×4", "×12", "×30"]
    psnr_b = crop_psnr(rows[1].images["B"], rows[1].hr, box, "rgb")
    assert axes[5 + 3].get_xlabel() == f"B\n{psnr_b:.2f} dB"
    assert axes[0].patches, "the zoom box is drawn on the whole image"
    assert any("DEBUG RUN (debug=tiny)" in text.get_text() for text in figure.texts)
    pdf, png = save_figure(figure, tmp_path / "figure")
    assert pdf.read_bytes()[:5] == b"%PDF-" and png.read_bytes()[:4] == b"\x89PNG"
    plain = draw_figure(rows, box, title="Table 4")
    assert not any("DEBUG" in text.get_text() for text in plain.texts)


def inches_between(lower, upper, figure) -> float:
    """Inches from the top of ``lower``'s box to the bottom of ``upper``'s (negative: overlap)."""
    return (upper.y0 - lower.y1) / figure.dpi


def test_the_figure_is_as_tall_as_its_panels_and_texts_with_no_empty_band():
    rows = rows_with_one_region_that_differs()
    caption = "div2k image 0801; crop top=36, left=6 " * 8  # a caption of several lines
    figure = draw_figure(rows, (36, 6, 24, 24), title="Table 4", caption=caption, debug="tiny")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    title, note, under = (text.get_window_extent(renderer) for text in figure.texts)
    top_panel = max((axis.get_window_extent(renderer) for axis in figure.axes), key=lambda b: b.y1)
    last_labels = [axis.xaxis.label.get_window_extent(renderer) for axis in figure.axes[-5:]]
    lowest_label = min(last_labels, key=lambda b: b.y0)
    assert inches_between(note, title, figure) > 0
    assert 0 < inches_between(top_panel, note, figure) < 0.25
    assert 0 < inches_between(under, lowest_label, figure) < 0.25
    assert under.y0 > 0 and title.y1 < figure.bbox.y1, "nothing cut at the edges"


def test_the_hr_tile_is_captioned_hr_without_a_psnr():
    figure = draw_figure(rows_with_one_region_that_differs(), (36, 6, 24, 24))
    hr_tiles = [axis.get_xlabel() for axis in figure.axes[4::5]]
    assert hr_tiles == ["HR", "HR", "HR"]


def test_a_picture_that_cannot_be_written_whole_leaves_the_previous_one(tmp_path, monkeypatch):
    """A full disk during the save of the figure leaves the last good PNG, not a torn one."""
    rows = rows_with_one_region_that_differs()
    save_figure(draw_figure(rows, (36, 6, 24, 24), title="first"), tmp_path / "figure")
    before = {name: (tmp_path / name).read_bytes() for name in ("figure.pdf", "figure.png")}

    def full_disk(self, target, **kwargs):
        """A third of the picture written, then the disk is full (to a path or a file)."""
        if isinstance(target, str | Path):
            with open(target, "wb") as handle:
                handle.write(b"%PDF- torn")
        else:
            target.write(b"%PDF- torn")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", full_disk)
    with pytest.raises(OSError, match="No space"):
        save_figure(draw_figure(rows, (36, 6, 24, 24), title="second"), tmp_path / "figure")
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.pdf", "figure.png"]
