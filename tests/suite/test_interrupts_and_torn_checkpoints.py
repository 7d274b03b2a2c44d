"""Ctrl-C, kills and torn checkpoints with real ``run.py`` processes (tiny data, CPU)."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from tests.support.runs import read_record, run_script, tiny_overrides

pytestmark = pytest.mark.slow

FAULT = "+callbacks.fault._target_=tests.support.faults."


def _refuse(constant: str):
    raise ValueError(f"bare {constant} in metrics.json")


def test_ctrl_c_saves_last_ckpt_exits_130_and_the_rerun_finishes(tiny_hr_dir, tmp_path):
    base = tiny_overrides(tiny_hr_dir, tmp_path / "cache", scales="[1,2]")  # 2 epochs x 3 steps
    fault = [f"{FAULT}KillAtStep", "+callbacks.fault.step=2", "+callbacks.fault.signal_name=SIGINT"]
    stopped = run_script("run.py", [*base, *fault], tmp_path / "run")
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    assert torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)["global_step"] == 2
    assert read_record(tmp_path / "run")["status"] == "interrupted"

    resumed = run_script("run.py", base, tmp_path / "run")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout
    text = (tmp_path / "run/metrics.json").read_text()
    record = json.loads(text, parse_constant=_refuse)  # no bare Infinity: JSON.parse reads it
    assert record["status"] == "finished" and record["global_step"] == 6
    assert record["metrics"]["folder/x1"]["bicubic_psnr"] is None  # identical images: infinite
    assert {"at": ["metrics", "folder/x1", "bicubic_psnr"], "value": "Infinity"} in record[
        "non_finite"
    ]


def test_a_torn_last_ckpt_is_moved_aside_and_the_run_resumes_from_the_newest_readable(
    tiny_hr_dir, tmp_path
):
    base = tiny_overrides(tiny_hr_dir, tmp_path / "cache")
    killed = run_script(
        "run.py", [*base, f"{FAULT}KillAtStep", "+callbacks.fault.step=4"], tmp_path / "run"
    )
    assert killed.returncode != 0
    checkpoints = tmp_path / "run/checkpoints"
    # The CSV log holds every row up to the checkpoint of step 3 (the end of epoch 0).
    with open(tmp_path / "run/csv/metrics.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames, list(reader)
    assert "val/psnr" in header and any(row["val/psnr"] for row in rows)
    assert {row["step"] for row in rows if row.get("train/loss")} == {"0", "1", "2"}

    data = (checkpoints / "last.ckpt").read_bytes()  # torn, as by a full disk before the fix
    (checkpoints / "last.ckpt").write_bytes(data[: len(data) // 3])
    resumed = run_script("run.py", base, tmp_path / "run")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"not resuming from {checkpoints / 'last.ckpt'}: the archive is truncated" in (
        resumed.stdout
    )
    assert f"resuming from {checkpoints / 'best.ckpt'}" in resumed.stdout
    assert [p.name[:18] for p in checkpoints.glob("last.ckpt.corrupt-*")] == ["last.ckpt.corrupt-"]
    assert read_record(tmp_path / "run")["global_step"] == 6
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 6
    assert not (checkpoints / "last.prev.ckpt").exists()  # the fallback, removed once trained
