"""The launcher choices, composed as sweeps compose them; SLURM up to the sbatch script (no
cluster here: ``sbatch`` and ``srun`` are stand-ins that record what they are given)."""

from __future__ import annotations

import os
import stat

import pytest
import submitit
from hydra.utils import instantiate
from pytorch_lightning.plugins.environments import SLURMEnvironment

from ipe_lightning.sweep.launch import compose_job, hydra_session, launch_jobs
from ipe_lightning.sweep_files import REPO_CONF_DIR

SLURM = [
    "launcher=slurm",
    "trainer=ddp",
    "trainer.devices=4",
    "trainer.num_nodes=2",
    "hydra.launcher.partition=gpu",
    "hydra.launcher.account=my_account",
]


def fake_command(folder, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize(
    "launcher, target",
    [
        ("local", "hydra._internal.core_plugins.basic_launcher.BasicLauncher"),
        ("submitit_local", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"),
        ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
    ],
)
def test_each_launcher_choice_picks_its_hydra_launcher(launcher, target):
    with hydra_session(REPO_CONF_DIR) as hydra:
        cfg = compose_job(hydra, [f"launcher={launcher}"])
    assert cfg.hydra.launcher._target_ == target
    requeue = "requeue" in cfg.callbacks
    assert requeue == (launcher != "local")  # submitit jobs save last.ckpt before a requeue


def test_slurm_jobs_get_one_task_per_gpu_and_lightnings_auto_requeue_off():
    with hydra_session(REPO_CONF_DIR) as hydra:
        cfg = compose_job(hydra, SLURM)
    launcher = cfg.hydra.launcher
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (4, 4, 2)
    assert launcher.max_num_timeout > 0 and launcher.signal_delay_s >= 60
    (plugin,) = [instantiate(spec) for spec in cfg.trainer.plugins]
    assert isinstance(plugin, SLURMEnvironment) and plugin.auto_requeue is False


def test_slurm_sweep_submits_an_sbatch_array_with_the_requeue_signal(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_command(bin_dir, "srun", "exit 0")
    fake_command(
        bin_dir, "sbatch", f'cat "$@" > {tmp_path}/sbatch.sh\necho "Submitted batch job 4242"'
    )
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(submitit.core.core.Job, "results", lambda self: ["(not run here)"])
    sweep_dir = tmp_path / "sweep"
    with hydra_session(REPO_CONF_DIR) as hydra:
        returns = launch_jobs(
            hydra,
            [f"hydra.sweep.dir={sweep_dir}", *SLURM],
            [
                [*SLURM, "seed=1", "hydra.sweep.subdir=seed-1"],
                [*SLURM, "seed=2", "hydra.sweep.subdir=seed-2"],
            ],
        )
    assert len(returns) == 2
    script = (tmp_path / "sbatch.sh").read_text()
    for line in [
        "#SBATCH --array=0-1",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=my_account",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --time=4320",
        "#SBATCH --signal=USR2@120",  # submitit's requeue signal, 2 minutes before the limit
        f"#SBATCH --output={sweep_dir}/.submitit/%A_%a/",  # logs inside the sweep directory
    ]:
        assert any(l.startswith(line) for l in script.splitlines()), (line, script)
    assert "srun" in script and "submitit.core._submit" in script
