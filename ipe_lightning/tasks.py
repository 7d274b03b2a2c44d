"""train / test / predict as functions of a composed config (``run.py`` only dispatches)."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ipe_lightning import results
from ipe_lightning.configs import plain
from ipe_lightning.models import load_network, read_checkpoint
from ipe_lightning.module import SRModule
from ipe_lightning.predict import PredictionError, input_files, predict_files, report
from ipe_lightning.results import git_commit, metrics_by_loader
from ipe_lightning.runtime.ddp import ddp_job_scope
from ipe_lightning.runtime.loggers import build_loggers, isolated_wandb_run


def build_datamodule(cfg: DictConfig, stage: str | None = None) -> pl.LightningDataModule:
    """The data module, its paths checked before anything expensive is built (``stage="test"``
    checks only the evaluation sets)."""
    datamodule = instantiate(cfg.data)  # with its parts: data.images, eval.sets.<name>.images
    datamodule.check(stage)
    return datamodule


def build_callbacks(cfg: DictConfig, loggers: list[Any]) -> list[pl.Callback]:
    """The ``callbacks`` group, instantiated; without a logger, no ``LearningRateMonitor`` (it
    refuses to start when it has nowhere to write, and ``logger=none`` must still train)."""
    callbacks = [instantiate(spec) for spec in (cfg.get("callbacks") or {}).values() if spec]
    if not loggers:
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    return callbacks


def build_trainer(cfg: DictConfig, loggers: list[Any]) -> pl.Trainer:
    resolved = {k: plain(v) for k, v in cfg.items() if k != "hydra"}
    for logger in loggers:
        logger.log_hyperparams({"config": resolved})  # the whole resolved config, not only hparams
    callbacks = build_callbacks(cfg, loggers)
    return instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)


def resume_checkpoint(cfg: DictConfig) -> str | None:
    """``ckpt_path`` if given; with ``resume=auto`` the run directory's ``last.ckpt`` if any."""
    if cfg.get("ckpt_path"):
        return str(cfg.ckpt_path)
    last = Path(cfg.paths.checkpoint_dir) / "last.ckpt"
    if cfg.get("resume", "auto") == "auto" and last.is_file():
        print(f"[ipe-lightning] resuming from {last}")
        return str(last)
    return None


def module_kwargs(cfg: DictConfig, datamodule: pl.LightningDataModule) -> dict[str, Any]:
    return {
        "model_name": str(cfg.model.get("name", "")),
        "optimizer": plain(cfg.get("optimizer")),
        "scheduler": plain(cfg.get("scheduler")),
        "test_sets": list(datamodule.test_set_names),
        "max_queries": int(cfg.test.max_queries),
        "tile": cfg.test.get("tile"),
    }


def overrides() -> list[str]:
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # not running under Hydra (e.g. called from a notebook)
        return []


def checkpoint_paths(trainer: pl.Trainer) -> dict[str, str | None]:
    paths: dict[str, str | None] = {"best": None, "last": None}
    for callback in trainer.checkpoint_callbacks:
        paths["best"] = paths["best"] or getattr(callback, "best_model_path", None) or None
        paths["last"] = paths["last"] or getattr(callback, "last_model_path", None) or None
    return paths


@dataclass
class Job:
    """One job of ``train``/``test``: its config, its start, and its trainer once built (the
    record of a job that failed before has step 0 and no checkpoints)."""

    cfg: DictConfig
    started: float = field(default_factory=time.time)
    trainer: pl.Trainer | None = None


def write_record(
    job: Job, status: str, tested: Any = None, error: str | None = None
) -> dict[str, Any]:
    """Write ``metrics.json`` (rank 0 only, stamped with the schema version) and return it."""
    cfg, trainer = job.cfg, job.trainer
    record = {
        "status": status,
        "mode": str(cfg.mode),
        "model": str(cfg.model.get("name", "")),
        "run_name": str(cfg.get("run_name", "")),
        "tags": list(cfg.get("tags") or []),
        "overrides": overrides(),
        "git_commit": git_commit(),
        "wall_time_s": round(time.time() - job.started, 1),
        "global_step": trainer.global_step if trainer else 0,
        "checkpoints": checkpoint_paths(trainer) if trainer else {},
        "metrics": metrics_by_loader(tested or []),
    }
    if error:
        record["error"] = error
    if trainer is None or trainer.is_global_zero:
        return results.write_record(cfg.paths.output_dir, record)
    return record


@contextlib.contextmanager
def recorded_failure(job: Job) -> Iterator[None]:
    """A job that fails or is preempted still leaves a ``metrics.json`` saying so.

    SIGTERM (preemption) exits with status 143 after ``last.ckpt`` was saved, so schedulers and
    sweeps see that the job did not finish.
    """
    try:
        yield
    except SIGTERMException:
        write_record(job, "preempted")
        raise SystemExit(143) from None
    except Exception as error:
        write_record(job, "failed", error=f"{type(error).__name__}: {error}")
        raise


def train(cfg: DictConfig) -> dict[str, Any]:
    job = Job(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    module = SRModule(net=plain(cfg.model.net), **module_kwargs(cfg, datamodule))
    with isolated_wandb_run(), recorded_failure(job):
        job.trainer = trainer = build_trainer(cfg, build_loggers(cfg.get("logger")))
        with ddp_job_scope(trainer), warnings.catch_warnings():  # ddp: see runtime/ddp.py
            # Lightning warns that a mid-epoch resume replays the epoch's samples unless the
            # loader has a state_dict; our sampler (data/sampler.py) restarts at the next sample
            # itself (tested: killed mid-epoch and resumed == uninterrupted).
            warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_checkpoint(cfg))
            tested = trainer.test(module, datamodule=datamodule)
        return write_record(job, "finished", tested)


def test(cfg: DictConfig) -> dict[str, Any]:
    job = Job(cfg)
    if not cfg.get("ckpt_path"):
        raise ValueError("mode=test needs ckpt_path=<our .ckpt or an official LIIF/MetaSR .pth>")
    datamodule = build_datamodule(cfg, "test")
    net_config, state = read_checkpoint(cfg.ckpt_path)
    module = SRModule(net=net_config, **module_kwargs(cfg, datamodule))
    module.net.load_state_dict(state)
    with isolated_wandb_run(), recorded_failure(job):
        job.trainer = trainer = build_trainer(cfg, build_loggers(cfg.get("logger")))
        with ddp_job_scope(trainer):
            tested = trainer.test(module, datamodule=datamodule)
        return write_record(job, "finished", tested)


def predict(cfg: DictConfig) -> dict[str, Any]:
    options = cfg.predict
    if not cfg.get("ckpt_path") or not options.get("input"):
        raise ValueError(
            "mode=predict needs ckpt_path=<checkpoint> and predict.input=<image file or folder>"
        )
    net, _ = load_network(cfg.ckpt_path)
    device = (
        options.device
        if options.device != "auto"
        else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    summary = predict_files(
        net,
        input_files(options.input),
        options.output_dir,
        scale=plain(options.get("scale")),
        size=plain(options.get("size")),
        overwrite=bool(options.overwrite),
        device=device,
        precision=str(options.precision),
        max_queries=int(cfg.test.max_queries),
        tile=cfg.test.get("tile"),
    )
    print(report(summary))
    if summary.failed:
        raise PredictionError(f"{len(summary.failed)} input(s) could not be read; see above")
    return {}


TASKS = {"train": train, "test": test, "predict": predict}


def run(cfg: DictConfig) -> dict[str, Any]:
    if cfg.mode not in TASKS:
        raise ValueError(f"unknown mode {cfg.mode!r}; choose one of {sorted(TASKS)}")
    return TASKS[cfg.mode](cfg)
