"""The finished record is written when a test ends, from the means Lightning logged."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from ipe_lightning.results import read_record
from ipe_lightning.runtime.job import Job
from ipe_lightning.runtime.record import FinishedRecord


def test_a_test_that_ends_leaves_a_finished_record_with_the_logged_means_and_the_step(tmp_path):
    cfg = OmegaConf.create(
        {"mode": "test", "run_name": "r", "tags": ["t"], "paths": {"output_dir": str(tmp_path)}}
    )
    trainer = SimpleNamespace(
        callback_metrics={
            "test/div2k/x4/psnr": torch.tensor(28.5),
            "test/div2k/x4/ssim": torch.tensor(0.81),
            "val/psnr": torch.tensor(30.0),  # not a test mean: left out
        },
        global_step=7,
        checkpoint_callbacks=[],
        loggers=[],
    )
    assert read_record(tmp_path) is None
    FinishedRecord(Job(cfg)).on_test_end(trainer, None)
    record = read_record(tmp_path)
    assert record["status"] == "finished"
    assert record["global_step"] == 7
    assert list(record["metrics"]) == ["div2k/x4"]
    assert record["metrics"]["div2k/x4"] == pytest.approx({"psnr": 28.5, "ssim": 0.81})
