"""The memory estimate of an upsampling: the output counted exactly, the encoder bounded by a
tile, free host memory read without psutil too. (Refusals and the estimate against a measured
peak: tests/test_predict.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from ipe_lightning import memory_estimate
from ipe_lightning.inference import QueryBudget
from ipe_lightning.models import EDSRBaseline
from ipe_lightning.models.srno import SRNO
from tests.support.networks import tiny_net


def test_the_estimate_counts_the_output_and_a_tile_bounds_the_encoder():
    net = tiny_net()
    whole = memory_estimate.estimate_memory(net, (3000, 4000), (6000, 8000))
    tiled = memory_estimate.estimate_memory(
        net, (3000, 4000), (6000, 8000), budget=QueryBudget(tile=64)
    )
    assert whole.output == tiled.output == 6000 * 8000 * 3 * 4
    assert tiled.encoder < whole.encoder / 100
    # EDSR-baseline with 8 features: at least the 8-channel float32 features of every LR pixel
    assert whole.encoder >= 3000 * 4000 * 8 * 4


@pytest.mark.skipif(not Path("/proc/meminfo").exists(), reason="needs /proc/meminfo")
def test_without_psutil_free_memory_comes_from_proc_meminfo(monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil raises ImportError
    lines = Path("/proc/meminfo").read_text().splitlines()
    (line,) = [line for line in lines if line.startswith("MemAvailable:")]
    expected = int(line.split()[1]) * 1024
    assert abs(memory_estimate.available_memory("cpu") - expected) < 2 * 10**9


def tiny_srno() -> SRNO:
    torch.manual_seed(0)
    return SRNO(EDSRBaseline(n_resblocks=1, n_feats=8), width=16, heads=4, head_hidden=8).eval()


def test_a_grid_decoder_holds_the_whole_lr_tables_one_chunk_and_every_hr_pixel():
    """A grid decoder decodes the whole image as one grid: its decoder part holds the tables of
    every LR position (features and LR image, float32), the RGB of every HR pixel and one chunk of
    queries, up to all of them; encoder tiles bound the encoder's activations, not the features
    they assemble."""
    net, lr_size, hr_size = tiny_srno(), (300, 400), (1200, 1600)
    costs = memory_estimate._probe_costs(net, torch.device("cpu"))

    def estimate(**budget):
        return memory_estimate.estimate_memory(
            net, lr_size, hr_size, budget=QueryBudget(**budget), costs=costs
        )

    small, large = estimate(max_queries=1000), estimate(max_queries=100_000)
    hr_pixels, lr_pixels = 1200 * 1600, 300 * 400
    features = (8 + 3) * 4 * lr_pixels  # EDSR's 8 channels and the LR image
    assert small.decoder >= features + memory_estimate.GRID_BYTES_PER_PIXEL * hr_pixels
    assert large.decoder - small.decoder == pytest.approx(costs.per_query * 99_000, abs=2)
    assert costs.per_query >= 3 * 16 * 4  # at least the qkv projection of a 16-wide query
    assert estimate(max_queries=10**8).decoder == estimate(max_queries=hr_pixels).decoder
    assert small.output == hr_pixels * 3 * 4
    tiled = estimate(max_queries=1000, tile=32)
    assert features <= tiled.encoder < features + small.encoder / 10
