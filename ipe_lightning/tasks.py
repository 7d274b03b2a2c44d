"""train / test / predict as functions of a composed config (``run.py`` only dispatches)."""

from __future__ import annotations

import contextlib
import logging
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
from omegaconf import DictConfig, ListConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ipe_lightning import results
from ipe_lightning.configs import plain
from ipe_lightning.errors import MissingFileError, SettingError, describe, traceback_tail
from ipe_lightning.models import load_network, read_checkpoint
from ipe_lightning.module import SRModule
from ipe_lightning.predict import PredictionError, input_files, predict_files, report
from ipe_lightning.results import git_commit, metrics_by_loader
from ipe_lightning.runtime import ddp
from ipe_lightning.runtime import resume as runtime_resume
from ipe_lightning.runtime.checkpoints import INTERRUPTED_EXIT, Interrupted, stop_on_interrupt
from ipe_lightning.runtime.ddp import ddp_job_scope
from ipe_lightning.runtime.lock import is_global_rank_zero, run_directory_lock
from ipe_lightning.runtime.log import get_logger
from ipe_lightning.runtime.loggers import (
    build_loggers,
    isolated_wandb_run,
    summarise_test_in_wandb,
    wandb_job,
)

log = get_logger(__name__)


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
    """One job of ``train``/``test``: its config, its start, its trainer once built (the record
    of a job that failed before has step 0 and no checkpoints), and which rank of which launch
    this process is (``runtime/ddp.py``: read before Lightning sets its own variables)."""

    cfg: DictConfig
    started: float = field(default_factory=time.time)
    trainer: pl.Trainer | None = None
    rank: str = field(default_factory=ddp.rank_name)
    launch: str = field(default_factory=ddp.launch_id)

    def writes_the_record(self) -> bool:
        """Global rank 0 writes ``metrics.json``; the other ranks leave their errors to it."""
        return self.trainer.is_global_zero if self.trainer else is_global_rank_zero()


def write_per_image(job: Job, module: SRModule) -> None:
    """``per_image.csv`` beside ``metrics.json`` (rank 0; the rows are gathered from every rank)."""
    if job.trainer is None or job.trainer.is_global_zero:
        results.write_per_image(job.cfg.paths.output_dir, module.per_image_results)


def write_record(
    job: Job, status: str, tested: Any = None, error: BaseException | None = None
) -> dict[str, Any]:
    """Write ``metrics.json`` (rank 0 only, stamped with the schema version) and return it; a
    failed job's record has its ``error`` and the tail of its ``traceback``, those of the rank
    that failed first (:func:`failure_fields`). Another rank leaves its error to rank 0."""
    cfg, trainer = job.cfg, job.trainer
    record = {
        "status": status,
        # A record of a failure must not fail on the setting that caused it: those that do not
        # resolve are left empty.
        "mode": str(readable(cfg, "mode", "")),
        "model": str(readable(cfg, "model.name", "")),
        "run_name": str(readable(cfg, "run_name", "")),
        "tags": [str(tag) for tag in readable(cfg, "tags", None) or []],
        "overrides": overrides(),
        "git_commit": git_commit(),
        "wall_time_s": round(time.time() - job.started, 1),
        "global_step": trainer.global_step if trainer else 0,
        "checkpoints": checkpoint_paths(trainer) if trainer else {},
        "metrics": metrics_by_loader(tested or []),
    }
    output_dir = cfg.paths.output_dir
    own = None
    if error is not None:
        own = ddp.RankError(
            job.rank, job.launch, time.time(), describe(error), traceback_tail(error)
        )
    if not job.writes_the_record():
        if own is not None:
            ddp.write_rank_error(output_dir, own)
        return {**record, **failure_fields(own, [])} if own else record
    if own is not None:
        record.update(failure_fields(own, ddp.rank_errors(output_dir, job.launch)))
    written = results.write_record(output_dir, record)
    ddp.clear_rank_errors(output_dir)  # told (or of a run that is over)
    return written


def failure_fields(own: ddp.RankError, others: list[ddp.RankError]) -> dict[str, Any]:
    """The ``error`` and ``traceback`` of a failed record: this rank's own, or, when other ranks
    failed too, the first failure's (the cause: the others are often its side effects, such as
    a collective that timed out waiting for the dead rank), each error prefixed with its rank and
    the later ones listed as ``secondary_errors``."""
    if not others:
        return {"error": own.error, "traceback": own.traceback}
    first, *later = sorted([own, *others], key=lambda failed: failed.time)
    return {
        "error": f"{first.rank}: {first.error}",
        "traceback": first.traceback,
        "secondary_errors": [f"{failed.rank}: {failed.error}" for failed in later],
    }


def readable(cfg: DictConfig, key: str, default: Any) -> Any:
    """``cfg.<key>`` resolved (containers as plain lists and dicts), or ``default`` when it is
    absent or does not resolve."""
    try:
        value = OmegaConf.select(cfg, key, default=default)
        return plain(value) if isinstance(value, DictConfig | ListConfig) else value
    except Exception:
        return default


@contextlib.contextmanager
def recorded_failure(job: Job) -> Iterator[None]:
    """A job that fails or is preempted still leaves a ``metrics.json`` saying so.

    SIGTERM (preemption) exits with status 143 after ``last.ckpt`` was saved, so schedulers and
    sweeps see that the job did not finish; Ctrl-C (SIGINT) the same way with status 130.
    """
    try:
        yield
    except Interrupted:
        write_record(job, "interrupted")
        raise SystemExit(INTERRUPTED_EXIT) from None
    except SIGTERMException:
        write_record(job, "preempted")
        raise SystemExit(143) from None
    except Exception as error:
        record = write_record(job, "failed", error=error)
        log_failure(record["error"], error)
        raise


def log_failure(told: str, error: BaseException) -> None:
    """``told`` (the record's error) in one line in the job's log file, and ``error``'s traceback.

    On the console, the line only in a sweep's job, where nothing else tells it while the sweep
    runs; ``run.py`` tells the console itself (its one message for a user error, Hydra's
    traceback for a bug), so there the line would say it twice."""
    line = "job failed: " + (told.strip().splitlines() or [""])[0]
    if ddp.multirun_job_dir() is not None:
        log.error("%s", line)  # console and log file
    else:
        _to_log_files(log.makeRecord(log.name, logging.ERROR, __file__, 0, line, (), None))
    _to_log_files(
        log.makeRecord(
            log.name,
            logging.ERROR,
            __file__,
            0,
            "traceback of the failure:",
            (),
            (type(error), error, error.__traceback__),
        )
    )


def _to_log_files(record: logging.LogRecord) -> None:
    for handler in _file_handlers(log):
        if record.levelno >= handler.level:
            handler.handle(record)


def _file_handlers(logger: logging.Logger) -> list[logging.FileHandler]:
    found: list[logging.FileHandler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found += [h for h in current.handlers if isinstance(h, logging.FileHandler)]
        current = current.parent if current.propagate else None
    return found


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
