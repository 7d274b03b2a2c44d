"""The progress bar's ETA: the time left to the run's last step at the pace of this process."""

from __future__ import annotations

import re

import pytest
import pytorch_lightning as pl
from pytorch_lightning.demos.boring_classes import BoringModel

from ipe_lightning.runtime.progress import OverallProgressBar, eta_seconds, format_eta


def test_eta_is_the_steps_left_at_the_mean_pace_so_far():
    assert eta_seconds(elapsed_s=10.0, steps_done=5, steps_left=20) == pytest.approx(40.0)
    assert eta_seconds(elapsed_s=10.0, steps_done=5, steps_left=0) == 0.0


def test_no_eta_before_the_first_step_or_for_an_unbounded_run():
    assert eta_seconds(elapsed_s=3.0, steps_done=0, steps_left=100) is None
    assert eta_seconds(elapsed_s=3.0, steps_done=2, steps_left=float("inf")) is None


def test_eta_reads_hours_minutes_seconds():
    assert format_eta(3 * 3600 + 25 * 60 + 7.4) == "03:25:07"


def test_the_bar_shows_the_eta_once_training_has_started(tmp_path):
    seen = []

    class Watch(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args):
            seen.append(bar.get_metrics(trainer, pl_module))

    bar = OverallProgressBar()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=3,
        limit_val_batches=0,
        logger=False,
        default_root_dir=tmp_path,
        enable_model_summary=False,
        callbacks=[bar, Watch()],
    )
    trainer.fit(BoringModel())
    assert len(seen) == 3
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", metrics["ETA"]) for metrics in seen)
    assert all("v_num" not in metrics for metrics in seen)
