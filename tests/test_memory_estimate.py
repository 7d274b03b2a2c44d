"""The memory estimate of an upsampling: the output counted exactly, the encoder bounded by a
tile, free host memory read without psutil too. (Refusals and the estimate against a measured
peak: tests/test_predict.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ipe_lightning import memory_estimate
from ipe_lightning.inference import QueryBudget
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
