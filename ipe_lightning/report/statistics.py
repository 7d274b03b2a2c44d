"""Is a difference real? Mean ± std over seeds and paired bootstrap intervals of ΔPSNR.

Two rows of a table measured the same images, so their per-image differences are paired: the
noise of "which images happen to be in the set" cancels, and the interval is much tighter than
one built from each row's spread alone.

- One seed per row: ``scipy.stats.bootstrap`` with ``paired=True`` over the images, percentile
  interval (BCa is undefined when every difference is the same, e.g. identical rows).
- Several seeds, paired by seed number: seeds and images are two crossed random factors, and
  ``scipy.stats.bootstrap`` resamples one axis only; the interval is the percentile interval of
  the two-way ("pigeonhole", Owen 2007) bootstrap, which draws seeds and images independently
  with replacement, so both the seed spread and the image spread widen it.

Below :data:`MIN_IMAGES` paired images an interval is computed but claims nothing
(:attr:`Interval.meaningful`): the report gives it no mark and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 4999
RANDOM_SEED = 0  # a report is reproducible: the same results give the same intervals
# Fewer paired images than this and the percentile bootstrap interval is not a 95 % interval:
# resampling n images sees only the n differences at hand, so the interval is about their range
# and shrinks with their luck. Measured (normal differences, 1000 trials, 2000 resamples): the
# nominal 95 % interval holds the true mean 53 % of the time with 2 images, 77 % with 3, 84 %
# with 5, 90 % with 10, 92 % with 20. From 10 on it is within a few points of its nominal level
# (as near as the percentile interval gets before ~30 images); below, a mark would be wrong
# several times in 20, and a debug set of 2 images would be sold as evidence.
MIN_IMAGES = 10


@dataclass(frozen=True)
class Interval:
    """The mean of a difference and its confidence interval."""

    mean: float
    low: float
    high: float
    images: int  # paired images behind it

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def meaningful(self) -> bool:
        """Enough images for the interval to be a confidence interval (:data:`MIN_IMAGES`)."""
        return self.images >= MIN_IMAGES


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof 1; ``None`` for one value)."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    return mean, (float(array.std(ddof=1)) if array.size > 1 else None)


def paired_difference(
    ours: np.ndarray, reference: np.ndarray, *, confidence: float = CONFIDENCE
) -> Interval:
    """Mean of ``ours − reference`` and its bootstrap interval (module doc).

    ``ours`` and ``reference`` are ``(seeds, images)`` arrays of per-image values, seeds paired
    by row and images by column (or ``(images,)`` for one seed).
    """
    ours, reference = np.atleast_2d(ours).astype(float), np.atleast_2d(reference).astype(float)
    if ours.shape != reference.shape or ours.size == 0:
        raise ValueError(f"paired arrays of one shape needed, got {ours.shape}, {reference.shape}")
    differences = ours - reference
    mean = float(differences.mean())
    seeds, images = differences.shape
    if np.allclose(differences, differences.flat[0], rtol=0, atol=1e-12):
        return Interval(mean, mean, mean, images)  # no spread: the interval is the point
    rng = np.random.default_rng(RANDOM_SEED)
    if seeds == 1:
        from scipy.stats import bootstrap

        result = bootstrap(
            (ours[0], reference[0]),
            lambda a, b, axis=-1: np.mean(a - b, axis=axis),
            paired=True,
            vectorized=True,
            n_resamples=RESAMPLES,
            confidence_level=confidence,
            method="percentile",
            random_state=rng,
        )
        low, high = result.confidence_interval
    else:
        rows = rng.integers(0, seeds, (RESAMPLES, seeds))
        columns = rng.integers(0, images, (RESAMPLES, images))
        statistics = differences[rows[:, :, None], columns[:, None, :]].mean(axis=(1, 2))
        tail = (1 - confidence) / 2 * 100
        low, high = np.percentile(statistics, [tail, 100 - tail])
    return Interval(mean, float(low), float(high), images)
