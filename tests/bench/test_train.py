"""``python -m ipe_lightning.bench train`` on a tiny step: the fast-vs-naive comparison, and the
allocator comparison in fresh processes, whose page faults (not its times) are checked."""

from __future__ import annotations

import json

import pytest

from ipe_lightning.allocator import glibc_version
from ipe_lightning.bench.__main__ import main
from ipe_lightning.bench.train_allocator import alternating, setting_summary

SETTING_KEYS = {
    "minor_faults_per_step",
    "system_s_per_step",
    "user_s_per_step",
    "steps_per_s",
    "steps_per_s_median",
    "max_rss_mib",
    "runs",
}


@pytest.mark.slow  # ~45 s of paper-sized steps in fresh processes
@pytest.mark.skipif(glibc_version() is None, reason="the allocator comparison runs on glibc")
def test_train_benchmark_reports_both_comparisons_and_the_tuning_removes_faults(tmp_path, capsys):
    out = tmp_path / "train.json"
    # 16 x 24² queries: each gathered table (16 * 576 * 4 rows of 256 floats, 36 MiB) is above
    # glibc's largest dynamic mmap threshold (32 MiB), so untuned every step maps it afresh. With
    # batch 2 glibc raised its threshold after a few steps and the untuned run stopped faulting
    # (faults per step seen: tuned [5761, 0, 0], untuned [4578, 4608, 0]).
    argv = ["train", "--batch", "16", "--lr-side", "24", "--repeats", "1", "--warmup", "1"]
    argv += ["--steps", "3", "--threads", "1", "--json", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    case = report["cases"]["ipe_liif_fp32"]
    assert case["lr_size"] == [24, 24] and case["queries_per_sample"] == 576
    assert case["naive"]["samples_per_s"] > 0 and case["fast"]["samples_per_s"] > 0
    assert case["speedup_best"] > 0 and case["speedup_median"] > 0

    comparison = case["allocator"]
    assert comparison["order"] == ["on", "off"] and comparison["timed_steps_per_process"] == 3
    on, off = comparison["on"], comparison["off"]
    assert set(on) == set(off) == SETTING_KEYS
    assert [run["allocator"] for run in on["runs"]] == ["mallopt"]
    assert [run["allocator"] for run in off["runs"]] == ["off"]
    assert len(on["runs"][0]["minor_faults_each_step"]) == 3
    faults = {
        name: row["runs"][0]["minor_faults_each_step"] for name, row in [("on", on), ("off", off)]
    }
    assert off["minor_faults_per_step"] > 2 * on["minor_faults_per_step"], faults
    for key in ("minor_faults_off_over_on", "system_s_off_over_on", "speedup_on_over_off"):
        assert key in comparison
    assert report["environment"]["allocator"] == "mallopt"

    printed = capsys.readouterr()
    assert json.loads(printed.out) == report
    assert "glibc default" in printed.err and "minor faults/step" in printed.err


def test_settings_alternate_so_each_runs_first_as_often_as_second():
    assert alternating(1) == ["on", "off"]
    assert alternating(4) == ["on", "off", "off", "on", "on", "off", "off", "on"]


def test_a_setting_is_summarised_per_timed_step_over_its_processes():
    run = {"steps": 2, "minor_faults": 10, "system_s": 0.2, "user_s": 4.0, "max_rss_mib": 5.0}
    runs = [{**run, "steps_per_s": 0.5}, {**run, "minor_faults": 30, "steps_per_s": 0.25}]
    summary = setting_summary(runs)
    assert summary["minor_faults_per_step"] == 10  # median of 5 and 15
    assert summary["system_s_per_step"] == 0.1 and summary["user_s_per_step"] == 2.0
    assert summary["steps_per_s"] == 0.5 and summary["steps_per_s_median"] == 0.375
