"""A train/test job and its record: ``metrics.json`` says how the job ended, whatever ended it.

:class:`Job` is one job (its config, start, and which rank of which launch this process is).
:func:`recorded_failure` wraps what a job does: a failure, a preemption (SIGTERM) or Ctrl-C still
leaves a record (``status`` failed / preempted / interrupted) with the error and the tail of its
traceback, and the job's ``run.log`` has the traceback; given the job's trainer, the record has
its step and checkpoints. Only global rank 0 writes the record; another rank that fails leaves
its error in ``rank_errors/`` (``runtime/ddp.py``) and rank 0's record names the first failure as
the cause. The schema (version, writer and reader) is :mod:`ipe_lightning.results`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from ipe_lightning import results
from ipe_lightning.configs import plain
from ipe_lightning.errors import describe, traceback_tail
from ipe_lightning.results import git_commit, metrics_by_loader
from ipe_lightning.runtime import ddp
from ipe_lightning.runtime.checkpoints import INTERRUPTED_EXIT, Interrupted
from ipe_lightning.runtime.log import get_logger
from ipe_lightning.runtime.rank import is_rank_zero

log = get_logger(__name__)
# The model's name, read from the config in one place: the module keeps it in every checkpoint
# (``hyper_parameters["model_name"]``) and the record's ``model`` field is the same value.
MODEL_NAME_KEY = "module.model_name"


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


def evaluated_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint a ``mode=test`` job evaluates (``ckpt_path``, made absolute), else
    ``None``: a training tests the weights it trained."""
    path = readable(cfg, "ckpt_path", None)
    if readable(cfg, "mode", "") != "test" or not path:
        return None
    return str(Path(str(path)).expanduser().absolute())


def recorded_checkpoints(cfg: DictConfig, trainer: pl.Trainer | None) -> dict[str, str | None]:
    """The record's ``checkpoints``: the trainer's ``best`` and ``last`` (none without a
    trainer) and, for a test job, the ``evaluated`` checkpoint."""
    paths = checkpoint_paths(trainer) if trainer else {}
    evaluated = evaluated_checkpoint(cfg)
    return {**paths, "evaluated": evaluated} if evaluated else paths


@dataclass(frozen=True)
class Job:
    """One job of ``train``/``test``: its config, its start, and which rank of which launch this
    process is (``runtime/ddp.py``: read before Lightning sets its own variables)."""

    cfg: DictConfig
    started: float = field(default_factory=time.time)
    rank: str = field(default_factory=ddp.rank_name)
    launch: str = field(default_factory=ddp.launch_id)
    # The name of the network a test job evaluates, as its checkpoint gives it (the config's
    # model is not the one tested); None: the config's.
    model: str | None = None

    def writes_the_record(self) -> bool:
        """Global rank 0 writes ``metrics.json``; the other ranks leave their errors to it."""
        return is_rank_zero()

    def names(self) -> tuple[str, str]:
        """``(model, run_name)`` of the record: the config's, or the tested checkpoint's model;
        a run name left at its default (the config's model name) follows the model."""
        configured = str(readable(self.cfg, MODEL_NAME_KEY, ""))
        run_name = str(readable(self.cfg, "run_name", ""))
        if not self.model:
            return configured, run_name
        return self.model, self.model if run_name == configured else run_name


def write_record(
    job: Job,
    status: str,
    tested: Any = None,
    error: BaseException | None = None,
    trainer: pl.Trainer | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``metrics.json`` (rank 0 only, stamped with the schema version) and return it; its
    step and checkpoints are ``trainer``'s (step 0 and none without one), with the checkpoint a
    test job evaluates (:func:`recorded_checkpoints`). A failed job's record
    has its ``error`` and the tail of its ``traceback``, those of the rank that failed first
    (:func:`failure_fields`). Another rank leaves its error to rank 0."""
    cfg = job.cfg
    model, run_name = job.names()
    record = {
        "status": status,
        # A record of a failure must not fail on the setting that caused it: those that do not
        # resolve are left empty.
        "mode": str(readable(cfg, "mode", "")),
        "model": model,
        "run_name": run_name,
        "tags": [str(tag) for tag in readable(cfg, "tags", None) or []],
        "overrides": overrides(),
        "git_commit": git_commit(),
        "wall_time_s": round(time.time() - job.started, 1),
        "global_step": trainer.global_step if trainer else 0,
        "checkpoints": recorded_checkpoints(cfg, trainer),
        "metrics": metrics_by_loader(tested or []),
        **(extra or {}),  # e.g. the test sets' images and skipped files (runtime/record.py)
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
def recorded_failure(job: Job, trainer: pl.Trainer | None = None) -> Iterator[None]:
    """A job that fails or is preempted within it still leaves a ``metrics.json`` saying so, with
    ``trainer``'s step and checkpoints when the job has one.

    SIGTERM (preemption) exits with status 143 after ``last.ckpt`` was saved, so schedulers and
    sweeps see that the job did not finish; Ctrl-C (SIGINT) the same way with status 130.
    """
    try:
        yield
    except Interrupted:
        write_record(job, "interrupted", trainer=trainer)
        raise SystemExit(INTERRUPTED_EXIT) from None
    except SIGTERMException:
        write_record(job, "preempted", trainer=trainer)
        raise SystemExit(143) from None
    except Exception as error:
        record = write_record(job, "failed", error=error, trainer=trainer)
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
