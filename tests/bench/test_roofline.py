"""The decode roofline: FLOPs counted from the products a call runs, the GEMM peak, the ratio."""

from __future__ import annotations

import math
import time
from functools import partial

import pytest
import torch

from ipe_lightning.bench import roofline
from ipe_lightning.inference import upsample
from ipe_lightning.models import LIIF, Cell, EDSRBaseline, PlainMLP


def test_in_place_products_are_counted():
    """The fast decoder accumulates with ``addmm_``, which torch's own counter skips."""
    total = torch.zeros(7, 5)
    left, right = torch.rand(7, 3), torch.rand(3, 5)
    assert roofline.counted_flops(lambda: total.addmm_(left, right)) == 2 * 7 * 3 * 5
    assert roofline.counted_flops(lambda: torch.addmm(total, left, right, out=total)) == 210


def test_the_fast_decode_count_is_the_hand_count_of_its_products():
    """The oracle counts the network's multiply-adds from its shapes (docs/method.md §2.8): the
    encoder's and the projection's 3x3 convolutions once per LR pixel; per query and branch the
    coordinate input (relative coordinate and cell, 4 values) into the 16 hidden units, and the
    hidden units into RGB."""
    torch.manual_seed(0)
    net = LIIF(
        EDSRBaseline(n_resblocks=1, n_feats=8), encoding=Cell(), mlp=partial(PlainMLP, hidden=[16])
    ).eval()
    lr_h, lr_w, hr_h, hr_w = 6, 5, 13, 11
    image = torch.rand(1, 3, lr_h, lr_w)
    with torch.no_grad():
        counted = roofline.counted_flops(lambda: upsample(net, image, size=(hr_h, hr_w)))
    encoder = 3 * 8 * 9 + 2 * 8 * 8 * 9 + 8 * 8 * 9  # head, one residual block, body's last conv
    projection = 8 * 9 * 16  # W_z z + b of the first layer as a 3x3 convolution
    per_query = 4 * (4 * 16 + 16 * 3)  # four ensemble branches
    expected = 2 * ((encoder + projection) * lr_h * lr_w + per_query * hr_h * hr_w)
    assert counted == expected


def test_the_gemm_peak_is_a_rate_and_the_roofline_divides_it():
    peak = roofline.gemm_peak(torch.device("cpu"), repeats=2)
    assert math.isfinite(peak) and peak > 1e8  # any CPU of the last decade does 0.1 GFLOP/s
    assert roofline.roofline(flops_per_pixel=2e6, peak_flops_per_s=peak) == peak / 2e6


def test_the_sustained_gemm_rate_is_timed_over_the_stretch_asked_for():
    start = time.perf_counter()
    rate = roofline.gemm_rate(torch.device("cpu"), seconds=0.3)
    assert time.perf_counter() - start >= 0.3
    assert math.isfinite(rate) and rate > 1e8
    # a stretch shorter than one product still times `minimum` products
    start = time.perf_counter()
    roofline.gemm_rate(torch.device("cpu"), seconds=0.0, minimum=3)
    single = roofline.GEMM_FLOPS / roofline.gemm_peak(torch.device("cpu"), repeats=3)
    assert time.perf_counter() - start >= 3 * single * 0.5


def test_each_decode_is_set_against_the_gemm_timed_next_to_it():
    # 1000 pixels of 2e6 FLOPs: at a 1e10 FLOP/s peak the roofline is 5000 px/s
    ratios = roofline.paired_ratios([0.25, 0.5, 0.4], [1e10, 5e9, 1e10], 1000, 2e6)
    # 4000 px/s of 5000; 2000 of 2500 (the machine was half as fast then); 2500 of 5000
    assert ratios == pytest.approx([0.8, 0.8, 0.5])
    assert roofline.median_ratio(ratios) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="one GEMM rate per decode time"):
        roofline.paired_ratios([0.25, 0.5], [1e10], 1000, 2e6)
