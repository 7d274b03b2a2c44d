"""What predict tells the reader: where the images went, which inputs predict.size stretched, and
no warnings or progress escapes that are not for them (in a log file, bars are noise)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from ipe_lightning.predict import predict_files, report, stretches
from tests.support.networks import tiny_net


@pytest.fixture
def square_image(tmp_path):
    path = tmp_path / "in" / "square.png"
    path.parent.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_a_size_of_another_aspect_ratio_is_reported_as_a_stretch(square_image, tmp_path):
    summary = predict_files(tiny_net(), [square_image], tmp_path / "out", size=[24, 32])
    text = report(summary)
    assert f"wrote 1 image(s) to {tmp_path / 'out'}" in text
    assert "predict.size=[24,32] stretched square.png (16x16)" in text
    with Image.open(tmp_path / "out" / "square_24x32.png") as written:
        assert written.size == (32, 24)


def test_a_size_of_the_same_aspect_ratio_or_a_scale_is_no_stretch(square_image, tmp_path):
    for options in ({"size": [40, 40]}, {"scale": [2, 3]}):
        summary = predict_files(tiny_net(), [square_image], tmp_path / "out", **options)
        assert summary.stretched == [] and "stretched" not in report(summary)


@pytest.mark.parametrize(
    "image, size, stretched",
    [((128, 128), (480, 640), True), ((100, 150), (201, 300), False), ((3, 5), (7, 10), True)],
)
def test_a_stretch_is_a_change_of_aspect_ratio_beyond_pixel_rounding(image, size, stretched):
    assert stretches(image, size) is stretched


def test_predict_without_a_terminal_prints_no_bars_and_no_warnings(square_image, tmp_path, capfd):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predict_files(tiny_net(), [square_image], tmp_path / "out", scale=2)
    assert [str(w.message) for w in caught] == []  # e.g. torch's "NumPy array is not writable"
    captured = capfd.readouterr()
    assert "\r" not in captured.err and "\x1b" not in captured.err
    assert captured.err == captured.out == ""
