"""per_image.csv beside metrics.json: one line per test image, whose means are the record's, in
one process and with two DDP ranks (gloo)."""

from __future__ import annotations

import math

import pytest

from ipe_lightning.results import read_per_image
from tests.support.runs import read_record, run_in_process, run_script, tiny_overrides

METRICS = ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")


def check_means(run_dir, images) -> None:
    record, rows = read_record(run_dir), read_per_image(run_dir)
    assert set(record["metrics"]) == {"folder/x2", "folder/x3"}
    for loader, values in record["metrics"].items():
        scale = loader.rsplit("/x", 1)[1]
        mine = [r for r in rows if r["set"] == "folder" and r["scale"] == scale]
        assert sorted(r["image"] for r in mine) == images  # each image exactly once
        for metric in METRICS:
            mean = sum(r[metric] for r in mine) / len(mine)
            assert math.isclose(mean, values[metric], rel_tol=1e-9), (loader, metric)


def test_a_run_writes_one_line_per_image_whose_means_are_the_records(tiny_hr_dir, tmp_path):
    base = tiny_overrides(tiny_hr_dir, tmp_path / "cache")
    run_in_process(base, tmp_path / "run")
    check_means(tmp_path / "run", sorted(p.stem for p in tiny_hr_dir.glob("*.png")))


@pytest.mark.slow
def test_two_ddp_ranks_write_each_image_once(tiny_hr_dir, tmp_path):
    base = tiny_overrides(tiny_hr_dir, tmp_path / "cache")
    result = run_script("run.py", [*base, "trainer=ddp_cpu"], tmp_path / "ddp", timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    check_means(tmp_path / "ddp", sorted(p.stem for p in tiny_hr_dir.glob("*.png")))
