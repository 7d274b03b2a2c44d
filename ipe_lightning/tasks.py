"""train / test / predict as functions of a composed config (``run.py`` only dispatches)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor

from ipe_lightning.configs import plain
from ipe_lightning.errors import MissingFileError, SettingError
from ipe_lightning.models import load_network, read_checkpoint
from ipe_lightning.module import SRModule
from ipe_lightning.predict import PredictionError, input_files, predict_files, report
from ipe_lightning.runtime import ddp
from ipe_lightning.runtime import resume as runtime_resume
from ipe_lightning.runtime.checkpoints import stop_on_interrupt
from ipe_lightning.runtime.ddp import ddp_job_scope
from ipe_lightning.runtime.job import (
    Job,
    readable,
    recorded_failure,
    write_per_image,
    write_record,
)
from ipe_lightning.runtime.lock import run_directory_lock
from ipe_lightning.runtime.loggers import (
    build_loggers,
    isolated_wandb_run,
    summarise_test_in_wandb,
    wandb_job,
)


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
    """``ckpt_path`` if given; with ``resume=auto`` the newest readable checkpoint of the run
    directory, if any (runtime/resume.py: unreadable ones are reported and moved aside)."""
    return runtime_resume.resume_checkpoint(
        cfg.paths.checkpoint_dir, cfg.get("ckpt_path"), str(cfg.get("resume", "auto"))
    )


def module_kwargs(cfg: DictConfig, datamodule: pl.LightningDataModule) -> dict[str, Any]:
    return {
        "model_name": str(cfg.model.get("name", "")),
        "optimizer": plain(cfg.get("optimizer")),
        "scheduler": plain(cfg.get("scheduler")),
        "test_sets": list(datamodule.test_set_names),
        "max_queries": int(cfg.test.max_queries),
        "tile": cfg.test.get("tile"),
        "compile": plain(cfg.get("compile")),
    }


def check_test_sets_cover_ranks(datamodule: pl.LightningDataModule, trainer: pl.Trainer) -> None:
    """Every rank needs a test image of every set (a rank with none fails in the collectives,
    after all the training): refuse a set with fewer images than ranks before DDP starts."""
    ranks = trainer.num_nodes * trainer.num_devices
    sizes: dict[str, int] = {}
    for name, dataset in getattr(datamodule, "eval_datasets", []):
        sizes.setdefault(name.split("/")[0], len(dataset))
    small = {name: size for name, size in sizes.items() if size < ranks}
    if small:
        listing = ", ".join(f"{name!r} has {size} image(s)" for name, size in small.items())
        raise SettingError(
            f"trainer.devices={trainer.num_devices} x trainer.num_nodes={trainer.num_nodes} "
            f"= {ranks} ranks, but test set {listing}: every rank needs at least one test "
            f"image; use at most {min(small.values())} devices in all for this evaluation"
        )


def require_checkpoint(path: Any) -> str:
    """``ckpt_path`` as a string, or a :class:`MissingFileError` naming it."""
    if not Path(str(path)).expanduser().is_file():
        raise MissingFileError(f"ckpt_path={path}: no such checkpoint file")
    return str(path)


def test_and_record(job: Job, module: SRModule, datamodule: pl.LightningDataModule) -> Any:
    """Test on every evaluation set (Lightning's own results table off: ours is printed) and
    write the per-image results."""
    tested = job.trainer.test(module, datamodule=datamodule, verbose=False)
    write_per_image(job, module)
    return tested


def finish(job: Job, tested: Any) -> dict[str, Any]:
    """The finished record, written to ``metrics.json`` and summarised in W&B."""
    record = write_record(job, "finished", tested)
    summarise_test_in_wandb(job.trainer.loggers, record, job.cfg.paths.output_dir)
    return record


def check_settings(cfg: DictConfig) -> None:
    """Refuse what no part of a job checks before it is used: an unknown ``mode``, and a ``seed``
    that is not a whole number (``seed_everything`` and the data module would fail on it with a
    message naming neither). Preflight (``sweeps/preflight.py``) checks these too."""
    if cfg.mode not in TASKS:
        raise SettingError(f"unknown mode={cfg.mode!r}; choose one of {sorted(TASKS)}")
    seed = cfg.get("seed")
    if cfg.mode != "predict" and not _whole_number(seed):
        raise SettingError(f"seed={seed}: a seed is a whole number (seed=0)")


def _whole_number(value: Any) -> bool:
    if isinstance(value, str):
        return value.lstrip("-").isdigit()
    return isinstance(value, int) and not isinstance(value, bool)


def train(job: Job) -> dict[str, Any]:
    cfg = job.cfg
    pl.seed_everything(int(cfg.seed), workers=True)
    with isolated_wandb_run():
        if cfg.get("ckpt_path"):
            require_checkpoint(cfg.ckpt_path)
        datamodule = build_datamodule(cfg)
        module = SRModule(net=plain(cfg.model.net), **module_kwargs(cfg, datamodule))
        job.trainer = trainer = build_trainer(cfg, build_loggers(cfg.get("logger"), wandb_job(cfg)))
        check_test_sets_cover_ranks(datamodule, trainer)
        # ddp: see runtime/ddp.py; Ctrl-C saves last.ckpt: runtime/checkpoints.py
        with ddp_job_scope(trainer), stop_on_interrupt(), warnings.catch_warnings():
            # Lightning warns that a mid-epoch resume replays the epoch's samples unless the
            # loader has a state_dict; our sampler (data/sampler.py) restarts at the next sample
            # itself (tested: killed mid-epoch and resumed == uninterrupted).
            warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_checkpoint(cfg))
            tested = test_and_record(job, module, datamodule)
        return finish(job, tested)


def test(job: Job) -> dict[str, Any]:
    cfg = job.cfg
    with isolated_wandb_run():
        if not cfg.get("ckpt_path"):
            raise SettingError(
                "mode=test needs ckpt_path=<our .ckpt or an official LIIF/MetaSR .pth>"
            )
        datamodule = build_datamodule(cfg, "test")
        net_config, state = read_checkpoint(require_checkpoint(cfg.ckpt_path))
        module = SRModule(net=net_config, **module_kwargs(cfg, datamodule))
        module.net.load_state_dict(state)
        job.trainer = trainer = build_trainer(cfg, build_loggers(cfg.get("logger"), wandb_job(cfg)))
        check_test_sets_cover_ranks(datamodule, trainer)
        with ddp_job_scope(trainer), stop_on_interrupt():
            tested = test_and_record(job, module, datamodule)
        return finish(job, tested)


def predict(cfg: DictConfig) -> dict[str, Any]:
    options = cfg.predict
    if not cfg.get("ckpt_path") or not options.get("input"):
        raise SettingError(
            "mode=predict needs ckpt_path=<checkpoint> and predict.input=<image file or folder>"
        )
    net, _ = load_network(require_checkpoint(cfg.ckpt_path))
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


JOBS = {"train": train, "test": test}  # a run directory each, with its record
TASKS = (*JOBS, "predict")


def run(cfg: DictConfig) -> dict[str, Any]:
    """The task ``cfg.mode``. Train and test take the run directory's lock (a directory another
    live process holds is refused before anything is written there), then record whatever fails
    from here to their last batch in ``metrics.json`` and the job's log."""
    if readable(cfg, "mode", None) == "predict":
        check_settings(cfg)
        return predict(cfg)
    with run_directory_lock(cfg.paths.output_dir):  # one writer per run directory
        job = Job(cfg)
        if not job.writes_the_record():
            ddp.clear_rank_errors(cfg.paths.output_dir, job.rank)  # of an earlier run
        with recorded_failure(job):
            check_settings(cfg)
            return JOBS[cfg.mode](job)
