"""Loggers from config, with W&B that never prompts and never leaks state between jobs, a CSV
log that keeps its history across a resume, and W&B summaries that mean something: the best
validation PSNR, the gain over bicubic per set and scale, the per-image results as a table and
``metrics.json`` as an artifact."""

from __future__ import annotations

import configparser
import contextlib
import csv
import netrc
import os
import re
import socket
import sys
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from lightning_fabric.loggers.logger import rank_zero_experiment
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.utilities import rank_zero_only

from ipe_lightning import results
from ipe_lightning.atomic import atomic_open
from ipe_lightning.results import EVAL_JOB_TYPE, TRAIN_JOB_TYPE
from ipe_lightning.runtime.log import get_logger
from ipe_lightning.runtime.rank import is_rank_zero

log = get_logger(__name__)

DEFAULT_BASE_URL = "https://api.wandb.ai"
# The training loss and validation PSNR are logged every step / epoch; W&B's summary keeps the
# last value unless told otherwise, and the best checkpoint is chosen by the maximum.
BEST_VALIDATION = {"val/psnr": "max"}


def settings_files() -> list[Path]:
    """W&B's settings files, the one that wins first: the working directory's
    (``wandb/settings``), then the user's (``$WANDB_CONFIG_DIR/settings``, by default
    ``~/.config/wandb/settings``), where ``wandb login --host`` writes ``base_url``."""
    config_dir = os.environ.get("WANDB_CONFIG_DIR") or Path.home() / ".config" / "wandb"
    return [Path("wandb") / "settings", Path(config_dir) / "settings"]


def wandb_base_url(files: list[Path] | None = None) -> str:
    """The W&B server this job talks to, as wandb itself chooses it: ``WANDB_BASE_URL``, else
    ``base_url`` of the first settings file that sets it (:func:`settings_files`), else the
    public server."""
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"].rstrip("/")
    for path in settings_files() if files is None else files:
        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        if parser.get("default", "base_url", fallback=""):
            return parser.get("default", "base_url").rstrip("/")
    return DEFAULT_BASE_URL


def server_address(base_url: str) -> tuple[str, int]:
    """``(host, port)`` of a server URL; the port from the URL, else its scheme's."""
    url = urllib.parse.urlsplit(base_url if "://" in base_url else f"https://{base_url}")
    return url.hostname or "", url.port or (80 if url.scheme == "http" else 443)


def wandb_credentials_available(base_url: str | None = None) -> bool:
    """An API key in the environment or, for the server's host, in ~/.netrc (what `wandb login`
    writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host, _ = server_address(base_url or wandb_base_url())
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_reachable(base_url: str | None = None, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the server (host and port of ``base_url``) opens."""
    try:
        with socket.create_connection(server_address(base_url or wandb_base_url()), timeout):
            return True
    except OSError:
        return False


def wandb_should_run_offline() -> str | None:
    """Why W&B must log offline, or ``None`` when it can log online."""
    if os.environ.get("WANDB_MODE") in {"offline", "dryrun"}:
        return "WANDB_MODE is offline"
    base_url = wandb_base_url()
    if not wandb_credentials_available(base_url):
        return f"no W&B credentials for {base_url} (WANDB_API_KEY or `wandb login`)"
    if not wandb_reachable(base_url):
        return f"{base_url} is not reachable"
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


def flat_config(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as one level of dotted keys, as overrides spell them
    (``{"model": {"net": {"encoding": {"bandwidth": 4}}}}`` -> ``{"model.net.encoding.bandwidth":
    4}``); lists stay values (``eval.scales``). A lone ``config`` node (the whole job config, as
    the trainer hands it to every logger) is unwrapped."""
    if not prefix and set(params) == {"config"} and isinstance(params["config"], Mapping):
        params = params["config"]
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


class FlatConfigWandbLogger(WandbLogger):
    """Lightning's ``WandbLogger`` whose run config is flat (:func:`flat_config`): every setting
    is its own column of the W&B runs table, filtered and grouped by the key an override names
    (``model.net.encoding.bandwidth = 4``)."""

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any] | Any) -> None:
        if isinstance(params, Mapping):
            params = flat_config(params)
        super().log_hyperparams(params)


def is_wandb(logger_or_spec: Any) -> bool:
    """A W&B logger, or the config of one (``_target_`` naming a ``WandbLogger`` class)."""
    if isinstance(logger_or_spec, Mapping):
        return str(logger_or_spec.get("_target_", "")).endswith("WandbLogger")
    return isinstance(logger_or_spec, WandbLogger)


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
        if not is_wandb(spec):
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
    return [logger.experiment for logger in loggers if is_wandb(logger)]


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
