"""The bundled photos: read from the installed scikit-image, a fixed split with no overlap."""

from __future__ import annotations

import numpy as np

from ipe_lightning.data import bundled
from ipe_lightning.data.images import decode_rgb


def test_split_is_disjoint_and_keeps_the_stereo_pair_on_one_side():
    train, held_out = set(bundled.TRAIN_PHOTOS), set(bundled.HELD_OUT_PHOTOS)
    assert not train & held_out
    assert {"motorcycle_left", "motorcycle_right"} <= train
    assert held_out == {"chelsea", "rocket"}
    assert len(train) == 7


def test_every_photo_is_an_installed_colour_file():
    for path in bundled.train_photos() + bundled.held_out_photos():
        assert (
            path.is_file() and path.parent.name == "data" and path.parent.parent.name == "skimage"
        )
        pixels = decode_rgb(path)
        assert pixels.shape[2] == 3 and min(pixels.shape[:2]) >= 300
        # colour, not gray stored as RGB
        assert np.abs(pixels[..., 0].astype(int) - pixels[..., 2]).mean() > 5
