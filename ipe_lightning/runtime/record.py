"""The record of a finished test: ``metrics.json`` written and summarised in W&B when it ends.

:class:`FinishedRecord` is given the job (its config, start and rank) when the trainer is built.
At the end of every ``trainer.test`` it writes the record from the test means Lightning has
logged (``test/<set>/x<scale>/<metric>``), with the trainer's step and checkpoints, how many
images each test loader measured and the test files ``data.skip_bad=true`` left out
(:func:`test_set_fields`) and, for a grid decoder, the chunk and band its whole images were
decoded with (:func:`~ipe_lightning.inference.decode_fields`), then puts it in the summary of the
job's W&B run. Failures are recorded by :func:`~ipe_lightning.runtime.job.recorded_failure`
instead.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from ipe_lightning.inference import decode_fields
from ipe_lightning.runtime.job import Job, write_record
from ipe_lightning.runtime.loggers import summarise_test_in_wandb


def test_set_fields(datamodule: Any) -> dict[str, Any]:
    """The record's ``images`` (loader → images measured) and, when files were skipped,
    ``skipped`` (set → {file: why}) of ``datamodule``'s test sets (``eval_datasets``: ``(loader,
    dataset)`` pairs); nothing for a data module without test sets."""
    datasets = getattr(datamodule, "eval_datasets", None) or []
    skipped = {
        loader.rpartition("/")[0]: {str(path): why for path, why in dataset.skipped.items()}
        for loader, dataset in datasets
        if dataset.skipped
    }
    fields: dict[str, Any] = {"images": {loader: len(dataset) for loader, dataset in datasets}}
    return {**fields, "skipped": skipped} if skipped else fields


class FinishedRecord(pl.Callback):
    """Write ``metrics.json`` with status ``finished`` when a test ends (module doc)."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logged = {key: float(value) for key, value in trainer.callback_metrics.items()}
        fields = test_set_fields(getattr(trainer, "datamodule", None))
        if pl_module is not None:  # the module tested: its network and query budget
            fields |= decode_fields(pl_module.net, pl_module.budget)
        record = write_record(self.job, "finished", logged, trainer=trainer, extra=fields)
        summarise_test_in_wandb(trainer.loggers, record, self.job.cfg.paths.output_dir)
