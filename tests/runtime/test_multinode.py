"""Multi-node DDP on one machine: two processes as two "nodes" of one CPU rank each (gloo).

The ranks are started by hand, as a cluster would start them: once with the variables a
multi-node launcher sets (``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK``, ``WORLD_SIZE``), once
with those ``srun`` sets (``SLURM_NTASKS``, ``SLURM_PROCID``, ...), so that Lightning's own
``SLURMEnvironment`` is the one in use. Both run the real ``conf/trainer/ddp.yaml`` (its strategy
with the collective timeout) on the CPU.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.runs import REPO, compose_config, read_record, run_script, tiny_overrides

TIMEOUT_S = 30  # trainer.strategy.timeout_s of these runs: how long a lost rank is waited for


def two_nodes(base: list[str]) -> list[str]:
    return [
        *base,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.num_nodes=2",
        f"trainer.strategy.timeout_s={TIMEOUT_S}",
    ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environment() -> dict[str, str]:
    launcher = ("MASTER_", "NODE_RANK", "LOCAL_RANK", "GLOBAL_RANK", "WORLD_SIZE", "SLURM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(launcher)}
    return {**env, "PYTHONUNBUFFERED": "1"}


def plain_node(rank: int, port: int) -> dict[str, str]:
    return {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "NODE_RANK": str(rank),
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",  # the process exists already: Lightning starts no other
    }


def slurm_task(rank: int, port: int) -> dict[str, str]:
    """What ``srun --nodes=2 --ntasks-per-node=1`` sets in task ``rank`` (MASTER_ADDR from the
    node list; a free port instead of the one Lightning derives from the job id).

    No ``NODE_RANK`` or ``LOCAL_RANK``: had Lightning not picked ``SLURMEnvironment``, both
    processes would take global rank 0 and never form a group of two.
    """
    return {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "ipe",
        "SLURM_NODELIST": "127.0.0.1",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_NNODES": "2",
        "SLURM_NTASKS": "2",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_PROCID": str(rank),
        "SLURM_NODEID": str(rank),
        "SLURM_LOCALID": "0",
        "MASTER_PORT": str(port),
    }


def launch(
    overrides: list[list[str]], output_dir: Path, environments: list[dict[str, str]], timeout: float
) -> list[tuple[int, str]]:
    """Start one ``run.py`` per node in one run directory; ``(exit status, output)`` of each."""
    processes = [
        subprocess.Popen(
            [sys.executable, str(REPO / "run.py"), *args, f"hydra.run.dir={output_dir}"],
            cwd=REPO,
            env={**clean_environment(), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for args, env in zip(overrides, environments, strict=True)
    ]
    results = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=timeout)
            results.append((process.returncode, output))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return results


def test_the_ddp_preset_times_collectives_out():
    from datetime import timedelta

    from hydra.utils import instantiate
    from pytorch_lightning.strategies import DDPStrategy

    from ipe_lightning.runtime.ddp import ddp_strategy

    strategy = instantiate(compose_config(["trainer=ddp"]).trainer.strategy)
    assert isinstance(strategy, DDPStrategy)
    assert strategy._timeout == timedelta(seconds=600)  # what init_process_group receives
    with pytest.raises(ValueError, match="timeout_s"):
        ddp_strategy(timeout_s=0)


@pytest.fixture(scope="module")
def two_node_training(tiny_hr_dir, tmp_path_factory):
    """Train on two nodes started with ``variables`` (once per module); the folder, the base
    overrides and the record."""
    done = {}

    def train(variables):
        if variables not in done:
            tmp_path = tmp_path_factory.mktemp(f"multinode_{variables.__name__}")
            base = tiny_overrides(tiny_hr_dir, tmp_path / "cache")
            port = free_port()
            nodes = launch(
                [two_nodes(base)] * 2,
                tmp_path / "train",
                [variables(r, port) for r in (0, 1)],
                600,
            )
            for status, output in nodes:
                assert status == 0, output[-4000:]
            done[variables] = tmp_path, base, read_record(tmp_path / "train")
        return done[variables]

    return train


@pytest.fixture(scope="module")
def trained(two_node_training):
    """The two-node training with plain variables, which the test-mode runs evaluate."""
    return two_node_training(plain_node)


@pytest.mark.slow
@pytest.mark.parametrize("variables", [plain_node, slurm_task], ids=["env", "slurm"])
def test_two_nodes_train_in_one_directory_and_write_each_checkpoint_once(
    two_node_training, variables
):
    tmp_path, _, record = two_node_training(variables)
    assert record["status"] == "finished" and record["global_step"] >= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "train"]
    checkpoints = sorted(p.name for p in (tmp_path / "train").rglob("*.ckpt"))
    assert "last.ckpt" in checkpoints and len(checkpoints) == len(set(checkpoints))
    assert not list((tmp_path / "train").rglob("*.tmp"))  # no second writer's leftovers


@pytest.mark.slow
@pytest.mark.parametrize("variables", [plain_node, slurm_task], ids=["env", "slurm"])
def test_two_nodes_test_like_one_process(trained, variables):
    tmp_path, base, record = trained
    checkpoint = record["checkpoints"]["last"]
    test = [*base, "mode=test", f"ckpt_path={checkpoint}"]
    single = run_script("run.py", [*test, "trainer=cpu"], tmp_path / "test_one", timeout=600)
    assert single.returncode == 0, single.stderr[-4000:]
    port = free_port()
    out = tmp_path / f"test_{variables.__name__}"
    nodes = launch([two_nodes(test)] * 2, out, [variables(r, port) for r in (0, 1)], 600)
    for status, output in nodes:
        assert status == 0, output[-4000:]
    one, two = read_record(tmp_path / "test_one")["metrics"], read_record(out)["metrics"]
    assert one.keys() == two.keys() == {"folder/x2", "folder/x3"}
    for loader, values in one.items():
        for name, value in values.items():
            assert math.isclose(two[loader][name], value, abs_tol=1e-6), (loader, name)


@pytest.mark.slow
def test_a_rank_that_dies_fails_the_job_with_its_error_in_bounded_time(trained):
    tmp_path, base, record = trained
    good = [*base, "mode=test", f"ckpt_path={record['checkpoints']['last']}"]
    missing = tmp_path / "nowhere" / "lost.ckpt"
    bad = [*base, "mode=test", f"ckpt_path={missing}"]  # only node 1 cannot load it
    port = free_port()
    start = time.monotonic()
    (status0, output0), (status1, output1) = launch(
        [two_nodes(good), two_nodes(bad)],
        tmp_path / "dies",
        [slurm_task(r, port) for r in (0, 1)],
        timeout=TIMEOUT_S + 240,
    )
    elapsed = time.monotonic() - start
    assert status1 != 0 and "lost.ckpt" in output1
    assert status0 != 0, output0[-4000:]  # the survivor does not wait forever, nor succeed
    assert elapsed < TIMEOUT_S + 240
    # The job's one record (rank 0's) names the cause, the dead rank's error; the survivor's
    # time-out comes second.
    died = read_record(tmp_path / "dies")
    assert died["status"] == "failed"
    assert died["error"].startswith("rank 1: MissingFileError: ckpt_path="), died["error"]
    assert "lost.ckpt" in died["error"] and "lost.ckpt" in died["traceback"]
    (secondary,) = died["secondary_errors"]
    assert secondary.startswith("rank 0: "), secondary
