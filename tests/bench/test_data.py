"""The data benchmark runs end to end on a small image and reports every number it promises (the
numbers themselves are not checked: timing is not a test)."""

from __future__ import annotations

import json

from ipe_lightning.bench.__main__ import main


def test_data_benchmark_reports_throughput_from_cache_and_raw_png(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["data", "--size", "256x200", "--images", "1", "--n", "5", "--n-raw", "2"]
    argv += ["--workers", "1", "--batches", "2"]
    assert main([*argv, "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["size"] == "256x200" and results["images"] == 1
    assert results["cache_samples_per_s"] > 0 and results["raw_samples_per_s"] > 0
    assert results["loader_workers"] == 1 and results["loader_samples_per_s_per_worker"] > 0
    assert "cache_samples_per_s" in capsys.readouterr().out
