"""Resume, preemption and failure behaviour of real `run.py` processes (tiny data, CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.support.runs import read_record, run_script, tiny_overrides

pytestmark = pytest.mark.slow

FAULT = "+callbacks.fault._target_=tests.support.faults."


def net_state(checkpoint_path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    return {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}


def assert_same_weights(first, second) -> None:
    a, b = net_state(first), net_state(second)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_killed_between_epochs_and_resumed_ends_with_the_same_weights(tiny_hr_dir, tmp_path):
    base = tiny_overrides(tiny_hr_dir, tmp_path / "cache")  # 2 epochs x 3 steps
    straight = run_script("run.py", base, tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-3000:]

    # SIGKILL during epoch 1: only the end-of-epoch-0 checkpoint exists.
    killed = run_script(
        "run.py", [*base, f"{FAULT}KillAtStep", "+callbacks.fault.step=4"], tmp_path / "resumed"
    )
    assert killed.returncode != 0
    assert (
        torch.load(tmp_path / "resumed/checkpoints/last.ckpt", weights_only=True)["global_step"]
        == 3
    )
    resumed = run_script("run.py", base, tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout
    assert read_record(tmp_path / "resumed")["global_step"] == 6
    assert_same_weights(
        tmp_path / "straight/checkpoints/last.ckpt", tmp_path / "resumed/checkpoints/last.ckpt"
    )


def test_killed_mid_epoch_resumes_at_the_right_step_and_learning_rate(tiny_hr_dir, tmp_path):
    base = [
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache"),
        "callbacks.last.every_n_train_steps=2",
        "scheduler.milestones=[1]",  # lr halves when epoch 1 starts
        "optimizer.lr=1e-3",
    ]
    killed = run_script(
        "run.py", [*base, f"{FAULT}KillAtStep", "+callbacks.fault.step=5"], tmp_path / "run"
    )
    assert killed.returncode != 0
    checkpoint = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 4 and checkpoint["epoch"] == 1  # mid-epoch 1
    assert math.isclose(checkpoint["optimizer_states"][0]["param_groups"][0]["lr"], 5e-4)
    resumed = run_script("run.py", base, tmp_path / "run")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = read_record(tmp_path / "run")
    assert record["global_step"] == 6  # continued at step 5, not from the epoch's start
    final = torch.load(record["checkpoints"]["last"], weights_only=True)
    assert math.isclose(final["optimizer_states"][0]["param_groups"][0]["lr"], 5e-4)
    straight = run_script("run.py", base, tmp_path / "straight")
    assert straight.returncode == 0
    assert_same_weights(tmp_path / "straight/checkpoints/last.ckpt", record["checkpoints"]["last"])


def test_sigterm_saves_last_checkpoint_and_exits_nonzero(tiny_hr_dir, tmp_path):
    overrides = [
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache"),
        f"{FAULT}KillAtStep",
        "+callbacks.fault.step=2",
        "+callbacks.fault.signal_name=SIGTERM",
    ]
    result = run_script("run.py", overrides, tmp_path / "run")
    assert result.returncode == 143, result.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2
    assert read_record(tmp_path / "run")["status"] == "preempted"


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tiny_hr_dir, tmp_path):
    overrides = [
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache"),
        f"{FAULT}PoisonWeightsAtStep",
        "+callbacks.fault.step=4",
    ]
    result = run_script("run.py", overrides, tmp_path / "run")
    assert result.returncode != 0
    assert "NonFiniteLossError" in result.stderr and "at step 4" in result.stderr
    checkpoint = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())
    record = read_record(tmp_path / "run")
    assert record["status"] == "failed" and "at step 4" in record["error"]


def test_missing_dataset_is_reported_before_anything_is_built(tmp_path):
    result = run_script(
        "run.py", ["data=div2k", f"data.root={tmp_path}/nowhere", "eval=div2k"], tmp_path / "run"
    )
    assert result.returncode != 0
    message = result.stderr + result.stdout
    assert f"{tmp_path}/nowhere" in message and "python run.py" in message
    assert "Trainer" not in message and "GPU available" not in message


def test_unknown_config_choice_lists_the_valid_ones(tmp_path):
    result = run_script("run.py", ["model=ipe_liff"], tmp_path / "run")
    assert result.returncode != 0
    assert "ipe_liff" in result.stderr and "ipe_liif" in result.stderr and "metasr" in result.stderr


def test_a_killed_and_resumed_run_logs_the_same_csv_rows_as_an_uninterrupted_one(
    tiny_hr_dir, tmp_path
):
    base = [
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache"),
        "callbacks.last.every_n_train_steps=2",  # last.ckpt at step 4, killed at step 5
    ]
    straight = run_script("run.py", base, tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-3000:]
    kill = [f"{FAULT}KillAtStep", "+callbacks.fault.step=5"]
    assert run_script("run.py", [*base, *kill], tmp_path / "run").returncode != 0
    resumed = run_script("run.py", base, tmp_path / "run")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = (tmp_path / "straight/csv/metrics.csv").read_text()
    assert (tmp_path / "run/csv/metrics.csv").read_text() == expected
