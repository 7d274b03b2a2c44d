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
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    # Jobs launched by ipe_lightning.sweeps.launch have no mode set: their output directory is
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
