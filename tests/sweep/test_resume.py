"""What a relaunch does with each job directory: skip, resume, rerun, or refuse (conflict)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ipe_lightning.results import write_json_atomic
from ipe_lightning.sweep.resume import decide
from ipe_lightning.sweep_files import job_result, read_job_state

PLANNED = ["experiment=table4_liif", "debug=tiny", "run_name=table4_liif", "tags=[table4,x]"]


def make_job(
    job_dir: Path,
    status: str | None = None,
    overrides: list[str] = PLANNED,
    checkpoint: bool = False,
    started: bool = True,
) -> Path:
    if started:
        (job_dir / ".hydra").mkdir(parents=True)
        (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if checkpoint:
        (job_dir / "checkpoints").mkdir(parents=True)
        (job_dir / "checkpoints" / "last.ckpt").write_bytes(b"not read")
    if status:
        record = {"status": status, "overrides": overrides, "metrics": {}}
        if status == "finished":
            record["metrics"] = {"div2k/x2": {"psnr": 30.0}}
        if status == "failed":
            record["error"] = "RuntimeError: boom"
        write_json_atomic(job_dir / "metrics.json", record)
    return job_dir


def plan(job_dir: Path, planned=PLANNED):
    return decide("job", read_job_state(job_dir), planned)


@pytest.mark.parametrize(
    "status, checkpoint, action",
    [
        ("finished", True, "skip"),
        ("failed", False, "rerun"),
        ("failed", True, "rerun"),  # run.py's resume=auto restarts from the last good checkpoint
        ("preempted", True, "resume"),
        (None, True, "resume"),  # killed: a checkpoint, no metrics.json
        (None, False, "run"),  # killed before its first checkpoint
    ],
)
def test_each_state_gets_its_action(tmp_path, status, checkpoint, action):
    assert plan(make_job(tmp_path / "job", status, checkpoint=checkpoint)).action == action


def test_a_job_that_never_started_runs(tmp_path):
    decision = plan(tmp_path / "nothing")
    assert (decision.action, decision.reason) == ("run", "new")


def test_a_finished_job_with_other_overrides_is_never_overwritten(tmp_path):
    job = make_job(tmp_path / "job", "finished", overrides=[*PLANNED, "optim.lr=1e-3"])
    decision = plan(job)
    assert decision.action == "conflict"
    assert "optim.lr: 1e-3 → (unset)" in decision.reason


def test_a_checkpoint_of_other_overrides_is_not_resumed(tmp_path):
    job = make_job(tmp_path / "job", None, overrides=["experiment=table4_liif_pe"], checkpoint=True)
    decision = plan(job)
    assert decision.action == "conflict" and "experiment" in decision.reason


def test_a_job_that_failed_before_a_checkpoint_runs_with_the_new_overrides(tmp_path):
    job = make_job(tmp_path / "job", "failed", overrides=["experiment=table4_liif", "trainer=gpu"])
    assert plan(job).action == "run"


def test_where_and_how_a_job_runs_or_logs_is_not_compared(tmp_path):
    planned = [*PLANNED, "launcher=slurm", "logger=wandb", "logger.wandb.group=g2", "tags=[y]"]
    recorded = [*PLANNED, "launcher=local", "logger=csv", "data.num_workers=2"]
    assert (
        plan(make_job(tmp_path / "job", "finished", overrides=recorded), planned).action == "skip"
    )


def test_override_order_does_not_matter_but_values_do(tmp_path):
    job = make_job(tmp_path / "job", "finished", overrides=list(reversed(PLANNED)))
    assert plan(job).action == "skip"


def test_the_report_sees_missing_interrupted_and_failed_jobs(tmp_path):
    assert job_result(tmp_path / "none").status == "missing"
    assert job_result(make_job(tmp_path / "killed", None, checkpoint=True)).status == "interrupted"
    failed = job_result(make_job(tmp_path / "failed", "failed"))
    assert (failed.status, failed.note) == ("failed", "RuntimeError: boom")
    done = job_result(make_job(tmp_path / "done", "finished"))
    assert done.status == "finished" and done.metrics == {"div2k/x2": {"psnr": 30.0}}


def test_a_record_of_a_newer_schema_is_neither_overwritten_nor_reported_as_ours(tmp_path):
    job = make_job(tmp_path / "job", "finished")
    record = {"version": 99, "status": "finished", "overrides": PLANNED, "metrics": {}}
    write_json_atomic(job / "metrics.json", record)
    decision = plan(job)
    assert decision.action == "conflict" and "version 99" in decision.reason
    result = job_result(job)
    assert result.status == "unreadable" and "version 99" in result.note
