"""train / test / predict as functions of a composed config (``run.py`` only dispatches).

Train and test read compose → instantiate → fit / test → record: :func:`build_parts` builds the
data module, the module and the trainer from the config, and :func:`running` runs the job in its
scopes (W&B isolation, DDP, Ctrl-C, and the failure record with the trainer's step once the
trainer exists). The callbacks of ``conf/callbacks/`` watch the run (non-finite losses) and write
``per_image.csv``; :class:`~ipe_lightning.runtime.record.FinishedRecord`, given the job, writes
``metrics.json`` when the test ends and the task returns what it wrote.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor
from torch import nn

from ipe_lightning import results, settings
from ipe_lightning.configs import plain
from ipe_lightning.errors import MissingFileError, SettingError, UserError
from ipe_lightning.inference import QueryBudget, check_scales
from ipe_lightning.models import FixedScaleSR, NetworkInfo, load_network
from ipe_lightning.models.checkpoint_file import CheckpointMismatchError, load_error_differences
from ipe_lightning.module import SRModule
from ipe_lightning.predict import (
    OutputTooLargeError,
    PredictionError,
    input_files,
    predict_files,
    report,
)
from ipe_lightning.runtime import ddp
from ipe_lightning.runtime import resume as runtime_resume
from ipe_lightning.runtime.checkpoints import stop_on_interrupt
from ipe_lightning.runtime.ddp import ddp_job_scope
from ipe_lightning.runtime.job import MODEL_NAME_KEY, Job, overrides, readable, recorded_failure
from ipe_lightning.runtime.lock import run_directory_lock
from ipe_lightning.runtime.log import get_logger
from ipe_lightning.runtime.loggers import (
    KeepEarlierRows,
    build_loggers,
    isolated_wandb_run,
    wandb_job,
)
from ipe_lightning.runtime.record import FinishedRecord
from ipe_lightning.scales import parse_scale_tag

log = get_logger(__name__)


def build_datamodule(cfg: DictConfig, stage: str | None = None) -> pl.LightningDataModule:
    """The data module, its paths checked before anything expensive is built (``stage="test"``
    checks only the evaluation sets)."""
    datamodule = instantiate(cfg.data)  # with its parts: data.images, eval.sets.<name>.images
    datamodule.check(stage)
    return datamodule


def query_budget(cfg: DictConfig) -> QueryBudget:
    """The ``test`` node's bound on upsampling a whole image, for every test and prediction."""
    return QueryBudget.from_config(cfg.test)


def build_module(
    cfg: DictConfig,
    datamodule: pl.LightningDataModule,
    net: nn.Module | None = None,
    model_name: str | None = None,
) -> SRModule:
    """The ``module`` node, with the data module's test loaders and the query budget; ``net``
    (a network loaded from a checkpoint) replaces the node's network config, and ``model_name``
    (its checkpoint's name for it) the node's model name."""
    build = instantiate(cfg.module, _partial_=True)
    loaded = {} if net is None else {"net": net}
    if model_name is not None:
        loaded["model_name"] = model_name
    return build(test_sets=list(datamodule.test_set_names), budget=query_budget(cfg), **loaded)


def build_callbacks(cfg: DictConfig, loggers: list[Any]) -> list[pl.Callback]:
    """The ``callbacks`` group, instantiated; without a logger, no ``LearningRateMonitor`` (it
    refuses to start when it has nowhere to write, and ``logger=none`` must still train)."""
    callbacks = [instantiate(spec) for spec in (cfg.get("callbacks") or {}).values() if spec]
    if not loggers:
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    return callbacks


def build_trainer(cfg: DictConfig, callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    """The trainer with the ``logger`` and ``callbacks`` groups and ``callbacks``; every logger
    gets the whole resolved config, not only the module's hyperparameters, and a resumed
    training's CSV log keeps the rows of the steps before it (runtime/loggers.py)."""
    loggers = build_loggers(cfg.get("logger"), wandb_job(cfg))
    resolved = {k: plain(v) for k, v in cfg.items() if k != "hydra"}
    for logger in loggers:
        logger.log_hyperparams({"config": resolved})
    callbacks = [*build_callbacks(cfg, loggers), KeepEarlierRows(), *(callbacks or [])]
    return instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)


def resume_checkpoint(cfg: DictConfig, parts: Parts | None = None) -> str | None:
    """``ckpt_path`` if given; with ``resume=auto`` the newest readable checkpoint of the run
    directory, if any (runtime/resume.py: unreadable ones are reported and moved aside). With
    ``parts``, one their module cannot continue from (another project's file, another model's,
    past ``trainer.max_epochs``) is refused before the trainer restores it."""
    path = runtime_resume.resume_checkpoint(
        cfg.paths.checkpoint_dir, cfg.get("ckpt_path"), str(cfg.get("resume", "auto"))
    )
    if path is not None and parts is not None:
        resuming = runtime_resume.Resuming(path, given=bool(cfg.get("ckpt_path")))
        runtime_resume.check_resumable(resuming, parts.module, parts.trainer.max_epochs)
    return path


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


def network_name(info: NetworkInfo) -> str:
    """The model a checkpoint holds: the preset it was trained as (our checkpoints keep it), else
    its head (``LIIF``, ``MetaSR``, ``LTE``: an official file's model name) in lower case."""
    if info.model_name:
        return info.model_name
    return str(info.config.get("_target_", "network")).rsplit(".", 1)[-1].lower()


def checkpoint_network(cfg: DictConfig) -> tuple[nn.Module, str]:
    """The network of ``ckpt_path`` and its name (:func:`network_name`): what a test or a
    prediction runs is the checkpoint's, whatever ``model`` says. A ``model=`` given on the
    command line that names another model is ignored, with a notice naming both."""
    path = require_checkpoint(cfg.ckpt_path)
    try:
        net, info = load_network(path)
    except UserError:
        raise
    except ValueError as error:  # what the file holds: another project's, keys of another model
        differences = load_error_differences(str(error))
        what = f"its weights do not fit its network: keys {differences}" if differences else ""
        raise CheckpointMismatchError(
            f"ckpt_path={path}: {what or str(error).strip().splitlines()[0]}"
        ) from error
    name = network_name(info)
    configured = str(readable(cfg, MODEL_NAME_KEY, ""))
    asked = any(re.match(r"[+~]*model=", override) for override in overrides())
    if asked and configured != name:
        log.warning(
            f"[ipe-lightning] model={configured} is ignored: ckpt_path={path} holds {name}, "
            "and that network is what runs"
        )
    return net, name


class Parts(NamedTuple):
    """What a train or test job runs: built from its config by :func:`build_parts`, with the
    job it records (a test job named by its checkpoint's model)."""

    job: Job
    datamodule: pl.LightningDataModule
    module: SRModule
    trainer: pl.Trainer


def build_parts(job: Job, stage: str) -> Parts:
    """The parts of a ``fit`` job (the module's network trained, from ``ckpt_path`` when given)
    or a ``test`` job (the network of ``ckpt_path`` evaluated, the job named by it), the trainer
    recording the job when its test ends; what is missing is refused before the trainer (and its
    W&B run) starts."""
    cfg = job.cfg
    if stage == "fit" and cfg.get("ckpt_path"):
        require_checkpoint(cfg.ckpt_path)
    if stage == "test" and not cfg.get("ckpt_path"):
        raise SettingError("mode=test needs ckpt_path=<our .ckpt or an official LIIF/MetaSR .pth>")
    datamodule = build_datamodule(cfg, "test" if stage == "test" else None)
    net = name = None
    if stage == "test":
        net, name = checkpoint_network(cfg)
        job = dataclasses.replace(job, model=name)
    module = build_module(cfg, datamodule, net, name)
    if isinstance(module.net, FixedScaleSR):  # its own scale only, or resampled: checked now
        tested = [parse_scale_tag(name.rpartition("/")[2]) for name in datamodule.test_set_names]
        check_scales(module.net, tested, query_budget(cfg).resample)
    trainer = build_trainer(cfg, [FinishedRecord(job)])
    check_test_sets_cover_ranks(datamodule, trainer)
    return Parts(job, datamodule, module, trainer)


@contextlib.contextmanager
def running(job: Job, build: Callable[[], Parts]) -> Iterator[Parts]:
    """The parts ``build`` makes, in the job's own W&B run, with a failure record (step 0 while
    building, the trainer's step and checkpoints after, of the job the parts name), in the
    trainer's scope."""
    with isolated_wandb_run():
        with recorded_failure(job):
            parts = build()
        with recorded_failure(parts.job, parts.trainer), trainer_scope(parts.trainer):
            yield parts


@contextlib.contextmanager
def trainer_scope(trainer: pl.Trainer) -> Iterator[None]:
    """Around ``fit``/``test``: DDP ranks that are this job's (runtime/ddp.py), and a Ctrl-C that
    stops at the next step with ``last.ckpt`` saved (runtime/checkpoints.py)."""
    with ddp_job_scope(trainer), stop_on_interrupt():
        yield


@contextlib.contextmanager
def sampler_resumes_itself() -> Iterator[None]:
    """Without Lightning's warning that a mid-epoch resume replays the epoch's samples unless the
    loader has a state_dict: our sampler (data/sampler.py) restarts at the next sample itself
    (tested: killed mid-epoch and resumed == uninterrupted)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
        # torch deprecates the LeafSpec that Lightning uses: nothing the reader can act on
        warnings.filterwarnings(
            "ignore", category=FutureWarning, module=r"pytorch_lightning\.utilities\._pytree"
        )
        yield


def test_on_every_set(parts: Parts) -> dict[str, Any]:
    """Test on every evaluation set (Lightning's own results table off: ours is printed from the
    record) and return the record :class:`FinishedRecord` wrote; ``{}`` on ranks that write
    none."""
    parts.trainer.test(parts.module, datamodule=parts.datamodule, verbose=False)
    if not parts.job.writes_the_record():
        return {}
    return results.read_record(parts.job.cfg.paths.output_dir)


def train(job: Job) -> dict[str, Any]:
    """Fit the ``module`` node's network (resuming where the run directory left off), then test
    it on every evaluation set."""
    cfg = job.cfg
    pl.seed_everything(int(cfg.seed), workers=True)
    with running(job, lambda: build_parts(job, "fit")) as parts, sampler_resumes_itself():
        parts.trainer.fit(
            parts.module, datamodule=parts.datamodule, ckpt_path=resume_checkpoint(cfg, parts)
        )
        return test_on_every_set(parts)


def test(job: Job) -> dict[str, Any]:
    """Test the network of ``ckpt_path`` on every evaluation set."""
    with running(job, lambda: build_parts(job, "test")) as parts:
        return test_on_every_set(parts)


def check_settings(cfg: DictConfig) -> None:
    """Refuse, before anything is built, what a job cannot run with: a sweep file given to a job
    (``+sweep=table4`` composes, and would run the default job), an unknown ``mode``, a ``seed``
    that is not a whole number, and every value out of its range (:mod:`ipe_lightning.settings`:
    scales, crop and batch sizes, tiles, predict's options). Preflight (``sweep/preflight.py``)
    checks a sweep's jobs with this too."""
    if "sweep" in cfg:
        name = readable(cfg, "hydra.runtime.choices.sweep", None) or "<sweep>"
        raise SettingError(
            f"sweep={name} is a sweep of many jobs, which run.py does not launch: run "
            f"`python sweep.py {name} <overrides>` (python sweep.py list shows the sweeps)"
        )
    if cfg.mode not in TASKS:
        raise SettingError(f"unknown mode={cfg.mode!r}; choose one of {sorted(TASKS)}")
    seed = cfg.get("seed")
    if cfg.mode != "predict" and not _whole_number(seed):
        raise SettingError(f"seed={seed}: a seed is a whole number (seed=0)")
    settings.check_values(cfg)


def _whole_number(value: Any) -> bool:
    if isinstance(value, str):
        return value.lstrip("-").isdigit()
    return isinstance(value, int) and not isinstance(value, bool)


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Upsample ``predict.input`` with the network of ``ckpt_path`` (options checked by
    :func:`check_settings`); an input that needs more memory than there is is refused naming
    ``predict.size`` / ``predict.scale`` and the numbers."""
    options = cfg.predict
    if not Path(str(options.input)).expanduser().exists():
        raise MissingFileError(f"predict.input={options.input}: no such image file or folder")
    net, name = checkpoint_network(cfg)
    if options.get("scale") is not None:
        check_scales(net, [plain(options.scale)], query_budget(cfg).resample)
    print(f"[ipe-lightning] predict with {name} ({cfg.ckpt_path})")
    device = (
        options.device
        if options.device != "auto"
        else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    try:
        summary = predict_files(
            net,
            input_files(options.input),
            options.output_dir,
            scale=plain(options.get("scale")),
            size=plain(options.get("size")),
            overwrite=bool(options.overwrite),
            device=device,
            precision=str(options.precision),
            budget=query_budget(cfg),
        )
    except OutputTooLargeError as error:  # its message names predict.size / predict.scale
        raise SettingError(str(error)) from error
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
        return JOBS[cfg.mode](job)  # each records its own failures (tasks.running)
