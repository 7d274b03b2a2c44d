"""The run's progress: the ETA (the time left to the run's last step at the pace of this
process), on bars on a terminal and as plain periodic lines elsewhere (SLURM logs)."""

from __future__ import annotations

import io
import logging
import re

import pytest
import pytorch_lightning as pl
from pytorch_lightning.demos.boring_classes import BoringModel

from ipe_lightning.runtime.progress import (
    OverallProgressBar,
    PlainProgress,
    eta_seconds,
    format_eta,
    progress_bar,
)


def test_eta_is_the_steps_left_at_the_mean_pace_so_far():
    assert eta_seconds(elapsed_s=10.0, steps_done=5, steps_left=20) == pytest.approx(40.0)
    assert eta_seconds(elapsed_s=10.0, steps_done=5, steps_left=0) == 0.0


def test_no_eta_before_the_first_step_or_for_an_unbounded_run():
    assert eta_seconds(elapsed_s=3.0, steps_done=0, steps_left=100) is None
    assert eta_seconds(elapsed_s=3.0, steps_done=2, steps_left=float("inf")) is None


def test_eta_reads_hours_minutes_seconds():
    assert format_eta(3 * 3600 + 25 * 60 + 7.4) == "03:25:07"


def test_an_eta_past_a_day_shows_the_days():
    # Before: time.gmtime wrapped at 24 h and a 72-hour run showed 00:00:00.
    assert format_eta(72 * 3600) == "3d 00:00:00"
    assert format_eta(25 * 3600 + 61) == "1d 01:01:01"
    assert format_eta(24 * 3600 - 1) == "23:59:59"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_are_chosen_when_stdout_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdout", io.StringIO())  # a SLURM log file
    assert isinstance(progress_bar(), PlainProgress)
    monkeypatch.setattr("sys.stdout", _Terminal())
    assert isinstance(progress_bar(), OverallProgressBar)
    assert isinstance(progress_bar(plain=True), PlainProgress)  # the config switch wins
    assert isinstance(progress_bar(plain=False), OverallProgressBar)
    with pytest.raises(ValueError, match="auto, true or false"):
        progress_bar(plain="sometimes")


def test_plain_progress_prints_steps_percent_loss_and_eta(tmp_path, caplog):
    class LoggedLoss(BoringModel):
        def training_step(self, batch, batch_idx):
            out = super().training_step(batch, batch_idx)
            self.log("train/loss", out["loss"], prog_bar=True)
            return out

    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=4,
        limit_val_batches=0,
        limit_test_batches=2,
        logger=False,
        default_root_dir=tmp_path,
        enable_model_summary=False,
        callbacks=[PlainProgress(every_s=0)],
    )
    with caplog.at_level(logging.INFO, logger="ipe_lightning"):
        trainer.fit(LoggedLoss())
        trainer.test(LoggedLoss(), verbose=False)
    lines = caplog.messages
    train = [line for line in lines if line.startswith("[train]")]
    assert len(train) == 4
    assert re.fullmatch(r"\[train\] step 1/4 \(25%\) loss \S+ ETA \d\d:\d\d:\d\d", train[0])
    assert train[-1].startswith("[train] step 4/4 (100%)")
    assert [line for line in lines if line.startswith("[test]")] == ["[test] 0 1/2", "[test] 0 2/2"]
    assert all("\r" not in line for line in lines)


def test_plain_progress_waits_every_s_between_lines(tmp_path, caplog):
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=5,
        limit_val_batches=0,
        logger=False,
        default_root_dir=tmp_path,
        enable_model_summary=False,
        callbacks=[PlainProgress(every_s=3600)],
    )
    with caplog.at_level(logging.INFO, logger="ipe_lightning"):
        trainer.fit(BoringModel())
    # within the hour only the last step is due
    assert [m for m in caplog.messages if m.startswith("[train]")] == [
        m for m in caplog.messages if m.startswith("[train] step 5/5 (100%)")
    ]
    assert len([m for m in caplog.messages if m.startswith("[train]")]) == 1


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
