"""Launch a list of jobs through the configured Hydra launcher (basic, submitit local or SLURM).

Hydra's basic sweeper can only launch the full product of its ``params``. A resumed sweep
launches the jobs that still need work, which is not a product, so this module does what the
sweeper does with an explicit list: compose the sweep's config in multirun mode, instantiate the
launcher of ``hydra/launcher`` and call ``launcher.launch(job_overrides)``. Every job then runs
exactly as under ``python run.py --multirun``: its own output directory
(``hydra.sweep.dir``/``hydra.sweep.subdir``), ``.hydra/`` files, log file and ``HydraConfig``.

It uses two Hydra internals (``Hydra.compose_config`` through ``GlobalHydra`` and
``hydra._internal.callbacks.Callbacks``), stable across Hydra 1.3.x; ``pyproject.toml`` pins
``hydra-core<1.4``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig


def run_task(cfg: DictConfig) -> dict[str, Any]:
    """One job: what ``run.py`` does with its config (module-level, so submitit can pickle it)."""
    from ipe_lightning.allocator import keep_freed_memory

    keep_freed_memory()  # a submitit job's own process; in-process jobs: sweep.py did it
    from ipe_lightning.report_console import print_record
    from ipe_lightning.runtime.lock import RunDirectoryInUse
    from ipe_lightning.tasks import run

    try:
        record = run(cfg)
    except RunDirectoryInUse as busy:  # a failed job, not the end of an in-process sweep
        raise RuntimeError(str(busy.error)) from None
    if record:
        print_record(record)
    return record


@contextmanager
def hydra_session(conf_dir: Path, job_name: str = "run") -> Iterator[Any]:
    """The global Hydra instance for ``conf_dir`` (the same tree ``run.py`` composes)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=str(conf_dir), job_name=job_name, version_base="1.3"):
        yield GlobalHydra.instance().hydra


def compose_job(hydra: Any, overrides: Sequence[str]) -> DictConfig:
    """One job's config, as the launcher will compose it (validates the overrides early); its
    ``${hydra:runtime.choices...}`` resolve as in the job (``HydraConfig`` is set to it)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    cfg = hydra.compose_config(
        config_name="config", overrides=list(overrides), run_mode=RunMode.RUN
    )
    HydraConfig.instance().set_config(cfg)
    return cfg


def launch_jobs(
    hydra: Any,
    master_overrides: Sequence[str],
    job_overrides: Sequence[Sequence[str]],
) -> list[Any]:
    """Launch ``job_overrides`` with the launcher chosen in ``master_overrides``; wait for them.

    ``master_overrides``: the sweep's ``hydra.*`` overrides (``hydra.sweep.dir``, launcher
    parameters) and the overrides every job shares (``launcher=...`` picks the launcher).
    Returns Hydra ``JobReturn``s; a job that raised has ``status`` FAILED and does not stop the
    others (the launchers catch its exception).
    """
    from hydra._internal.callbacks import Callbacks
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.plugins import Plugins
    from hydra.types import HydraContext, RunMode

    config = hydra.compose_config(
        config_name="config",
        overrides=list(master_overrides),
        run_mode=RunMode.MULTIRUN,
        with_log_configuration=True,
    )
    HydraConfig.instance().set_config(config)
    launcher = Plugins.instance().instantiate_launcher(
        hydra_context=HydraContext(config_loader=hydra.config_loader, callbacks=Callbacks(config)),
        task_function=run_task,
        config=config,
    )
    return list(launcher.launch([list(o) for o in job_overrides], initial_job_idx=0))
