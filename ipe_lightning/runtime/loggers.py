"""Loggers from config, with W&B that never prompts and never leaks state between jobs, a CSV
log that keeps its history across a resume, and W&B summaries that mean something: the best
validation PSNR, the gain over bicubic per set and scale, the per-image results as a table and
``metrics.json`` as an artifact."""

from __future__ import annotations

import contextlib
import csv
import netrc
import os
import re
import socket
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from lightning_fabric.loggers.logger import rank_zero_experiment
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.utilities import rank_zero_only

from ipe_lightning import results
from ipe_lightning.atomic import atomic_open
from ipe_lightning.results import EVAL_JOB_TYPE, TRAIN_JOB_TYPE
from ipe_lightning.runtime.log import get_logger
from ipe_lightning.runtime.rank import is_rank_zero

log = get_logger(__name__)

WANDB_HOST = "api.wandb.ai"
# The training loss and validation PSNR are logged every step / epoch; W&B's summary keeps the
# last value unless told otherwise, and the best checkpoint is chosen by the maximum.
BEST_VALIDATION = {"val/psnr": "max"}


def wandb_credentials_available() -> bool:
    """An API key in the environment or in ~/.netrc (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_reachable(timeout: float = 3.0) -> bool:
    host = os.environ.get("WANDB_BASE_URL", f"https://{WANDB_HOST}").split("://")[-1].split("/")[0]
    try:
        with socket.create_connection((host.split(":")[0], 443), timeout=timeout):
            return True
    except OSError:
        return False


def wandb_should_run_offline() -> str | None:
    """Why W&B must log offline, or ``None`` when it can log online."""
    if os.environ.get("WANDB_MODE") in {"offline", "dryrun"}:
        return "WANDB_MODE is offline"
    if not wandb_credentials_available():
        return "no W&B credentials (WANDB_API_KEY or `wandb login`)"
    if not wandb_reachable():
        return f"{WANDB_HOST} is not reachable"
    return None


def training_group(ckpt_path: str | os.PathLike) -> str | None:
    """The W&B group of the training run that wrote ``ckpt_path`` (``<run dir>/checkpoints/``),
    read from its resolved Hydra config; ``None`` when unknown."""
    config_file = Path(ckpt_path).resolve().parent.parent / ".hydra" / "config.yaml"
    try:
        group = OmegaConf.select(OmegaConf.load(config_file), "logger.wandb.group", default=None)
    except Exception:  # no such file, or an interpolation only Hydra resolves
        return None
    return None if group is None else str(group)


def wandb_job(cfg: DictConfig) -> dict[str, Any]:
    """``job_type`` and ``group`` of this job's W&B run: a ``mode=test`` run is an ``eval`` job
    in the group of the training run of its checkpoint (unless ``logger.wandb.group`` says)."""
    if cfg.get("mode") != "test":
        return {"job_type": TRAIN_JOB_TYPE}
    group = OmegaConf.select(cfg, "logger.wandb.group", default=None)
    if group is None and cfg.get("ckpt_path"):
        group = training_group(cfg.ckpt_path)
    return {"job_type": EVAL_JOB_TYPE, **({"group": group} if group is not None else {})}


def sync_dir(run: Any) -> str:
    """The directory ``wandb sync`` takes for ``run`` (``run.dir`` is its ``files/``)."""
    return str(Path(run.dir).parent)


def define_summaries(run: Any) -> None:
    """A metric's own definition replaces the ``*`` one ``WandbLogger`` made, so it restates its
    step axis (the trainer's step, as every other chart)."""
    for key, summary in BEST_VALIDATION.items():
        run.define_metric(key, summary=summary, step_metric="trainer/global_step")


def earlier_rows(path: str | os.PathLike, before: int | None) -> list[dict[str, str]]:
    """The rows of an earlier ``metrics.csv`` worth keeping: those of steps before ``before``
    (the step a resumed run starts at: later rows are logged again), all when ``None``; a row
    cut short by a kill is dropped."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error):
        return []
    kept = []
    for row in rows:
        whole = None not in row and None not in row.values()  # as many fields as the header
        step = str(row.get("step") or "")
        if whole and step.isdigit() and (before is None or int(step) < before):
            kept.append(row)
    return kept


class HistoryWriter(ExperimentWriter):
    """Lightning's ``metrics.csv`` writer, which deletes the file of an earlier run of its
    directory, keeping that run's rows instead: the file is left in place until the first new
    rows are saved, then rewritten (atomically) with the earlier rows of the steps before the
    resumed one (:meth:`keep_rows_before`; all of them when no training resumed) ahead of the
    new rows."""

    def __init__(self, log_dir: str) -> None:
        self._keep_before: int | None = None
        self._merged = False
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        """Nothing to delete: the earlier rows are merged at the first save."""

    def keep_rows_before(self, step: int) -> None:
        self._keep_before = step

    def save(self) -> None:
        if self.metrics and not self._merged:
            self._merged = True
            self._write_earlier_rows()
        super().save()

    def _write_earlier_rows(self) -> None:
        rows = earlier_rows(self.metrics_file_path, self._keep_before)
        if not rows:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.metrics_file_path)
            return
        self.metrics_keys = sorted({key for row in rows for key in row})
        with atomic_open(self.metrics_file_path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


class ResumableCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` whose ``metrics.csv`` keeps the rows of the run it resumes
    (:class:`HistoryWriter`); :class:`KeepEarlierRows` tells it the step training resumed at."""

    @property
    @rank_zero_experiment
    def experiment(self) -> HistoryWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = HistoryWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def keep_rows_before(self, step: int) -> None:
        self.experiment.keep_rows_before(step)


class KeepEarlierRows(pl.Callback):
    """When training starts (its step restored from the checkpoint it resumes), the CSV log keeps
    the earlier rows of the steps before it."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, ResumableCSVLogger):
                logger.keep_rows_before(trainer.global_step)


def build_loggers(
    logger_cfg: DictConfig | None, wandb_settings: Mapping[str, Any] | None = None
) -> list[Any]:
    """Instantiate every logger of the ``logger`` group; W&B goes offline when it must.

    ``wandb_settings`` (:func:`wandb_job`) are passed to ``wandb.init``; a ``group`` only when
    the config names none.
    """
    loggers = []
    for spec in (logger_cfg or {}).values():
        if spec is None:
            continue
        if "WandbLogger" not in str(spec.get("_target_", "")):
            loggers.append(instantiate(spec, _convert_="all"))
            continue
        overrides: dict[str, Any] = {}
        for key, value in (wandb_settings or {}).items():
            if spec.get(key) is None:
                overrides[key] = value
        reason = wandb_should_run_offline() if not spec.get("offline") else "offline=true"
        if reason:
            overrides["offline"] = True
        Path(spec.save_dir).mkdir(parents=True, exist_ok=True)
        import wandb

        overrides["settings"] = wandb.Settings(silent=True)  # no banners, never a prompt
        logger = instantiate(spec, **overrides, _convert_="all")
        if is_rank_zero():  # other DDP ranks have no run (Lightning gives them a stand-in)
            run = logger.experiment
            define_summaries(run)
            if reason:
                log.info(
                    f"[ipe-lightning] W&B logs offline ({reason}); sync later with "
                    f"`wandb sync {sync_dir(run)}`"
                )
        loggers.append(logger)
    return loggers


def wandb_runs(loggers: list[Any]) -> list[Any]:
    """The W&B runs of ``loggers`` (none on DDP ranks other than 0)."""
    if not is_rank_zero():
        return []
    return [logger.experiment for logger in loggers if type(logger).__name__ == "WandbLogger"]


def gains_over_bicubic(record: Mapping[str, Any]) -> dict[str, float]:
    """``test/<set>/x<scale>/gain_over_bicubic``: PSNR minus bicubic PSNR (dB)."""
    return {
        f"test/{loader}/gain_over_bicubic": values["psnr"] - values["bicubic_psnr"]
        for loader, values in (record.get("metrics") or {}).items()
        if "psnr" in values and "bicubic_psnr" in values
    }


def artifact_name(record: Mapping[str, Any], kind: str) -> str:
    """W&B artifact names allow letters, digits, ``-``, ``_`` and ``.``."""
    name = str(record.get("run_name") or record.get("model") or "run")
    return re.sub(r"[^\w.-]+", "_", f"{name}-{kind}")


def summarise_test(run: Any, record: Mapping[str, Any], run_dir: str | os.PathLike) -> None:
    """After the test: the gains over bicubic in the summary, ``per_image.csv`` (when the run
    wrote one) as the table ``test/per_image``, and ``metrics.json`` as an artifact."""
    import wandb

    run.summary.update(gains_over_bicubic(record))
    rows = results.read_per_image(run_dir)
    if rows:
        columns = list(results.PER_IMAGE_FIELDS)
        table = wandb.Table(columns=columns, data=[[row[c] for c in columns] for row in rows])
        run.log({"test/per_image": table})
    record_file = Path(run_dir) / results.RECORD_FILE
    if record_file.is_file():
        artifact = wandb.Artifact(artifact_name(record, "metrics"), type="results")
        artifact.add_file(str(record_file))
        run.log_artifact(artifact)


def summarise_test_in_wandb(
    loggers: list[Any], record: Mapping[str, Any], run_dir: str | os.PathLike
) -> None:
    for run in wandb_runs(loggers):
        summarise_test(run, record, run_dir)


@contextlib.contextmanager
def isolated_wandb_run() -> Iterator[None]:
    """Finish the W&B run and restore ``WANDB_*`` variables when a job ends, even on error.

    ``WandbLogger`` reuses an active run and its ``offline=True`` sets ``WANDB_MODE`` in the
    process, so consecutive jobs of one multirun would otherwise share a run or stay offline.
    """
    saved = {key: value for key, value in os.environ.items() if key.startswith("WANDB_")}
    try:
        yield
    finally:
        try:
            wandb = sys.modules.get("wandb")  # never imported: no run to finish
            if wandb is not None and getattr(wandb, "run", None) is not None:
                wandb.finish()
        finally:
            for key in [k for k in os.environ if k.startswith("WANDB_")]:
                if key not in saved:
                    del os.environ[key]
            os.environ.update(saved)
