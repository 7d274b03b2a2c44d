"""The record of a finished test: ``metrics.json`` written and summarised in W&B when it ends.

:class:`FinishedRecord` is given the job (its config, start and rank) when the trainer is built.
At the end of every ``trainer.test`` it writes the record from the test means Lightning has
logged (``test/<set>/x<scale>/<metric>``), with the trainer's step and checkpoints, then puts
it in the summary of the job's W&B run. Failures are recorded by
:func:`~ipe_lightning.runtime.job.recorded_failure` instead.
"""

from __future__ import annotations

import pytorch_lightning as pl

from ipe_lightning.runtime.job import Job, write_record
from ipe_lightning.runtime.loggers import summarise_test_in_wandb


class FinishedRecord(pl.Callback):
    """Write ``metrics.json`` with status ``finished`` when a test ends (module doc)."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logged = {key: float(value) for key, value in trainer.callback_metrics.items()}
        record = write_record(self.job, "finished", logged, trainer=trainer)
        summarise_test_in_wandb(trainer.loggers, record, self.job.cfg.paths.output_dir)
