"""DDP inside a Hydra multirun: every job runs its own ranks in its own directory.

Lightning's DDP launcher (``_SubprocessScriptLauncher``) starts ranks 1..N-1 by re-running the
main script: ``python <sys.argv[0]> <sys.argv[1:]> hydra.run.dir=<HydraConfig run.dir>`` (or
``python -m <__main__ module> ...``). Inside a multirun that is wrong three times over:
``sys.argv`` is the *sweep's* command (the ranks would relaunch the whole sweep), ``run.dir`` is
the unused run-mode directory (``outputs/<name>/<now>``, not the job's), and under submitit the
main module is submitit's own. It also leaves ``MASTER_PORT``, ``LOCAL_RANK``, ``WORLD_SIZE``
and an initialised process group behind, which the next job of an in-process (basic launcher)
sweep would wrongly reuse.

:func:`ddp_job_scope` wraps ``trainer.fit``/``trainer.test`` of one job: in a multirun job it
points ``run.dir`` at the job's output directory and ``sys.argv`` at ``run.py`` plus the job's
own overrides, so each rank runs ``run.py <job overrides> hydra.run.dir=<job dir>``; afterwards
it restores all of that, waits for the ranks and tears the process group down. Outside a
multirun (``python run.py ...``) it does nothing.

A rank that fails is the cause of the job's failure, but only global rank 0 writes the job's
record, and what rank 0 itself sees is the side effect (a collective that timed out waiting for
the dead rank). So every other rank that fails leaves its error in the shared run directory
(:func:`write_rank_error`, ``rank_errors/<rank>.json``), and rank 0's record names the error of
the rank that failed first (:func:`rank_errors`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ipe_lightning.results import write_json_atomic

# What Lightning's launcher (and its thread-count helper) set in the parent process.
LAUNCHER_ENVIRONMENT = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "OMP_NUM_THREADS",
)
RANK_EXIT_TIMEOUT_S = 120.0
# How long a collective (all-reduce, barrier) waits for a rank before it fails: a rank that died
# must end the job with an error, not leave the others blocked for torch's default 30 minutes
# (nor NCCL's default of 10). Long enough for a slow first decode of the cache or a checkpoint.
COLLECTIVE_TIMEOUT_S = 600.0
RANK_ERRORS_DIR = "rank_errors"  # in the run directory, which every rank of a job shares
# What tells one launch of a job from the next in the same directory (a requeue increments
# SLURM_RESTART_COUNT): a rank error left by an earlier launch is not this one's cause.
LAUNCH_VARIABLES = ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_RESTART_COUNT", "TORCHELASTIC_RUN_ID")


def ddp_strategy(timeout_s: float = COLLECTIVE_TIMEOUT_S, **options: Any) -> Any:
    """Lightning's ``DDPStrategy`` whose process group times collectives out after
    ``timeout_s`` seconds (configs give seconds; torch wants a ``timedelta``)."""
    from datetime import timedelta

    from pytorch_lightning.strategies import DDPStrategy

    if not timeout_s > 0:
        raise ValueError(f"trainer.strategy.timeout_s must be positive seconds, got {timeout_s!r}")
    return DDPStrategy(timeout=timedelta(seconds=float(timeout_s)), **options)


def multirun_job_dir() -> str | None:
    """The job's output directory when running as a job of a multirun, else ``None``."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    output_dir = OmegaConf.select(hydra, "runtime.output_dir", default=None)
    if output_dir is None:  # composed without running (tests, notebooks): no job to relaunch
        return None
    if str(hydra.mode) == "RunMode.MULTIRUN":
        return output_dir
    # Jobs launched by ipe_lightning.sweep.launch have no mode set: their output directory is
    # the sweep's subdirectory, not the (unresolved-at-launch) run directory.
    run_dir = Path(hydra.runtime.cwd) / str(hydra.run.dir)
    return output_dir if Path(output_dir).resolve() != run_dir.resolve() else None


def entry_script() -> str:
    """``run.py`` beside the primary config directory (``conf/``) of this job."""
    from hydra.core.hydra_config import HydraConfig

    for source in HydraConfig.get().runtime.config_sources:
        if source.provider == "main" and source.schema == "file":
            candidate = Path(source.path).parent / "run.py"
            if candidate.is_file():
                return str(candidate.resolve())
    fallback = Path(__file__).resolve().parents[2] / "run.py"
    if fallback.is_file():
        return str(fallback)
    raise FileNotFoundError("run.py not found beside the config directory; DDP ranks need it")


@contextlib.contextmanager
def ddp_job_scope(trainer: Any = None) -> Iterator[None]:
    """Run one job's fit/test so that Lightning's DDP ranks are this job's (module doc)."""
    job_dir = multirun_job_dir()
    if job_dir is None:
        yield
        return

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import read_write

    import __main__

    hydra_cfg = HydraConfig.instance().cfg.hydra
    saved_run_dir = hydra_cfg.run.dir
    saved_argv = list(sys.argv)
    saved_spec = getattr(__main__, "__spec__", None)
    saved_environment = {key: os.environ.get(key) for key in LAUNCHER_ENVIRONMENT}
    saved_threads = _torch_threads()
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = job_dir
    sys.argv = [entry_script(), *hydra_cfg.overrides.task]
    __main__.__spec__ = None  # so Lightning runs sys.argv[0] (run.py), not `-m <main module>`
    try:
        yield
    finally:
        _wait_for_ranks(trainer)
        _destroy_process_group()
        with read_write(hydra_cfg):
            hydra_cfg.run.dir = saved_run_dir
        sys.argv = saved_argv
        __main__.__spec__ = saved_spec
        for key, value in saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _set_torch_threads(saved_threads)


def _wait_for_ranks(trainer: Any) -> None:
    """Wait for the ranks this job started, then detach Lightning's watchdog from them.

    Lightning's child-process observer SIGKILLs the *main* process when a rank exits non-zero;
    in a sweep that would end every later job too, so it stops watching once the job is over.
    """
    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    processes = getattr(launcher, "procs", None)
    if not processes:
        return
    for process in processes:
        with contextlib.suppress(Exception):
            process.wait(timeout=RANK_EXIT_TIMEOUT_S)
    processes.clear()  # the observer holds this same list: nothing left to watch


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _set_torch_threads(count: int) -> None:
    import torch

    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


@dataclass(frozen=True)
class RankError:
    """How one rank of a job failed, as it left it for rank 0."""

    rank: str  # rank_name()
    launch: str  # launch_id()
    time: float  # time.time() when it failed
    error: str  # errors.describe
    traceback: str  # errors.traceback_tail


def rank_name() -> str:
    """This process's rank in a DDP job, from the launcher's variables (read before Lightning
    sets its own): ``rank 1`` (torchrun's ``RANK``, srun's ``SLURM_PROCID``), else ``node 1,
    local rank 0`` (Lightning's launcher: ``NODE_RANK``, ``LOCAL_RANK``); ``rank 0`` alone."""
    environ = os.environ
    if environ.get("RANK", "").isdigit():
        return f"rank {environ['RANK']}"
    local = environ.get("LOCAL_RANK")
    # Under SLURM, a LOCAL_RANK other than the task's own is a rank Lightning started itself.
    if environ.get("SLURM_PROCID", "").isdigit() and local in (None, environ.get("SLURM_LOCALID")):
        return f"rank {environ['SLURM_PROCID']}"
    node, local = environ.get("NODE_RANK", "0"), local or "0"
    return f"node {node}, local rank {local}" if (node, local) != ("0", "0") else "rank 0"


def launch_id() -> str:
    """What the ranks of one launch share and the next launch does not (``LAUNCH_VARIABLES``);
    empty outside a scheduler."""
    return " ".join(f"{v}={os.environ[v]}" for v in LAUNCH_VARIABLES if v in os.environ)


def _rank_error_path(output_dir: str | Path, rank: str) -> Path:
    return Path(output_dir) / RANK_ERRORS_DIR / f"{re.sub(r'[^0-9a-z]+', '-', rank)}.json"


def write_rank_error(output_dir: str | Path, failure: RankError) -> None:
    """Leave ``failure`` for rank 0 (atomically: rank 0 may read it at any moment)."""
    write_json_atomic(_rank_error_path(output_dir, failure.rank), asdict(failure))


def rank_errors(output_dir: str | Path, launch: str) -> list[RankError]:
    """The errors other ranks of launch ``launch`` left in ``output_dir``, the first first."""
    found = []
    for path in sorted((Path(output_dir) / RANK_ERRORS_DIR).glob("*.json")):
        try:
            failure = RankError(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # unreadable: it cannot name a cause
        if failure.launch == launch:
            found.append(failure)
    return sorted(found, key=lambda failure: failure.time)


def clear_rank_errors(output_dir: str | Path, rank: str | None = None) -> None:
    """Remove the rank errors of ``output_dir`` (only ``rank``'s own, when given): rank 0 once
    its record has told them, each other rank when it starts (its error of an earlier run)."""
    directory = Path(output_dir) / RANK_ERRORS_DIR
    paths = [_rank_error_path(output_dir, rank)] if rank else directory.glob("*.json")
    for path in list(paths):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    with contextlib.suppress(OSError):
        directory.rmdir()  # only when empty
