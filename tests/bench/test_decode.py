"""``python -m ipe_lightning.bench decode`` on a tiny case: the report's numbers fit together."""

from __future__ import annotations

import json

import pytest

from ipe_lightning.bench import decode


def test_decode_report_sets_each_fast_run_against_the_gemm_timed_after_it(
    monkeypatch, capsys, tmp_path
):
    monkeypatch.setitem(decode.CASES, "tiny", ("ipe_liif", 6, 2.0, 1.0))
    out = tmp_path / "decode.json"
    argv = ["--cases", "tiny", "--repeats", "3", "--warmup", "2", "--json", str(out)]
    assert decode.main(argv) == 0
    case = json.loads(out.read_text())["cases"]["tiny"]
    assert case["output_size"] == [12, 12]
    assert case["max_abs_difference"] < 1e-5  # fast == naive
    # one ratio per timed repeat (the warm-up runs' GEMMs are left out), their median reported
    assert len(case["fast"]["seconds"]) == len(case["roofline_ratios"]) == 3
    assert len(case["gemm_sustained_gflops"]) == 3
    assert case["roofline_ratio"] == pytest.approx(sorted(case["roofline_ratios"])[1], abs=1e-3)
    # each ratio: that repeat's pixel rate over the roofline of the GEMM rate sustained after it
    macs = case["fast_macs_per_pixel"]
    for seconds, gflops, ratio in zip(
        case["fast"]["seconds"], case["gemm_sustained_gflops"], case["roofline_ratios"], strict=True
    ):
        assert ratio == pytest.approx(144 / seconds / (gflops * 1e9 / (2 * macs)), rel=0.02)
    # best against best: the best decode over the roofline of the run's best GEMM burst
    best = 144 / case["fast"]["best_s"] / case["roofline_pixels_per_s"]
    assert case["roofline_ratio_peak"] == pytest.approx(best, rel=1e-2)
    low, high = case["gemm_gflops_range"]
    assert 0 < low <= high == case["gemm_peak_gflops"]
    assert "of the roofline at the GEMM rate sustained after each decode" in capsys.readouterr().err
