"""``python -m ipe_lightning.bench decode`` on a tiny case: the report's numbers fit together."""

from __future__ import annotations

import json

import pytest

from ipe_lightning.bench import decode
from ipe_lightning.models import decode_calibration


def test_decode_report_sets_each_fast_run_against_the_gemm_timed_after_it(
    monkeypatch, capsys, tmp_path
):
    monkeypatch.setitem(decode.CASES, "tiny", ("ipe_liif", 6, 2.0, 1.0))
    # the decode layout's calibration: in a folder of the test's own, on a tiny timed decode
    monkeypatch.setenv(decode_calibration.CACHE_DIR_VARIABLE, str(tmp_path))
    monkeypatch.delenv(decode_calibration.SWITCH_VARIABLE, raising=False)  # conftest's "0"
    monkeypatch.setattr(decode_calibration, "_chosen", {})
    monkeypatch.setattr(decode_calibration, "CALIBRATION_ROWS", 64)
    monkeypatch.setattr(decode_calibration, "BUDGET_S", 0.0)
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
    err = capsys.readouterr().err
    assert "of the roofline at the GEMM rate sustained after each decode" in err
    # the fast decode's layout, measured in this run, and the seconds of every candidate
    layout = case["decode_layout"]
    assert layout["source"] == "calibrated" and layout["rows"] == 64
    assert layout["row_block"] in {c.row_block for c in decode_calibration.CANDIDATES}
    assert len(layout["seconds"]) == len(decode_calibration.CANDIDATES)
    assert f"decode layout {layout['row_block']}-row blocks" in err
