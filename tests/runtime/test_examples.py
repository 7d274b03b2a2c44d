"""Example panels: labelled LR (nearest) | bicubic | SR | HR tiles of an HR crop, the first
``num_examples`` images of each test loader, written by rank 0 only."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from ipe_lightning.bicubic import to_uint8
from ipe_lightning.metrics import psnr_per_image
from ipe_lightning.runtime.examples import (
    BACKGROUND,
    SEPARATOR,
    ExampleImages,
    crop_box,
    example_panel,
    example_tiles,
    panel_geometry,
)


def images(hr_size=(120, 100), scale=2, seed=0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    height, width = hr_size
    lr = torch.rand(1, 3, height // scale, width // scale, generator=generator)
    return {
        "lr": lr,
        "bicubic": torch.rand(1, 3, height, width, generator=generator),
        "sr": torch.rand(1, 3, height, width, generator=generator) * 1.4 - 0.2,  # out of range
        "hr": torch.rand(1, 3, height, width, generator=generator),
    }


def as_uint8(image: torch.Tensor) -> np.ndarray:
    return (image[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def tile_of(panel: np.ndarray, index: int, size: tuple[int, int], debug=None) -> np.ndarray:
    """The ``index``-th tile of a panel of ``size`` crops, shrunk back to the crop's pixels."""
    zoom, header, _ = panel_geometry(size[1], debug)
    height, width = size[0] * zoom, size[1] * zoom
    left = index * (width + SEPARATOR)
    tile = panel[header : header + height, left : left + width]
    np.testing.assert_array_equal(tile, tile[::zoom, ::zoom].repeat(zoom, 0).repeat(zoom, 1))
    return tile[::zoom, ::zoom]


def test_the_tiles_are_lr_nearest_bicubic_sr_hr_of_the_central_crop():
    example = images()
    panel = example_panel({**example, "loader": "set5/x2", "name": "bird"}, crop=96)
    assert panel.dtype == np.uint8 and panel.shape[1] == 4 * 192 + 3 * SEPARATOR  # shown at x2
    top, left = (120 - 96) // 2, (100 - 96) // 2
    lr_nearest = example["lr"].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    for index, image in enumerate([lr_nearest, example["bicubic"], example["sr"], example["hr"]]):
        expected = as_uint8(image)[top : top + 96, left : left + 96]
        np.testing.assert_array_equal(tile_of(panel, index, (96, 96)), expected)


def test_tiles_are_separated_and_labelled_under_each_tile():
    panel = example_panel({**images(), "loader": "set5/x2", "name": "bird"}, crop=96)
    zoom, header, footer = panel_geometry(96)
    side = 96 * zoom
    for index in range(3):  # the gaps between tiles are background, top to bottom
        gap = panel[header : header + side, (index + 1) * side + index * SEPARATOR][:, None]
        assert (gap == np.array(BACKGROUND, dtype=np.uint8)).all()
        assert gap.shape[0] == side
    below = panel[header + side :]
    assert below.shape[0] == footer
    for index in range(4):  # text (dark pixels) under every tile
        columns = below[:, index * (side + SEPARATOR) : index * (side + SEPARATOR) + side]
        assert (columns.min(axis=-1) < 100).sum() > 20


def test_a_debug_run_says_so_in_red_above_the_tiles():
    example = {**images(), "loader": "set5/x2", "name": "bird"}
    plain = example_panel(example, crop=96)
    debug = example_panel(example, crop=96, debug="tiny")
    assert debug.shape[0] > plain.shape[0]
    _, header, _ = panel_geometry(96, "tiny")
    red = (debug[:header, :, 0] > 150) & (debug[:header, :, 1] < 80) & (debug[:header, :, 2] < 80)
    assert red.sum() > 50
    np.testing.assert_array_equal(tile_of(debug, 2, (96, 96), "tiny"), tile_of(plain, 2, (96, 96)))


def test_the_crop_position_and_size_are_configurable():
    assert crop_box((120, 100), crop=40, center=(0.0, 1.0)) == (0, 60, 40, 40)
    assert crop_box((120, 100), crop=40, center=(0.5, 0.5)) == (40, 30, 40, 40)
    example = images()
    tiles, box = example_tiles(example, crop=40, center=(0.25, 0.75))
    top, left, height, width = box
    assert (top, left, height, width) == (10, 55, 40, 40)
    np.testing.assert_array_equal(
        as_uint8(tiles[3]), as_uint8(example["hr"])[top : top + 40, left : left + 40]
    )
    panel = example_panel(
        {**example, "loader": "set5/x2", "name": "x"}, crop=40, center=(0.25, 0.75)
    )
    # narrow crops are enlarged (nearest) so their labels fit
    zoom, _, _ = panel_geometry(40)
    assert zoom == 5  # 200 px: at least MIN_TILE
    np.testing.assert_array_equal(tile_of(panel, 1, (40, 40)), as_uint8(tiles[1]))


def test_an_image_smaller_than_the_crop_is_shown_whole():
    example = images(hr_size=(40, 60))
    tiles, box = example_tiles(example, crop=96)
    assert box == (0, 0, 40, 60)
    np.testing.assert_array_equal(as_uint8(tiles[3]), as_uint8(example["hr"]))


def test_the_psnr_under_a_tile_is_that_of_the_crop(monkeypatch):
    from ipe_lightning.runtime import examples

    written = []
    real_draw = examples.ImageDraw.Draw

    def recording_draw(image):
        drawer = real_draw(image)
        original = drawer.text

        def text(xy, content, **kwargs):
            written.append(content)
            return original(xy, content, **kwargs)

        drawer.text = text
        return drawer

    monkeypatch.setattr(examples.ImageDraw, "Draw", recording_draw)
    example = images()
    example_panel({**example, "loader": "set5/x2", "name": "bird"}, crop=96, channel="y")
    tiles, _ = example_tiles(example, crop=96)
    sr_psnr = float(psnr_per_image(tiles[2], tiles[3], shave=0, channel="y")[0])
    assert f"PSNR {sr_psnr:.2f} dB" in written
    assert "reference" in written  # under HR
    assert {"LR (nearest)", "bicubic", "SR", "HR"} <= set(written)


def test_a_bad_crop_configuration_is_refused(tmp_path):
    with pytest.raises(ValueError, match="center"):
        ExampleImages(str(tmp_path), center=(0.5, 1.5))
    with pytest.raises(ValueError, match="crop"):
        ExampleImages(str(tmp_path), crop=0)


class ImageLogger:
    def __init__(self) -> None:
        self.logged = []

    def log_image(self, key, images, caption):
        self.logged.append((key, caption))


def test_the_first_images_of_each_loader_are_written_and_logged(tmp_path):
    logger = ImageLogger()
    trainer = SimpleNamespace(is_global_zero=True, loggers=[logger])
    callback = ExampleImages(str(tmp_path), num_examples=2, crop=64, debug="tiny")
    callback.on_test_epoch_start(trainer, None)
    for loader_idx, loader in enumerate(["set5/x2", "set5/x3"]):
        for batch_idx, name in enumerate(["bird", "baby", "head"]):
            outputs = {"loader": loader, "name": name, **images(seed=batch_idx)}
            batch = {"channel": "y"}
            callback.on_test_batch_end(trainer, None, outputs, batch, batch_idx, loader_idx)
    callback.on_test_epoch_end(trainer, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "set5_x2_baby.png",
        "set5_x2_bird.png",
        "set5_x3_baby.png",
        "set5_x3_bird.png",
    ]
    written = np.array(Image.open(tmp_path / "set5_x3_baby.png"))
    expected = example_panel(
        {"loader": "set5/x3", "name": "baby", **images(seed=1)}, 64, channel="y", debug="tiny"
    )
    np.testing.assert_array_equal(written, expected)
    assert logger.logged[0] == ("examples/set5/x2", ["SR, bird: LR | bicubic | SR | HR"])
    assert len(logger.logged) == 4


def test_other_ranks_write_nothing(tmp_path):
    trainer = SimpleNamespace(is_global_zero=False, loggers=[])
    callback = ExampleImages(str(tmp_path / "examples"))
    callback.on_test_epoch_start(trainer, None)
    outputs = {"loader": "set5/x2", "name": "bird", **images()}
    callback.on_test_batch_end(trainer, None, outputs, None, 0, 0)
    callback.on_test_epoch_end(trainer, None)
    assert not (tmp_path / "examples").exists()


# -- the one conversion to 8 bits (ipe_lightning.bicubic.to_uint8), as panels and PNGs use it


def test_to_uint8_scales_rounds_to_the_nearest_level_and_clips():
    values = torch.tensor([-0.5, 0.0, 0.5 / 255, 1.5 / 255, 100.4 / 255, 0.999, 1.0, 7.0])
    image = values.view(1, 1, -1).expand(3, 1, -1)  # (3, H=1, W=8)
    got = to_uint8(image)
    assert got.dtype == np.uint8 and got.shape == (1, 8, 3)
    # 0.5 and 1.5 are ties: to even (0 and 2), as numpy and torch round
    assert got[0, :, 0].tolist() == [0, 0, 0, 2, 100, 255, 255, 255]


def test_to_uint8_takes_an_image_or_a_batch_of_one_and_gives_height_width_channels():
    image = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0))
    single = to_uint8(image)
    assert single.shape == (5, 7, 3)
    np.testing.assert_array_equal(to_uint8(image[None]), single)  # (1, 3, H, W): test_step's
    np.testing.assert_array_equal(single[2, 4], (image[:, 2, 4] * 255).round().numpy())
    with pytest.raises(ValueError, match=r"one .* image or a batch of one"):
        to_uint8(torch.rand(2, 3, 5, 7))


def test_panels_and_saved_outputs_use_the_one_conversion():
    from ipe_lightning.runtime import examples, outputs

    assert examples.to_uint8 is to_uint8 and outputs.to_uint8 is to_uint8


def test_a_panel_is_legible_at_a_glance_and_names_model_scale_image_and_psnr(monkeypatch):
    """Text at least 16 px, tiles at least 192 px, and a title that says what the panel shows
    wherever it is copied to."""
    from ipe_lightning.runtime import examples

    written = []
    real_draw = examples.ImageDraw.Draw

    def recording_draw(image):
        drawer = real_draw(image)
        original = drawer.text
        drawer.text = lambda xy, content, **kw: (
            written.append(content) or original(xy, content, **kw)
        )
        return drawer

    monkeypatch.setattr(examples.ImageDraw, "Draw", recording_draw)
    example = {**images(), "loader": "div2k/x4", "name": "0801"}
    panel = example_panel(example, crop=96, model="ipe_liif")
    assert written[0] == "ipe_liif · div2k ×4 · 0801"
    assert sum(text.startswith("PSNR ") for text in written) == 3  # LR, bicubic, SR
    assert examples.label_font().size >= 16
    zoom, header, _ = panel_geometry(96)
    assert 96 * zoom >= 192 and panel.shape[1] >= 4 * 192
    title = panel[:header]
    dark_rows = np.flatnonzero((title.min(axis=-1) < 100).any(axis=1))
    assert dark_rows.max() - dark_rows.min() >= 12  # the letters themselves, not 9 px text


def test_the_panels_of_a_test_name_the_model_tested(tmp_path):
    trainer = SimpleNamespace(is_global_zero=True, loggers=[ImageLogger()])
    module = SimpleNamespace(hparams={"model_name": "liif"})
    callback = ExampleImages(str(tmp_path), num_examples=1, crop=32)
    callback.on_test_epoch_start(trainer, module)
    outputs = {"loader": "set5/x2", "name": "bird", **images()}
    callback.on_test_batch_end(trainer, module, outputs, {"channel": "rgb"}, 0, 0)
    callback.on_test_epoch_end(trainer, module)
    written = np.array(Image.open(tmp_path / "set5_x2_bird.png"))
    expected = example_panel({**outputs}, 32, channel="rgb", model="liif")
    np.testing.assert_array_equal(written, expected)
    assert trainer.loggers[0].logged[0][1] == ["liif, bird: LR | bicubic | SR | HR"]
