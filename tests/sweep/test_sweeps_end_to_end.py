"""Real sweeps (``sweep.py`` processes on tiny data): Tables 2 and 4 filled, a kill and a resume, a
failing job, submitit jobs, DDP jobs inside a multirun."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from ipe_lightning.report.files import REPORT_FILES
from tests.support.runs import read_record, run_script, tiny_overrides
from tests.sweep.support import SLOW, run_sweep, sweep_command, sweep_env, write_sweep_file

pytestmark = pytest.mark.slow

PAPER_SWEEP_JOBS = {"table2": 6, "table4": 7}
# rows the paper does not have: Table 1's x4 model resized to every scale
NO_PAPER_ROW = {"table1_edsr_baseline_x4_bicubic", "table1_edsr_baseline_x4_lanczos"}


def output(result: subprocess.CompletedProcess) -> str:
    return (result.stdout or "")[-4000:] + (result.stderr or "")[-4000:]


def plan_line(result: subprocess.CompletedProcess, job: str) -> str:
    return next(line for line in result.stdout.splitlines() if line.startswith(f"[sweep]   {job} "))


def job_rows(sweep_dir: Path) -> dict[str, dict[str, str]]:
    with open(sweep_dir / "table.csv") as handle:
        return {row["variant"]: row for row in csv.DictReader(handle) if row["kind"] == "job"}


def seeds_sweep(tmp_path: Path, seeds: str = "1,2") -> Path:
    return write_sweep_file(tmp_path / "seeds.yaml", f"title: seeds\nparams:\n  seed: {seeds}\n")


def assert_every_row_filled(sweep_dir: Path, jobs: int) -> None:
    rows = job_rows(sweep_dir)
    assert len(rows) == jobs
    for variant, row in rows.items():
        assert row["status"] == "finished", (variant, row["note"])
        measured = [k for k, v in row.items() if k.endswith(("/psnr", "/ssim")) and v]
        paper = [k for k, v in row.items() if k.endswith("/paper") and v]
        assert measured and (paper or variant in NO_PAPER_ROW), variant
    markdown = (sweep_dir / "table.md").read_text()
    assert "MISSING" not in markdown and "FAILED" not in markdown
    assert "| Bicubic | " in markdown and (sweep_dir / "psnr_vs_scale.png").stat().st_size > 0


def test_tiny_table4_fills_every_row(finished_table4_sweep):
    assert_every_row_filled(finished_table4_sweep, PAPER_SWEEP_JOBS["table4"])


def test_tiny_table2_fills_every_row_on_the_benchmarks(tiny_data_root, decoded_cache, tmp_path):
    """Table 2: RDN rows (arbitrary-scale and fixed-scale ×2/×3/×4) on the four benchmarks (Y
    channel, paired LR files). Tables 1 and 3 run the same code on DIV2K; their plans are checked
    in the default suite (tests/sweep/test_definitions.py), their fixed-scale and resampling rows
    by tests/sweep/test_fixed_scale_sweep.py."""
    sweep_dir = tmp_path / "sweep"
    arguments = ["table2", "debug=tiny", f"data.root={tiny_data_root}"]
    arguments += [f"data.cache_dir={decoded_cache}", "data.num_workers=0"]
    result = run_sweep([*arguments, "--sweep-dir", f"{sweep_dir}"], cwd=tmp_path, timeout=1200)
    assert result.returncode == 0, output(result)
    assert_every_row_filled(sweep_dir, PAPER_SWEEP_JOBS["table2"])


def test_a_killed_sweep_skips_finished_jobs_and_resumes_the_interrupted_one(tiny_hr_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    arguments = [
        str(seeds_sweep(tmp_path, "1,2,3")),
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"),  # 2 epochs x 3 steps per job
        SLOW,
        "+callbacks.slow.seconds=1.0",
        "--sweep-dir",
        f"{sweep_dir}",
    ]
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen(
            sweep_command(arguments),
            cwd=tmp_path,
            env=sweep_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        checkpoint = sweep_dir / "seed-2" / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 600
        while not checkpoint.is_file():  # seed-2 finished its first epoch
            assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # the checkpoint fully written; seed-2 is in its second epoch
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert read_record(sweep_dir / "seed-1")["status"] == "finished"
    assert not (sweep_dir / "seed-2" / "metrics.json").exists()
    assert not (sweep_dir / "seed-3").exists()
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 3
    finished = sweep_dir / "seed-1" / "metrics.json"
    finished_bytes, finished_mtime = finished.read_bytes(), finished.stat().st_mtime_ns

    resumed = run_sweep(arguments, cwd=tmp_path)
    assert resumed.returncode == 0, output(resumed)
    assert " skip " in plan_line(resumed, "seed-1")
    assert " resume " in plan_line(resumed, "seed-2") and "interrupted" in plan_line(
        resumed, "seed-2"
    )
    assert " run " in plan_line(resumed, "seed-3")
    assert f"resuming from {checkpoint}" in resumed.stdout
    assert finished.read_bytes() == finished_bytes and finished.stat().st_mtime_ns == finished_mtime
    for seed in ("seed-2", "seed-3"):
        record = read_record(sweep_dir / seed)
        assert record["status"] == "finished" and record["global_step"] == 6
    assert {row["status"] for row in job_rows(sweep_dir).values()} == {"finished"}


def test_a_failing_job_does_not_stop_the_others_and_is_rerun(tiny_hr_dir, tmp_path):
    sweep_file = write_sweep_file(
        tmp_path / "faults.yaml", "params:\n  +callbacks.fault.step: 1,1000\n"
    )
    sweep_dir = tmp_path / "sweep"
    arguments = [
        str(sweep_file),
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"),
        "+callbacks.fault._target_=tests.support.faults.PoisonWeightsAtStep",  # NaN at `step`
        "--sweep-dir",
        f"{sweep_dir}",
    ]
    result = run_sweep(arguments, cwd=tmp_path)
    assert result.returncode == 1, output(result)
    assert "1 of 2 jobs finished" in result.stdout
    assert read_record(sweep_dir / "step-1")["status"] == "failed"  # ran first, failed ...
    assert read_record(sweep_dir / "step-1000")["status"] == "finished"  # ... the next one ran
    markdown = (sweep_dir / "table.md").read_text()
    assert "| step-1 — FAILED | *failed* |" in markdown
    assert "`step-1` (step-1): **failed**: NonFiniteLossError" in markdown
    assert job_rows(sweep_dir)["step-1"]["status"] == "failed"

    again = run_sweep(arguments, cwd=tmp_path)
    assert again.returncode == 1, output(again)
    assert " rerun " in plan_line(again, "step-1") and " skip " in plan_line(again, "step-1000")


def test_submitit_local_runs_each_job_as_a_submitit_job(tiny_hr_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_sweep(
        [
            str(seeds_sweep(tmp_path)),
            *tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"),
            "launcher=submitit_local",
            "--sweep-dir",
            f"{sweep_dir}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, output(result)
    assert "Submitit 'local' sweep output dir" in result.stderr + result.stdout
    job_folders = [p for p in (sweep_dir / ".submitit").iterdir() if p.name != "%j"]
    assert len(job_folders) == 2  # two submitit jobs, two processes
    logs = "".join(p.read_text() for folder in job_folders for p in folder.glob("*_log.out"))
    assert logs.count("test results (PSNR in dB)") == 2  # each job ran run.py's task
    for seed in ("seed-1", "seed-2"):
        record = read_record(sweep_dir / seed)
        assert record["status"] == "finished" and record["run_name"] == seed


@pytest.mark.parametrize("launcher", ["local", "submitit_local"])
def test_ddp_jobs_in_a_multirun_run_their_ranks_in_their_own_directories(
    launcher, tiny_hr_dir, tmp_path
):
    """In-process jobs (the sweep's own argv) and submitit jobs (main module
    ``submitit.core._submit``): either way the ranks run ``run.py`` with the job's overrides."""
    cwd, sweep_dir = tmp_path / "cwd", tmp_path / "sweep"
    result = run_sweep(
        [
            str(seeds_sweep(tmp_path)),
            *tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"),
            "trainer=ddp_cpu",  # two gloo ranks per job
            f"launcher={launcher}",
            "--sweep-dir",
            f"{sweep_dir}",
        ],
        cwd=cwd,
        timeout=900,
    )
    assert result.returncode == 0, output(result)
    # no outputs/, no second sweep dir from a relaunched sweep: only the run store's index of
    # trainings (paths.run_store, multirun/runs), which holds one pointer file per training
    assert [p.relative_to(cwd).as_posix() for p in cwd.iterdir()] in ([], ["multirun"])
    store = cwd / "multirun"
    if store.exists():
        assert [p.name for p in store.iterdir()] == ["runs"]
        assert all(p.suffix == ".json" for p in (store / "runs").iterdir())
    # the jobs, the manifest, the report, and the sweep's locks (sweep.lock, .claims/)
    expected = {"seed-1", "seed-2", "sweep.json", "sweep.lock", ".claims", *REPORT_FILES}
    expected |= {".submitit"} if launcher == "submitit_local" else set()
    assert {p.name for p in sweep_dir.iterdir()} == expected
    for seed in ("seed-1", "seed-2"):
        record = read_record(sweep_dir / seed)
        assert record["status"] == "finished" and record["global_step"] == 6
        rank_1 = (sweep_dir / seed / "train_ddp_process_1.log").read_text()
        assert "GLOBAL_RANK: 1, MEMBER: 2/2" in rank_1  # rank 1 ran in this job's directory
    # Results right: the same job as a plain `run.py` DDP run gives the same numbers.
    overrides = yaml.safe_load((sweep_dir / "seed-1" / ".hydra" / "overrides.yaml").read_text())
    single = run_script("run.py", overrides, tmp_path / "single", timeout=900)
    assert single.returncode == 0, single.stderr[-3000:]
    expected = read_record(tmp_path / "single")["metrics"]
    measured = read_record(sweep_dir / "seed-1")["metrics"]
    assert measured.keys() == expected.keys() == {"folder/x2"}
    for name, value in expected["folder/x2"].items():
        assert math.isclose(measured["folder/x2"][name], value, abs_tol=1e-5), name
    assert json.loads((sweep_dir / "sweep.json").read_text())["sweep"] == "seeds"


def test_submitit_requeues_a_timed_out_job_which_resumes_from_its_last_checkpoint(
    tiny_hr_dir, tmp_path
):
    """The SLURM path on this machine: submitit's USR2 comes 30 s before the 1-minute limit;
    the job saves last.ckpt after its current step and submitit requeues it; the new process
    resumes from there and finishes."""
    sweep_dir = tmp_path / "sweep"
    result = run_sweep(
        [
            str(seeds_sweep(tmp_path, "1")),
            *tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"),
            "trainer.max_epochs=4",  # 12 steps of 3 s or more: past the signal at 30 s ...
            SLOW,
            "+callbacks.slow.seconds=3.0",
            "+callbacks.slow.first_attempt_only=true",  # ... then the requeued job: full speed
            "launcher=submitit_local",
            "hydra.launcher.timeout_min=1",
            "--sweep-dir",
            f"{sweep_dir}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, output(result)
    (folder,) = [p for p in (sweep_dir / ".submitit").iterdir() if p.name != "%j"]
    log = "".join(p.read_text() for p in sorted(folder.glob("*_log.*")))
    saved = [line for line in log.splitlines() if "requeue signal: saved" in line]
    assert saved, log[-3000:]
    step = int(saved[0].rsplit(" ", 1)[-1])
    assert 0 < step < 12  # mid-training
    assert "Requeued job" in log
    assert f"resuming from {sweep_dir / 'job' / 'checkpoints' / 'last.ckpt'}" in log
    record = read_record(sweep_dir / "job")
    assert record["status"] == "finished" and record["global_step"] == 12
