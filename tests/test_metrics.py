"""Claims about the SR metrics (docs/method.md §4), each checked against an independent oracle."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import kornia
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ipe_lightning.metrics import (
    SRPSNR,
    SRSSIM,
    prepare,
    psnr_per_image,
    rgb_to_y,
    shave_border,
    ssim_map,
    ssim_per_image,
)


def _pair(batch: int = 3, height: int = 40, width: int = 36, noise: float = 0.05, seed: int = 0):
    """An HR batch and a noisy SR of it, both in [0, 1], float64."""
    generator = torch.Generator().manual_seed(seed)
    hr = torch.rand(batch, 3, height, width, generator=generator, dtype=torch.float64)
    sr = (hr + noise * torch.randn(hr.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return sr, hr


def _numpy_y(image: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr luma of an (H, W, 3) array in [0, 1], written out by hand."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return (65.481 * r + 128.553 * g + 24.966 * b + 16.0) / 255.0


def _numpy_crop(image: torch.Tensor, shave: int, channel: str) -> np.ndarray:
    """Oracle side of `prepare`: one (3, H, W) tensor -> shaved (H', W'[, 3]) float64 array."""
    array = image.permute(1, 2, 0).numpy().astype(np.float64)
    if shave:
        array = array[shave:-shave, shave:-shave]
    return _numpy_y(array) if channel == "y" else array


def _numpy_psnr(sr: np.ndarray, hr: np.ndarray) -> float:
    return -10.0 * math.log10(float(np.mean((sr - hr) ** 2)))


# --- Y conversion -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rgb", "expected_times_255"),
    [
        ((0.0, 0.0, 0.0), 16.0),
        ((1.0, 1.0, 1.0), 16.0 + 65.481 + 128.553 + 24.966),  # = 235
        ((1.0, 0.0, 0.0), 16.0 + 65.481),
        ((0.0, 1.0, 0.0), 16.0 + 128.553),
        ((0.0, 0.0, 1.0), 16.0 + 24.966),
    ],
)
def test_y_of_pure_colours_is_bt601_studio_swing(rgb, expected_times_255):
    image = torch.tensor(rgb, dtype=torch.float64).view(1, 3, 1, 1).expand(2, 3, 4, 5)
    y = rgb_to_y(image)
    assert y.shape == (2, 1, 4, 5)
    torch.testing.assert_close(y, torch.full_like(y, expected_times_255 / 255), rtol=0, atol=1e-12)


def test_y_of_black_and_white_are_16_and_235():
    image = torch.stack([torch.zeros(3, 1, 1), torch.ones(3, 1, 1)]).double()
    assert rgb_to_y(image).flatten().tolist() == pytest.approx([16 / 255, 235 / 255], abs=1e-12)


def test_y_is_not_the_full_range_luma():
    # Guard against the 0.299/0.587/0.114 convention (e.g. kornia's rgb_to_y), which keeps
    # grey levels unchanged; studio swing maps v to (16 + 219 v) / 255.
    grey = torch.linspace(0, 1, 5, dtype=torch.float64).view(5, 1, 1, 1).expand(5, 3, 1, 1)
    expected = (16 + 219 * grey[:, :1]) / 255
    torch.testing.assert_close(rgb_to_y(grey), expected, rtol=0, atol=1e-12)
    assert (rgb_to_y(grey) - grey[:, :1]).abs().max() > 0.06


# --- shave and prepare --------------------------------------------------------------------------


def test_shave_border_drops_each_border():
    image = torch.arange(2 * 3 * 7 * 9, dtype=torch.float64).view(2, 3, 7, 9)
    torch.testing.assert_close(shave_border(image, 2), image[:, :, 2:5, 2:7])
    assert shave_border(image, 0) is image


def test_prepare_y_equals_converting_then_shaving():
    sr, hr = _pair()
    sr_y, hr_y = prepare(sr, hr, shave=3, channel="y")
    torch.testing.assert_close(sr_y, shave_border(rgb_to_y(sr), 3))
    torch.testing.assert_close(hr_y, shave_border(rgb_to_y(hr), 3))


# --- PSNR ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["rgb", "y"])
@pytest.mark.parametrize("shave", [0, 4])
def test_psnr_matches_numpy_and_skimage(channel, shave):
    sr, hr = _pair(height=33, width=41)
    ours = psnr_per_image(sr, hr, shave=shave, channel=channel)
    assert ours.shape == (3,)
    for i in range(3):
        sr_np, hr_np = _numpy_crop(sr[i], shave, channel), _numpy_crop(hr[i], shave, channel)
        assert ours[i].item() == pytest.approx(_numpy_psnr(sr_np, hr_np), abs=1e-9)
        reference = peak_signal_noise_ratio(hr_np, sr_np, data_range=1)
        assert ours[i].item() == pytest.approx(reference, abs=1e-4)


def test_float32_input_is_measured_in_float64():
    sr, hr = _pair(noise=0.01)
    ours = psnr_per_image(sr.float(), hr.float(), shave=2, channel="y")
    for i in range(3):
        sr_np = _numpy_crop(sr[i].float().double(), 2, "y")
        hr_np = _numpy_crop(hr[i].float().double(), 2, "y")
        assert ours[i].item() == pytest.approx(_numpy_psnr(sr_np, hr_np), abs=1e-9)


def test_psnr_of_identical_images_is_infinite():
    _, hr = _pair(batch=1)
    assert psnr_per_image(hr, hr.clone(), shave=1, channel="rgb").item() == math.inf


def test_shaved_border_does_not_affect_psnr():
    sr, hr = _pair(batch=1, noise=0.02)
    spoiled = sr.clone()
    spoiled[..., :3, :] = 1 - spoiled[..., :3, :]
    spoiled[..., :, -3:] = 0
    torch.testing.assert_close(
        psnr_per_image(spoiled, hr, shave=3, channel="rgb"),
        psnr_per_image(sr, hr, shave=3, channel="rgb"),
    )
    assert psnr_per_image(spoiled, hr, shave=2, channel="rgb") < psnr_per_image(
        sr, hr, shave=2, channel="rgb"
    )


# --- SSIM ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", ["rgb", "y"])
@pytest.mark.parametrize("shave", [0, 3])
def test_ssim_matches_skimage_gaussian_ssim(channel, shave):
    """Valid filtering equals skimage's crop of its reflect-padded SSIM map.

    skimage with ``gaussian_weights=True`` filters with a Gaussian of radius
    ``int(truncate * sigma + 0.5) = int(3.5 * 1.5 + 0.5) = 5`` (11 taps, the same normalised
    window), pads by reflection, then averages the map after cropping ``(11 - 1) // 2 = 5`` pixels
    per border. The kept positions are exactly those whose 11x11 window lies inside the image, so
    the padding never enters and the mean is the mean of our 'valid' map. With ``channel_axis`` it
    averages the per-channel means, which (equal-sized maps) is the mean of all channel maps.
    """
    sr, hr = _pair(height=30, width=27, noise=0.1)
    ours = ssim_per_image(sr, hr, shave=shave, channel=channel)
    assert ours.shape == (3,)
    for i in range(3):
        sr_np, hr_np = _numpy_crop(sr[i], shave, channel), _numpy_crop(hr[i], shave, channel)
        reference = structural_similarity(
            hr_np,
            sr_np,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1,
            channel_axis=-1 if channel == "rgb" else None,
        )
        assert ours[i].item() == pytest.approx(reference, abs=1e-4)


def test_ssim_matches_kornia_valid_ssim():
    """A second library: kornia's Gaussian SSIM with ``padding="valid"`` gives the same map."""
    sr, hr = _pair(height=29, width=31, noise=0.1)
    reference = kornia.metrics.ssim(sr, hr, 11, max_val=1.0, padding="valid")
    torch.testing.assert_close(ssim_map(sr, hr), reference, rtol=0, atol=1e-9)
    torch.testing.assert_close(
        ssim_per_image(sr, hr, shave=0, channel="rgb"), reference.mean(dim=(1, 2, 3))
    )


def test_ssim_map_equals_direct_windowed_statistics():
    """At a few positions the map equals Wang et al.'s formula with explicit 11x11 weighted sums."""
    sr, hr = _pair(batch=1, height=15, width=14, noise=0.2)
    full = ssim_map(sr, hr)
    assert full.shape == (1, 3, 5, 4)  # valid: H - 10, W - 10
    offsets = np.arange(11) - 5.0
    g = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    w = g / g.sum()
    for c, i, j in [(0, 0, 0), (1, 4, 3), (2, 2, 1)]:
        x = sr[0, c, i : i + 11, j : j + 11].numpy()
        y = hr[0, c, i : i + 11, j : j + 11].numpy()
        mx, my = (w * x).sum(), (w * y).sum()
        vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
        cxy = (w * (x - mx) * (y - my)).sum()
        c1, c2 = 0.01**2, 0.03**2
        expected = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        assert full[0, c, i, j].item() == pytest.approx(expected, abs=1e-12)


def test_ssim_of_identical_images_is_one_and_of_noise_is_less():
    sr, hr = _pair(noise=0.1)
    torch.testing.assert_close(
        ssim_per_image(hr, hr.clone(), shave=2, channel="rgb"), torch.ones(3, dtype=torch.float64)
    )
    assert (ssim_per_image(sr, hr, shave=2, channel="rgb") < 0.99).all()


# --- mean over images, not pooled error ---------------------------------------------------------


def test_psnr_is_mean_of_per_image_values_not_pooled_mse():
    # Image 0 is off by 0.1 everywhere (PSNR 20 dB), image 1 by 0.001 (PSNR 60 dB).
    hr = torch.full((2, 3, 8, 8), 0.5, dtype=torch.float64)
    sr = hr.clone()
    sr[0] += 0.1
    sr[1] += 0.001
    mean_of_images = (20.0 + 60.0) / 2
    pooled = -10 * math.log10((0.1**2 + 0.001**2) / 2)
    assert abs(mean_of_images - pooled) > 15  # the two conventions really differ here

    torch.testing.assert_close(
        psnr_per_image(sr, hr, shave=1, channel="rgb"),
        torch.tensor([20.0, 60.0], dtype=torch.float64),
    )
    metric = SRPSNR()
    metric.update(sr, hr, shave=1, channel="rgb")
    assert metric.compute().item() == pytest.approx(mean_of_images, abs=1e-9)


# --- the torchmetrics classes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric_class", "per_image"), [(SRPSNR, psnr_per_image), (SRSSIM, ssim_per_image)]
)
def test_metric_accumulates_mean_over_all_images_across_updates(metric_class, per_image):
    sr, hr = _pair(batch=6, height=24, width=26, noise=0.08)
    metric = metric_class()
    for start, stop in [(0, 1), (1, 4), (4, 6)]:  # batches of 1, 3 and 2 images
        metric.update(sr[start:stop], hr[start:stop], shave=2, channel="y")
    expected = per_image(sr, hr, shave=2, channel="y").mean()
    torch.testing.assert_close(metric.compute(), expected)
    # a weighted-by-batch mean of batch means would differ: check that our data makes it so
    batch_means = torch.stack(
        [
            per_image(sr[a:b], hr[a:b], shave=2, channel="y").mean()
            for a, b in [(0, 1), (1, 4), (4, 6)]
        ]
    )
    assert abs(batch_means.mean() - expected) > 1e-6

    metric.reset()
    metric.update(sr[:2], hr[:2], shave=2, channel="rgb")
    torch.testing.assert_close(
        metric.compute(), per_image(sr[:2], hr[:2], shave=2, channel="rgb").mean()
    )


@pytest.mark.parametrize(
    ("metric_class", "per_image"), [(SRPSNR, psnr_per_image), (SRSSIM, ssim_per_image)]
)
def test_forward_gives_the_batch_mean_and_merged_states_give_the_mean_over_both(
    metric_class, per_image
):
    """``metric(batch)`` reports that batch alone while accumulating (no full-state update), and
    the states of two metrics merge by summing: what the DDP sync of the test step relies on."""
    sr, hr = _pair(batch=5)
    first, second = metric_class(), metric_class()
    torch.testing.assert_close(
        first(sr[:2], hr[:2], shave=2, channel="y"),
        per_image(sr[:2], hr[:2], shave=2, channel="y").mean(),
    )
    second.update(sr[2:], hr[2:], shave=2, channel="y")
    first.merge_state(second)
    torch.testing.assert_close(first.compute(), per_image(sr, hr, shave=2, channel="y").mean())
    assert metric_class.higher_is_better  # checkpoint monitors read it: PSNR and SSIM rise


def test_empty_metric_computes_nan():
    with pytest.warns(UserWarning, match="before the ``update`` method"):
        assert math.isnan(SRPSNR().compute().item())


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("function", [psnr_per_image, ssim_per_image])
def test_mismatched_shapes_are_rejected(function):
    sr, hr = _pair()
    with pytest.raises(ValueError, match="same shape"):
        function(sr, hr[..., :-1], shave=0, channel="rgb")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        function(sr[:, :1], hr[:, :1], shave=0, channel="rgb")


def test_unknown_channel_is_rejected():
    sr, hr = _pair()
    with pytest.raises(ValueError, match="channel must be 'rgb' or 'y'"):
        psnr_per_image(sr, hr, shave=0, channel="ycbcr")


def test_shave_that_leaves_no_pixels_is_rejected():
    sr, hr = _pair(height=8, width=20)
    with pytest.raises(ValueError, match="leaves no pixels"):
        psnr_per_image(sr, hr, shave=4, channel="y")
    with pytest.raises(ValueError, match="non-negative int"):
        psnr_per_image(sr, hr, shave=-1, channel="y")


def test_ssim_needs_a_full_window_after_shaving():
    sr, hr = _pair(height=20, width=30)
    assert ssim_per_image(sr, hr, shave=4, channel="y").shape == (3,)  # 12x22 left: fine
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim_per_image(sr, hr, shave=5, channel="y")  # 10x20 left


# --- DDP synchronisation ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        sr, hr = _pair(batch=5, height=24, width=24, noise=0.08)
        # uneven split: rank 0 sees images 0-1, rank 1 sees images 2-4
        part = slice(0, 2) if rank == 0 else slice(2, 5)
        results = []
        for metric in (SRPSNR(), SRSSIM()):
            metric.update(sr[part], hr[part], shave=2, channel="y")
            results.append(metric.compute())
        torch.save(torch.stack(results), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # a few seconds of subprocesses; runs in make test-slow and CI
def test_two_process_gloo_sync_equals_one_process(tmp_path):
    world_size = 2
    mp.spawn(_ddp_worker, args=(world_size, _free_port(), str(tmp_path)), nprocs=world_size)
    sr, hr = _pair(batch=5, height=24, width=24, noise=0.08)
    expected = []
    for metric in (SRPSNR(), SRSSIM()):
        metric.update(sr, hr, shave=2, channel="y")
        expected.append(metric.compute())
    expected = torch.stack(expected)
    for rank in range(world_size):
        torch.testing.assert_close(torch.load(tmp_path / f"rank{rank}.pt"), expected)


@pytest.mark.parametrize(
    "metric_class, per_image", [(SRPSNR, psnr_per_image), (SRSSIM, ssim_per_image)]
)
def test_metric_of_precomputed_values_equals_metric_of_the_images(metric_class, per_image):
    sr, hr = _pair(batch=3, height=24, width=24, noise=0.05)
    from_images, from_values = metric_class(), metric_class()
    from_images.update(sr, hr, shave=2, channel="y")
    from_values.update(per_image(sr, hr, shave=2, channel="y"))
    torch.testing.assert_close(from_values.compute(), from_images.compute())
