"""The DDP hook of multirun jobs: Lightning relaunches run.py with the job's own overrides into the
job's directory, and nothing of the launch outlives the job."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from lightning_fabric.strategies.launchers.subprocess_script import _hydra_subprocess_cmd
from omegaconf import open_dict, read_write

from ipe_lightning.runtime.ddp import ddp_job_scope, multirun_job_dir
from tests.support.runs import REPO, compose_config

JOB_OVERRIDES = ["seed=3", "debug=smoke", "eval.scales=[2,3]"]


@pytest.fixture
def hydra_job(tmp_path):
    """HydraConfig as a job sees it; ``output_dir`` set like a sweep's job or a plain run."""
    saved = HydraConfig.instance().cfg
    cfg = compose_config(JOB_OVERRIDES)

    def as_job(output_dir: Path | None) -> None:
        """``None``: a plain run, whose output directory is the run directory."""
        hydra = HydraConfig.instance().cfg.hydra
        with read_write(hydra), open_dict(hydra):
            hydra.runtime.cwd = str(tmp_path)
            hydra.runtime.output_dir = str(output_dir or tmp_path / str(hydra.run.dir))

    yield cfg, as_job
    HydraConfig.instance().cfg = saved


def test_lightning_relaunches_run_py_with_the_jobs_overrides_into_the_job_dir(
    hydra_job, tmp_path, monkeypatch
):
    _, as_job = hydra_job
    job_dir = tmp_path / "sweep" / "seed-3"
    as_job(job_dir)
    sweep_argv = ["/anywhere/sweep.py", "table4", "debug=smoke"]
    monkeypatch.setattr(sys, "argv", list(sweep_argv))
    monkeypatch.delenv("MASTER_PORT", raising=False)
    assert multirun_job_dir() == str(job_dir)
    with ddp_job_scope():
        command, cwd = _hydra_subprocess_cmd(local_rank=1)
        os.environ["MASTER_PORT"] = "29500"  # as Lightning's launcher sets it
    assert command[:2] == [sys.executable, str(REPO / "run.py")]  # not `-m pytest`, not sweep.py
    assert command[2:5] == JOB_OVERRIDES
    assert f'hydra.run.dir="{job_dir}"' in command
    assert cwd == str(tmp_path)
    # Afterwards the process is as before: the next job of the sweep starts clean.
    assert sys.argv == sweep_argv
    assert "MASTER_PORT" not in os.environ
    assert HydraConfig.get().run.dir != str(job_dir)


def test_a_plain_run_is_left_alone(hydra_job, monkeypatch):
    _, as_job = hydra_job
    as_job(None)
    argv = ["run.py", "seed=3"]
    monkeypatch.setattr(sys, "argv", list(argv))
    assert multirun_job_dir() is None
    with ddp_job_scope():
        assert sys.argv == argv


@pytest.mark.parametrize(
    ("variables", "name"),
    [
        ({}, "rank 0"),
        ({"RANK": "3", "LOCAL_RANK": "1"}, "rank 3"),  # torchrun
        ({"SLURM_PROCID": "1", "SLURM_LOCALID": "0"}, "rank 1"),  # srun
        ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, "node 1, local rank 0"),  # Lightning's launcher
        # a rank Lightning started itself inside one SLURM task (an interactive allocation)
        ({"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "LOCAL_RANK": "1"}, "node 0, local rank 1"),
    ],
    ids=["alone", "torchrun", "srun", "lightning", "lightning-in-slurm"],
)
def test_a_rank_is_named_by_its_launchers_variables(monkeypatch, variables, name):
    from ipe_lightning.runtime.ddp import rank_name

    for variable in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_LOCALID"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    assert rank_name() == name


def test_rank_errors_of_an_earlier_launch_are_not_this_launchs(tmp_path):
    from ipe_lightning.runtime.ddp import RankError, rank_errors, write_rank_error

    first, requeued = "SLURM_JOB_ID=7 SLURM_RESTART_COUNT=0", "SLURM_JOB_ID=7 SLURM_RESTART_COUNT=1"
    write_rank_error(tmp_path, RankError("rank 1", first, 1.0, "OSError: before", ""))
    write_rank_error(tmp_path, RankError("rank 2", requeued, 2.0, "OSError: now", ""))
    assert [failed.error for failed in rank_errors(tmp_path, requeued)] == ["OSError: now"]
