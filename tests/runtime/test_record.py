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


def _record_of_a_test(tmp_path, *, broken: bool) -> dict:
    """The record of a test of a folder of two images (and, if ``broken``, a file that is not
    an image) at x2 and x3 with data.skip_bad=true, from the real data module."""
    import numpy as np
    from PIL import Image

    from ipe_lightning.data import ImageFolders, SRDataModule

    folder = tmp_path / "test"
    folder.mkdir()
    for name in ("a", "b"):
        Image.fromarray(np.full((24, 24, 3), 90, np.uint8)).save(folder / f"{name}.png")
    if broken:
        (folder / "broken.png").write_bytes(b"not a png")
    images = ImageFolders(test_dir=str(folder))
    eval_sets = {"mine": {"images": images, "scales": [2, 3], "channel": "rgb", "shave": 0}}
    module = SRDataModule(images=images, eval_sets=eval_sets, skip_bad=True, cache=False)
    module.check("test")
    cfg = OmegaConf.create({"mode": "test", "paths": {"output_dir": str(tmp_path)}})
    trainer = SimpleNamespace(
        callback_metrics={"test/mine/x2/psnr": torch.tensor(30.0)},
        global_step=0,
        checkpoint_callbacks=[],
        loggers=[],
        datamodule=module,
    )
    FinishedRecord(Job(cfg)).on_test_end(trainer, None)
    return read_record(tmp_path)


@pytest.mark.filterwarnings("ignore:skipping 1 unreadable")
def test_a_test_over_fewer_images_than_its_set_records_the_skipped_files(tmp_path):
    """data.skip_bad=true: the record says which test files were left out and why, and how many
    images each loader measured, so a result over 2 of 3 images cannot pass for the whole set."""
    record = _record_of_a_test(tmp_path, broken=True)
    assert record["images"] == {"mine/x2": 2, "mine/x3": 2}
    assert list(record["skipped"]) == ["mine"]
    ((path, reason),) = record["skipped"]["mine"].items()
    assert path == str(tmp_path / "test" / "broken.png")
    assert "cannot identify image file" in reason


def test_a_test_of_a_whole_set_records_its_images_and_no_skipped_files(tmp_path):
    record = _record_of_a_test(tmp_path, broken=False)
    assert record["images"] == {"mine/x2": 2, "mine/x3": 2}
    assert "skipped" not in record
