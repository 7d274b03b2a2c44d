"""Training samples follow docs/method.md §3, checked by an oracle that knows nothing of the code.

The HR image is position-coded (pixel (r, c) holds R = r, G = c), so every target pixel tells where
it came from. From ``coord``/``cell`` and ``gt`` alone the oracle recovers the crop (position and
side) and which of the eight flips/transposes was applied, then rebuilds the expected LR with
Pillow.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ipe_lightning.coords import sample_pixels
from ipe_lightning.data.crops import training_sample

# The eight dihedral maps from a position (i, j) of the augmented n x n crop to the position
# (u, v) of the original crop it shows.
DIHEDRAL = [
    lambda i, j, n: (i, j),
    lambda i, j, n: (n - 1 - i, j),
    lambda i, j, n: (i, n - 1 - j),
    lambda i, j, n: (n - 1 - i, n - 1 - j),
    lambda i, j, n: (j, i),
    lambda i, j, n: (n - 1 - j, i),
    lambda i, j, n: (j, n - 1 - i),
    lambda i, j, n: (n - 1 - j, n - 1 - i),
]


def recover(sample: dict[str, torch.Tensor]) -> tuple[int, int, int, int]:
    """``(side, top, left, dihedral map)`` of a sample, from its queries alone."""
    cell = sample["cell"].double()
    side = round(2 / cell[0, 0].item())
    assert torch.allclose(cell, torch.full_like(cell, 2 / side))
    local = (sample["coord"].double() + 1) * side / 2 - 0.5  # pixel index of each centre
    assert torch.allclose(local, local.round(), atol=1e-4), "queries are not at pixel centres"
    i, j = local.round().long().numpy().T
    rows, cols = (sample["gt"][:, :2] * 255).round().long().numpy().T
    found = []
    for index, dihedral in enumerate(DIHEDRAL):
        u, v = dihedral(i, j, side)
        tops, lefts = rows - u, cols - v
        if (tops == tops[0]).all() and (lefts == lefts[0]).all():
            found.append((side, int(tops[0]), int(lefts[0]), index))
    assert len(found) == 1, f"queries fit {len(found)} flip/transposes of a crop, not one"
    return found[0]


def dihedral_apply(pixels: np.ndarray, index: int) -> np.ndarray:
    n = pixels.shape[0]
    i, j = np.mgrid[0:n, 0:n]
    u, v = DIHEDRAL[index](i, j, n)
    return pixels[u, v]


@pytest.fixture
def coded(rng) -> np.ndarray:
    """Position-coded 120 x 100 image with a random blue channel (texture for the bicubic)."""
    rows, cols = np.mgrid[0:120, 0:100]
    blue = rng.integers(0, 256, (120, 100))
    return np.stack([rows, cols, blue], axis=-1).astype(np.uint8)


def sample(image, seed, **options):
    options = {"inp_size": 12, "scale_min": 1.0, "scale_max": 4.0, "sample_q": 100} | options
    return training_sample(image, np.random.default_rng(seed), **options)


@pytest.mark.parametrize("seed", range(12))
def test_lr_is_pillow_bicubic_of_the_crop_with_the_same_augmentation_as_hr(coded, seed):
    item = sample(coded, seed)
    side, top, left, flip = recover(item)
    crop = coded[top : top + side, left : left + side]
    lr = np.asarray(Image.fromarray(crop).resize((12, 12), Image.Resampling.BICUBIC))
    expected = torch.from_numpy(dihedral_apply(lr, flip)).permute(2, 0, 1).float() / 255
    assert item["lr"].dtype == torch.float32 and item["lr"].shape == (3, 12, 12)
    torch.testing.assert_close(item["lr"], expected, rtol=0, atol=0)


@pytest.mark.parametrize("seed", range(6))
def test_every_target_is_the_hr_pixel_at_its_coordinate(coded, seed):
    item = sample(coded, seed)
    side, top, left, flip = recover(item)
    hr = dihedral_apply(coded[top : top + side, left : left + side], flip)
    hr = torch.from_numpy(hr).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(sample_pixels(hr, item["coord"]), item["gt"], rtol=0, atol=0)


def test_queries_are_distinct_pixels_of_the_crop_and_every_pixel_without_sample_q(coded):
    item = sample(coded, 3, sample_q=100)
    assert item["coord"].shape == (100, 2) and item["gt"].shape == (100, 3)
    assert len(torch.unique(item["coord"], dim=0)) == 100  # without replacement
    everything = sample(coded, 3, sample_q=None)
    side = recover(everything)[0]
    assert everything["coord"].shape == (side * side, 2)
    assert len(torch.unique(everything["gt"][:, :2], dim=0)) == side * side


def test_observed_scales_and_augmentations_cover_the_configured_range(coded):
    found = [recover(sample(coded, seed, sample_q=20)) for seed in range(300)]
    sides = np.array([side for side, *_ in found])
    assert sides.min() >= 12 and sides.max() <= 48  # round(12·1) .. round(12·4)
    assert sides.min() <= 14 and sides.max() >= 46  # both ends reached
    assert len(np.unique(sides)) >= 30
    assert {flip for *_, flip in found} == set(range(8))
    # uniform positions: top in [0, 120 - side], left in [0, 100 - side], both ends reached
    where = np.array([(top / (120 - side), left / (100 - side)) for side, top, left, _ in found])
    assert where.min() >= 0 and where.max() <= 1
    assert (where.min(axis=0) < 0.05).all() and (where.max(axis=0) > 0.95).all()


def test_scale_range_is_configurable(coded):
    sides = {recover(sample(coded, seed, scale_min=2.5, scale_max=2.5))[0] for seed in range(5)}
    assert sides == {30}
    wide = [sample(coded, seed, scale_min=1, scale_max=8, inp_size=12) for seed in range(40)]
    assert max(recover(item)[0] for item in wide) > 48


def test_without_augmentation_the_crop_is_never_flipped(coded):
    flips = {recover(sample(coded, seed, augment=False))[3] for seed in range(20)}
    assert flips == {0}


def test_the_same_seed_gives_the_same_sample_and_another_seed_another(coded):
    first, again, other = sample(coded, 7), sample(coded, 7), sample(coded, 8)
    for key in first:
        torch.testing.assert_close(first[key], again[key], rtol=0, atol=0)
    assert not torch.equal(first["gt"], other["gt"])


def test_impossible_requests_are_errors(coded):
    with pytest.raises(ValueError, match="does not fit an image of 120x100"):
        sample(coded, 0, scale_min=10, scale_max=10)
    with pytest.raises(ValueError, match="sample_q=500 exceeds the 144 pixels"):
        sample(coded, 0, scale_min=1, scale_max=1, sample_q=500)
    with pytest.raises(ValueError, match="scale_min <= scale_max"):
        sample(coded, 0, scale_min=3, scale_max=2)
