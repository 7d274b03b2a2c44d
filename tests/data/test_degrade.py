"""Generated LR follows the crop rule of docs/method.md §4 exactly; paired HR is cropped to LR·s;
``data.degrade`` picks Pillow's or MATLAB's bicubic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ipe_lightning.data.degrade import (
    DEGRADATIONS,
    crop_to_paired_lr,
    generate_lr,
    generated_lr_size,
    lr_resize,
    paired_lr_matches,
    resize_bicubic,
)
from ipe_lightning.data.matlab_resize import imresize_matlab_uint8
from ipe_lightning.errors import SettingError


def pillow_bicubic(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).resize((width, height), Image.Resampling.BICUBIC))


# (HR size, scale) -> (LR size, HR crop), worked out by hand from
# h_lr = floor(H / s_h + 1e-9), HR crop = round(h_lr · s_h) (docs/method.md §4).
CASES = [
    ((101, 77), 2.5, (40, 30), (100, 75)),  # 101/2.5 = 40.4, 77/2.5 = 30.8
    ((101, 77), [2.5, 3], (40, 25), (100, 75)),  # per axis: 77/3 = 25.67 -> 25, 25·3 = 75
    ((101, 77), 3, (33, 25), (99, 75)),
    ((64, 90), [3.3, 1.7], (19, 52), (63, 88)),  # 19·3.3 = 62.7 -> 63, 52·1.7 = 88.4 -> 88
]


@pytest.mark.parametrize(("hr_size", "scale", "lr_size", "crop_size"), CASES)
def test_generated_lr_is_pillow_bicubic_of_the_top_left_crop(
    make, rng, hr_size, scale, lr_size, crop_size
):
    hr = make.random_rgb(rng, *hr_size)
    lr, hr_crop = generate_lr(hr, scale)
    assert lr.shape[:2] == lr_size and hr_crop.shape[:2] == crop_size
    np.testing.assert_array_equal(hr_crop, hr[: crop_size[0], : crop_size[1]])
    np.testing.assert_array_equal(lr, pillow_bicubic(hr[: crop_size[0], : crop_size[1]], *lr_size))


def test_the_floor_tolerates_rounding_error_in_the_scale():
    scale = 18 / 7  # an exact x(18/7) of 18 pixels, but 18 / scale is 6.999999999999999
    assert 18 / scale < 7
    assert generated_lr_size((18, 18), scale) == (7, 7)


def test_too_small_images_are_an_error_that_gives_the_sizes(make, rng):
    with pytest.raises(ValueError, match=r"20x40 is too small for scale 30.*0x1"):
        generate_lr(make.random_rgb(rng, 20, 40), 30)


def test_resize_is_pillow_bicubic(make, rng):
    pixels = make.random_rgb(rng, 37, 53)
    np.testing.assert_array_equal(resize_bicubic(pixels, (11, 17)), pillow_bicubic(pixels, 11, 17))


def test_paired_hr_is_cropped_to_lr_times_s(make, rng):
    hr = make.random_rgb(rng, 70, 67)
    lr = np.zeros((23, 22, 3), np.uint8)  # 70 // 3, 67 // 3
    assert paired_lr_matches((70, 67), (23, 22), 3)
    assert not paired_lr_matches((70, 67), (24, 22), 3)
    np.testing.assert_array_equal(crop_to_paired_lr(hr, lr, 3), hr[:69, :66])


def matlab_bicubic(pixels: np.ndarray, scale: float | None = None, size=None) -> np.ndarray:
    """``imresize_matlab_uint8`` on the ``(C, H, W)`` tensor, back to ``(H, W, C)``."""
    chw = torch.tensor(pixels).permute(2, 0, 1)
    return imresize_matlab_uint8(chw, scale, size).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_matlab_lr_at_an_integer_scale_is_imresize_by_one_over_s_of_the_modcrop(make, rng, scale):
    hr = make.random_rgb(rng, 53, 47)
    lr, hr_crop = generate_lr(hr, scale, "matlab")
    crop = hr[: 53 // scale * scale, : 47 // scale * scale]  # the benchmark scripts' modcrop
    np.testing.assert_array_equal(hr_crop, crop)
    np.testing.assert_array_equal(lr, matlab_bicubic(crop, scale=1 / scale))
    differs = np.mean(lr != generate_lr(hr, scale, "pillow")[0])
    assert differs > 0.02  # a different resize, not Pillow's under another name


@pytest.mark.parametrize(("hr_size", "scale", "lr_size", "crop_size"), CASES)
def test_matlab_lr_at_any_scale_resizes_the_same_crop_to_the_same_size(
    make, rng, hr_size, scale, lr_size, crop_size
):
    hr = make.random_rgb(rng, *hr_size)
    lr, hr_crop = generate_lr(hr, scale, "matlab")
    crop = hr[: crop_size[0], : crop_size[1]]
    np.testing.assert_array_equal(hr_crop, crop)
    np.testing.assert_array_equal(lr, matlab_bicubic(crop, size=lr_size))


def test_a_constant_image_stays_constant_under_either_degradation(rng):
    hr = np.full((40, 31, 3), (17, 128, 240), np.uint8)
    for degrade in DEGRADATIONS:
        lr, _ = generate_lr(hr, 2.7, degrade)
        assert lr.shape == (14, 11, 3)
        np.testing.assert_array_equal(lr, np.broadcast_to(hr[0, 0], lr.shape))


def test_the_resize_of_each_name_is_the_one_it_names(make, rng):
    pixels = make.random_rgb(rng, 30, 44)
    pillow = pillow_bicubic(pixels, 9, 13)
    np.testing.assert_array_equal(lr_resize("pillow")(pixels, (9, 13)), pillow)
    np.testing.assert_array_equal(
        lr_resize("matlab")(pixels, (9, 13)), matlab_bicubic(pixels, size=(9, 13))
    )
    assert DEGRADATIONS[0] == "pillow"  # the default: the paper's training protocol


def test_an_unknown_degradation_is_a_setting_error_naming_the_option(make, rng):
    with pytest.raises(SettingError, match=r"data\.degrade must be one of pillow, matlab.*'cv2'"):
        lr_resize("cv2")
    with pytest.raises(SettingError, match=r"data\.degrade"):
        generate_lr(make.random_rgb(rng, 20, 20), 2, "bicubic")
