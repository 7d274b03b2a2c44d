"""Paired bootstrap intervals of ΔPSNR: known answers, and seeds widening the interval."""

from __future__ import annotations

import numpy as np
import pytest

from ipe_lightning.report.statistics import mean_std, paired_difference


def per_image(seed: int, images: int = 40) -> np.ndarray:
    return 25 + 5 * np.random.default_rng(seed).random(images)  # images differ a lot


def test_identical_rows_give_an_interval_at_zero():
    values = per_image(0)
    interval = paired_difference(values, values.copy())
    assert (interval.mean, interval.low, interval.high) == (0.0, 0.0, 0.0)
    assert not interval.excludes_zero


def test_a_constant_shift_gives_exactly_that_shift_despite_the_spread_between_images():
    values = per_image(1)
    interval = paired_difference(values + 0.03, values)
    for bound in (interval.mean, interval.low, interval.high):
        assert bound == pytest.approx(0.03, abs=1e-9)
    assert interval.excludes_zero


def test_noise_around_a_small_shift_is_an_interval_about_it_like_the_normal_theory_one():
    rng = np.random.default_rng(2)
    reference = per_image(2, images=200)
    noise = rng.normal(0, 0.05, 200)
    interval = paired_difference(reference + 0.01 + noise, reference)
    differences = 0.01 + noise
    half = 1.96 * differences.std(ddof=1) / np.sqrt(differences.size)  # independent oracle
    assert interval.low == pytest.approx(differences.mean() - half, abs=0.002)
    assert interval.high == pytest.approx(differences.mean() + half, abs=0.002)


def test_pure_noise_is_not_significant_and_a_large_shift_is():
    rng = np.random.default_rng(3)
    reference = per_image(3, images=100)
    assert not paired_difference(reference + rng.normal(0, 0.05, 100), reference).excludes_zero
    assert paired_difference(reference + 0.05 + rng.normal(0, 0.05, 100), reference).excludes_zero


def test_with_seeds_the_seed_spread_widens_the_interval():
    rng = np.random.default_rng(4)
    reference = np.stack([per_image(5)] * 3)
    image_noise = rng.normal(0, 0.02, (1, 40))
    seed_offsets = np.array([[-0.05], [0.0], [0.05]])  # training noise between seeds
    ours = reference + 0.01 + image_noise + seed_offsets
    two_way = paired_difference(ours, reference)
    images_only = paired_difference(ours.mean(0), reference.mean(0))
    assert two_way.mean == pytest.approx(images_only.mean)
    assert two_way.high - two_way.low > 3 * (images_only.high - images_only.low)
    assert not two_way.excludes_zero and images_only.excludes_zero


def test_mean_and_sample_standard_deviation_over_seeds():
    assert mean_std([1.0]) == (1.0, None)
    mean, std = mean_std([1.0, 2.0, 3.0])
    assert (mean, std) == (2.0, pytest.approx(1.0))


def test_unpaired_shapes_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        paired_difference(np.zeros(3), np.zeros(4))
