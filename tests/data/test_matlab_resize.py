"""MATLAB ``imresize(..., 'bicubic')``: values derived by hand and by a slow per-pixel oracle of
the published definition, and the properties the definition implies."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ipe_lightning.data.matlab_resize import (
    cubic_kernel,
    dimension_order,
    imresize_matlab,
    imresize_matlab_uint8,
    to_uint8_matlab,
)

# --- the oracle: MATLAB imresize.m's definition, one output pixel at a time, in plain Python ---


def keys_cubic(t: float) -> float:
    t = abs(t)
    if t <= 1:
        return 1.5 * t**3 - 2.5 * t**2 + 1
    if t <= 2:
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0


def taps_of(out_pixel: int, in_length: int, scale: float) -> list[tuple[float, int]]:
    """``(weight, 0-based input index)`` of 1-based ``out_pixel``, as MATLAB ``contributions``."""
    width = 4 / scale if scale < 1 else 4
    u = out_pixel / scale + 0.5 * (1 - 1 / scale)
    pairs = []
    for j in range(math.floor(u - width / 2), math.floor(u - width / 2) + math.ceil(width) + 2):
        weight = scale * keys_cubic(scale * (u - j)) if scale < 1 else keys_cubic(u - j)
        mirrored = [*range(in_length), *reversed(range(in_length))][(j - 1) % (2 * in_length)]
        pairs.append((weight, mirrored))
    total = sum(w for w, _ in pairs)
    return [(w / total, j) for w, j in pairs]


def oracle_2d(image: np.ndarray, scale_h: float, scale_w: float) -> np.ndarray:
    """The 2-D weighted sum per output pixel (not two passes), for a ``(H, W)`` array."""
    height, width = image.shape
    out_h, out_w = math.ceil(scale_h * height), math.ceil(scale_w * width)
    result = np.zeros((out_h, out_w))
    for i in range(out_h):
        rows = taps_of(i + 1, height, scale_h)
        for j in range(out_w):
            cols = taps_of(j + 1, width, scale_w)
            result[i, j] = sum(wr * wc * image[r, c] for wr, r in rows for wc, c in cols)
    return result


def photo_crop(height: int = 24, width: int = 20) -> np.ndarray:
    import skimage.data

    green = skimage.data.astronaut()[100 : 100 + height, 200 : 200 + width, 1]
    return green.astype(np.float64)


# --- hand-derived values ---


def test_kernel_is_keys_cubic_with_a_minus_half():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5], dtype=torch.float64)
    # Keys (1981) with a = -0.5: 1, 0.8671875, 0.5625, 0, -0.0625, 0, 0
    expected = [1.0, 0.8671875, 0.5625, 0.0, -0.0625, 0.0, 0.0]
    assert cubic_kernel(x).tolist() == expected
    assert cubic_kernel(-x).tolist() == expected


def test_first_pixel_of_a_2x_upscale_mirrors_the_border_symmetrically():
    # u = 1/2 + 0.25 = 0.75; taps j = -1, 0, 1, 2 get cubic(1.75, 0.75, -0.25, -1.25) =
    # -0.0234375, 0.2265625, 0.8671875, -0.0703125. Mirroring sends j = 0 to pixel 1 and j = -1 to
    # pixel 2, so out[0] = 1.09375 x1 - 0.09375 x2 (replicating the edge would give -0.0703125).
    signal = torch.zeros(1, 1, 8, dtype=torch.float64)
    signal[..., 1] = 1.0
    assert imresize_matlab(signal, scale=(1, 2))[0, 0, 0].item() == pytest.approx(
        -0.09375, abs=1e-15
    )
    signal = torch.zeros(1, 1, 8, dtype=torch.float64)
    signal[..., 0] = 1.0
    assert imresize_matlab(signal, scale=(1, 2))[0, 0, 0].item() == pytest.approx(
        1.09375, abs=1e-15
    )


def test_a_ramp_downscaled_by_2_lands_on_matlab_sample_centres():
    # Output x (1-based) sits at input u = 2x - 0.5; symmetric weights reproduce a ramp, so away
    # from the borders (4 input pixels, the stretched kernel's half-width) out[x] = ramp(u).
    ramp = torch.arange(32, dtype=torch.float64).view(1, 1, 32)
    out = imresize_matlab(ramp, scale=(1, 0.5))[0, 0]
    assert out.shape == (16,)
    centres = [2 * x - 0.5 - 1 for x in range(1, 17)]  # 0-based ramp values
    assert out[3:-3].tolist() == pytest.approx(centres[3:-3], abs=1e-12)
    assert out[0].item() != pytest.approx(centres[0])  # the border is mirrored, not extrapolated


@pytest.mark.parametrize(
    ("size", "scale", "expected"),
    [((2040, 1356), 1 / 4, (510, 339)), ((7, 5), 0.5, (4, 3)), ((7, 5), 1.5, (11, 8))],
)
def test_output_size_is_ceil_of_scale_times_input(size, scale, expected):
    image = torch.zeros(1, *size)
    assert tuple(imresize_matlab(image, scale).shape[-2:]) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2.5, 3), (3.5, 4), (0.5, 1), (254.5, 255), (2.4999, 2), (-7.0, 0), (300.0, 255)],
)
def test_uint8_conversion_saturates_then_rounds_half_away_from_zero(value, expected):
    assert to_uint8_matlab(torch.tensor([value], dtype=torch.float64)).item() == expected


def test_uint8_conversion_is_not_torch_round_half_to_even():
    halves = torch.tensor([0.5, 1.5, 2.5, 3.5], dtype=torch.float64)
    assert to_uint8_matlab(halves).tolist() == [1, 2, 3, 4]
    assert torch.round(halves).tolist() == [0, 2, 2, 4]


# --- against the per-pixel oracle ---


@pytest.mark.parametrize("scale", [1 / 2, 1 / 4, 1 / 3, 0.6, 2, 1.5, (0.5, 0.25), (2, 1 / 3)])
def test_matches_the_per_pixel_oracle(scale):
    image = photo_crop(8, 8) if scale in (1 / 2, 1 / 4) else photo_crop()
    scale_h, scale_w = scale if isinstance(scale, tuple) else (scale, scale)
    expected = oracle_2d(image, scale_h, scale_w)
    result = imresize_matlab(torch.from_numpy(image)[None], scale)[0].numpy()
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-10)


def test_uint8_version_rounds_after_each_pass_as_matlab_does_for_uint8_input():
    image = photo_crop().astype(np.uint8)
    rows_first = np.floor(np.clip(oracle_2d(image.astype(float), 0.5, 1), 0, 255) + 0.5)
    expected = np.floor(np.clip(oracle_2d(rows_first, 1, 0.5), 0, 255) + 0.5)
    result = imresize_matlab_uint8(torch.from_numpy(image)[None], 0.5)[0]
    assert result.dtype == torch.uint8
    np.testing.assert_array_equal(result.numpy(), expected)


def test_the_dimension_with_the_smaller_scale_is_resized_first_rows_on_a_tie():
    assert dimension_order((0.5, 0.5)) == (0, 1)
    assert dimension_order((0.5, 0.25)) == (1, 0)
    assert dimension_order((0.25, 0.5)) == (0, 1)
    # For uint8 the order is visible: columns (scale 0.25) first, rounded, then rows.
    image = torch.from_numpy(photo_crop(16, 16).astype(np.uint8))[None]
    columns_first = imresize_matlab_uint8(imresize_matlab_uint8(image, (1, 0.25)), (0.5, 1))
    assert torch.equal(imresize_matlab_uint8(image, (0.5, 0.25)), columns_first)


# --- properties ---


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 0.7, 1.5, 2, 3, (0.5, 3)])
def test_a_constant_image_stays_constant(scale):
    image = torch.full((3, 13, 11), 0.37, dtype=torch.float64)
    assert torch.allclose(imresize_matlab(image, scale), torch.tensor(0.37, dtype=torch.float64))


@pytest.mark.parametrize("scale", [(0.5, 0.5), (1 / 3, 0.75), (2, 0.25)])
def test_resizing_height_then_width_equals_the_2d_resize(scale):
    image = torch.from_numpy(photo_crop())[None]
    one_by_one = imresize_matlab(imresize_matlab(image, (scale[0], 1)), (1, scale[1]))
    torch.testing.assert_close(one_by_one, imresize_matlab(image, scale), rtol=0, atol=1e-10)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_downscale_of_upscale_gives_the_image_back_approximately(scale):
    # Not the identity: the downscale's widened kernel low-passes what the upscale's cubic passed.
    # Measured (0..255 scale, 24x24): a smooth sine pattern comes back within max 0.78, mean 0.12
    # at x2, x3 and x4; the astronaut crop (hair, sharp edges) within max 28.2, mean 1.35.
    # Asserted with margin.
    y, x = torch.meshgrid(*[torch.arange(24, dtype=torch.float64)] * 2, indexing="ij")
    smooth = (128 + 100 * torch.sin(x / 4) * torch.cos(y / 5))[None]
    photo = torch.from_numpy(photo_crop(24, 24))[None]
    for image, max_error, mean_error in ((smooth, 1.0, 0.15), (photo, 32.0, 1.5)):
        back = imresize_matlab(imresize_matlab(image, scale), 1 / scale)
        assert back.shape == image.shape
        error = (back - image).abs()
        assert error.max().item() < max_error and error.mean().item() < mean_error


def test_size_argument_sets_per_axis_scales_from_out_over_in():
    image = torch.from_numpy(photo_crop())[None]
    torch.testing.assert_close(
        imresize_matlab(image, size=(12, 5)), imresize_matlab(image, (0.5, 0.25)), rtol=0, atol=0
    )


def test_batched_equals_per_image_and_chw_is_accepted():
    batch = torch.rand(3, 2, 9, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    together = imresize_matlab(batch, 0.5)
    for item, result in zip(batch, together, strict=True):
        torch.testing.assert_close(imresize_matlab(item, 0.5), result, rtol=0, atol=0)


def test_computes_in_float64_on_the_input_device():
    result = imresize_matlab(torch.rand(3, 8, 8, dtype=torch.float32), 0.5)
    assert result.dtype == torch.float64 and result.device.type == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_result_equals_cpu_result():
    image = torch.from_numpy(photo_crop())[None]
    on_gpu = imresize_matlab(image.cuda(), 1 / 3)
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), imresize_matlab(image, 1 / 3), rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one"),
        ({"scale": 0.5, "size": (2, 2)}, "exactly one"),
        ({"scale": -1}, "scale"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        imresize_matlab(torch.zeros(1, 4, 4), **kwargs)
