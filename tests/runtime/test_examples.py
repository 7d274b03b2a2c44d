"""Example panels: LR (nearest) | bicubic | SR | HR of the central HR crop, the first
``num_examples`` images of each test loader, written by rank 0 only."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from ipe_lightning.runtime.examples import ExampleImages, example_panel


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


def test_the_panel_is_lr_bicubic_sr_hr_of_the_central_crop():
    example = images()
    panel = example_panel(example, crop=96)
    assert panel.shape == (96, 4 * 96, 3) and panel.dtype == np.uint8
    top, left = (120 - 96) // 2, (100 - 96) // 2
    lr_nearest = example["lr"].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    for index, image in enumerate([lr_nearest, example["bicubic"], example["sr"], example["hr"]]):
        expected = as_uint8(image)[top : top + 96, left : left + 96]
        np.testing.assert_array_equal(panel[:, index * 96 : (index + 1) * 96], expected)


def test_an_image_smaller_than_the_crop_is_shown_whole():
    example = images(hr_size=(40, 60))
    panel = example_panel(example, crop=96)
    assert panel.shape == (40, 4 * 60, 3)
    np.testing.assert_array_equal(panel[:, 3 * 60 :], as_uint8(example["hr"]))


class ImageLogger:
    def __init__(self) -> None:
        self.logged = []

    def log_image(self, key, images, caption):
        self.logged.append((key, caption))


def test_the_first_images_of_each_loader_are_written_and_logged(tmp_path):
    logger = ImageLogger()
    trainer = SimpleNamespace(is_global_zero=True, loggers=[logger])
    callback = ExampleImages(str(tmp_path), num_examples=2)
    callback.on_test_epoch_start(trainer, None)
    for loader_idx, loader in enumerate(["set5/x2", "set5/x3"]):
        for batch_idx, name in enumerate(["bird", "baby", "head"]):
            outputs = {"loader": loader, "name": name, **images(seed=batch_idx)}
            callback.on_test_batch_end(trainer, None, outputs, None, batch_idx, loader_idx)
    callback.on_test_epoch_end(trainer, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "set5_x2_baby.png",
        "set5_x2_bird.png",
        "set5_x3_baby.png",
        "set5_x3_bird.png",
    ]
    written = np.array(Image.open(tmp_path / "set5_x3_baby.png"))
    np.testing.assert_array_equal(written, example_panel(images(seed=1)))
    assert logger.logged[0] == ("examples/set5/x2", ["bird: LR | bicubic | SR | HR"])
    assert len(logger.logged) == 4


def test_other_ranks_write_nothing(tmp_path):
    trainer = SimpleNamespace(is_global_zero=False, loggers=[])
    callback = ExampleImages(str(tmp_path / "examples"))
    callback.on_test_epoch_start(trainer, None)
    outputs = {"loader": "set5/x2", "name": "bird", **images()}
    callback.on_test_batch_end(trainer, None, outputs, None, 0, 0)
    callback.on_test_epoch_end(trainer, None)
    assert not (tmp_path / "examples").exists()
