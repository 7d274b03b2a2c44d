"""SRDataModule: batch contract, image sources, bad input found by check(), Lightning runs."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from ipe_lightning.data.bundled import HELD_OUT_PHOTOS, TRAIN_PHOTOS
from ipe_lightning.data.datamodule import SRDataModule
from ipe_lightning.data.images import BadImageError, DataWarning
from ipe_lightning.data.layouts import DatasetNotFoundError
from ipe_lightning.data.sampler import EpochSampler
from ipe_lightning.data.sources import DIV2K, Benchmark, ImageFolders


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "cache")


def div2k_and_set5(data_root):
    """Paired and generated LR of DIV2K and a benchmark."""
    return {
        "div2k": {"images": DIV2K(data_root), "scales": [2, 2.5]},
        "set5": {"images": Benchmark(data_root, "Set5"), "scales": [2]},
    }


def small(cache_dir, **options):
    """A DataModule sized for the tiny test images (largest crop round(16·4) = 64)."""
    defaults = {"inp_size": 16, "sample_q": 32, "batch_size": 2, "repeat": 2, "val_repeat": 2}
    return SRDataModule(cache_dir=cache_dir, **(defaults | options))


def test_training_and_validation_batches_follow_the_contract(cache_dir):
    module = SRDataModule(cache_dir=cache_dir, sample_q=64, batch_size=3, repeat=1, val_repeat=2)
    module.check()
    assert [p.stem for p in module.train_paths] == list(TRAIN_PHOTOS)
    assert [p.stem for p in module.val_paths] == list(HELD_OUT_PHOTOS)
    for loader, batches in ((module.train_dataloader(), 3), (module.val_dataloader(), 2)):
        assert len(loader) == batches  # 7 photos / 3, 2 photos x 2 patches / 3
        batch = next(iter(loader))
        assert set(batch) == {"lr", "coord", "cell", "gt"}
        assert batch["lr"].shape == (3, 3, 48, 48) and batch["gt"].shape == (3, 64, 3)
        assert batch["coord"].shape == batch["cell"].shape == (3, 64, 2)
        assert all(value.dtype == torch.float32 for value in batch.values())
        assert batch["lr"].min() >= 0 and batch["lr"].max() <= 1
        assert batch["gt"].min() >= 0 and batch["gt"].max() <= 1
        assert batch["coord"].abs().max() < 1
        # cell = 2 / side with side = round(48·s), s in [1, 4]
        assert (batch["cell"] <= 2 / 48 + 1e-6).all() and (batch["cell"] >= 2 / 192 - 1e-6).all()


def test_div2k_trains_on_train_hr_and_validates_on_the_first_k_valid(data_root, cache_dir):
    module = small(cache_dir, images=DIV2K(data_root), val_first_k=1)
    module.check()
    assert [p.name for p in module.train_paths] == ["0001.png", "0002.png", "0003.png"]
    assert [p.name for p in module.val_paths] == ["0801.png"]
    assert next(iter(module.train_dataloader()))["lr"].shape == (2, 3, 16, 16)


def test_image_folders_take_any_folders_and_ignore_non_images(hr_folder, cache_dir):
    module = small(cache_dir, images=ImageFolders(hr_folder, hr_folder), scale_max=3)
    module.check()
    assert [p.name for p in module.train_paths] == ["a.png", "b.jpg", "c.bmp"]


def test_test_loaders_come_one_per_set_and_scale_in_name_order(data_root, cache_dir):
    sets = {
        "div2k": {
            "images": DIV2K(data_root),
            "scales": [2, 2.5],
            "channel": "rgb",
            "shave": "scale_plus_6",
        },
        "set5": {"images": Benchmark(data_root, "Set5"), "scales": [[2, 3]]},
    }
    module = small(cache_dir, eval_sets=sets)
    assert module.test_set_names == ["div2k/x2", "div2k/x2.5", "set5/x2x3"]
    loaders = module.test_dataloader()
    assert [len(loader) for loader in loaders] == [2, 2, 2]
    batch = next(iter(loaders[2]))
    assert batch["lr"].shape == (1, 3, 35, 22) and batch["name"] == "baby"
    assert (batch["scale"], batch["channel"], batch["shave"]) == ((2.0, 3.0), "y", 3)


def test_missing_root_names_the_setting_the_layout_and_the_embedded_default(cache_dir):
    with pytest.raises(DatasetNotFoundError) as error:
        small(cache_dir, images=DIV2K(None)).check()
    message = str(error.value)
    assert "data.root is not set" in message
    assert "IPE_DATA_ROOT" in message
    assert "DIV2K/DIV2K_train_HR/0001.png" in message and "LR_bicubic/X2" in message
    assert "plain `python run.py`" in message


def test_missing_subfolder_names_the_path_it_looked_for(data_root, cache_dir):
    shutil.rmtree(data_root / "DIV2K" / "DIV2K_train_HR")
    with pytest.raises(DatasetNotFoundError) as error:
        small(cache_dir, images=DIV2K(data_root)).check()
    message = str(error.value)
    assert f"looked for the folder {data_root / 'DIV2K' / 'DIV2K_train_HR'}" in message
    assert "Expected layout" in message and "python run.py" in message


def test_missing_or_empty_folders_are_errors(tmp_path, hr_folder, cache_dir):
    with pytest.raises(DatasetNotFoundError, match=r"data\.train_dir is not set"):
        small(cache_dir, images=ImageFolders(val_dir=hr_folder)).check()
    nowhere = re.escape(f"looked for the folder {tmp_path / 'nope'}")
    with pytest.raises(DatasetNotFoundError, match=nowhere):
        small(cache_dir, images=ImageFolders(tmp_path / "nope", hr_folder)).check()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetNotFoundError, match="has no images"):
        small(cache_dir, images=ImageFolders(empty, hr_folder)).check()


def test_corrupt_images_are_reported_by_name_or_skipped_with_one_warning(hr_folder, cache_dir):
    (hr_folder / "bad1.png").write_bytes(b"definitely not a png")
    (hr_folder / "bad2.jpg").write_bytes(b"")
    options = {"images": ImageFolders(hr_folder, hr_folder), "scale_max": 3}
    with pytest.raises(BadImageError) as error:
        small(cache_dir, **options).check()
    assert "bad1.png" in str(error.value) and "bad2.jpg" in str(error.value)
    assert "data.skip_bad=true" in str(error.value)

    module = small(cache_dir, skip_bad=True, **options)
    with pytest.warns(DataWarning) as caught:
        module.check()
    messages = [str(w.message) for w in caught]
    training = [m for m in messages if "training images" in m]
    assert len(training) == 1 and "skipping 2 unreadable or corrupt image file(s)" in training[0]
    assert [p.name for p in module.train_paths] == ["a.png", "b.jpg", "c.bmp"]


def test_images_smaller_than_the_largest_crop_are_skipped_with_a_list(hr_folder, cache_dir):
    # largest crop round(16·3.1) = 50: b.jpg (48 x 64) is too small, a.png (60 x 50) just fits
    module = small(cache_dir, images=ImageFolders(hr_folder, hr_folder), scale_max=3.1)
    with pytest.warns(DataWarning) as caught:
        module.check()
    message = str(caught[0].message)
    assert "skipping 1 image(s)" in message and "50x50" in message
    assert "b.jpg (48x64)" in message
    assert [p.name for p in module.train_paths] == ["a.png", "c.bmp"]

    with pytest.raises(ValueError, match=r"no image of training images .* holds the largest"):
        small(cache_dir, images=ImageFolders(hr_folder, hr_folder), scale_max=8).check()


class Recorder(pl.LightningModule):
    """Records the targets of every training batch; learns nothing."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[int, torch.Tensor]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append((self.current_epoch, batch["gt"].clone()))
        return (self.weight * batch["gt"].mean()) ** 2

    def validation_step(self, batch, batch_idx):
        assert batch["lr"].shape[-1] == 16

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_lightning_sets_the_epoch_so_each_epoch_draws_fresh_samples(data_root, cache_dir):
    module = small(cache_dir, images=DIV2K(data_root), seed=3, batch_size=2, repeat=1)
    recorder = Recorder()
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        use_distributed_sampler=False,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(recorder, datamodule=module)
    # 3 images x repeat 1, batch 2 -> 2 batches an epoch
    assert [epoch for epoch, _ in recorder.seen] == [0, 0, 1, 1]
    for epoch in (0, 1):
        expected = EpochSampler(3, seed=3)
        expected.set_epoch(epoch)
        keys = expected.epoch_pairs()
        dataset = module.train_dataloader().dataset
        want = torch.stack([dataset[key]["gt"] for key in keys[:2]])
        torch.testing.assert_close(recorder.seen[2 * epoch][1], want, rtol=0, atol=0)
    assert not torch.equal(recorder.seen[0][1], recorder.seen[2][1])


def test_without_the_cache_check_reads_headers_only(data_root, cache_dir, monkeypatch):
    from PIL import ImageFile

    Image.fromarray(np.zeros((80, 80, 3), np.uint8)).save(
        data_root / "DIV2K" / "DIV2K_train_HR" / "0004.png"
    )

    def no_decoding(image):
        raise AssertionError("check() decoded pixels")

    # Pillow decodes pixels in load() (ImageFile's for files read from disk), never in open().
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    module = small(
        cache_dir, cache=False, images=DIV2K(data_root), eval_sets=div2k_and_set5(data_root)
    )
    module.check()
    assert len(module.train_paths) == 4
    assert module.test_set_names == ["div2k/x2", "div2k/x2.5", "set5/x2"]
    with pytest.raises(RuntimeError, match="decoded pixels"):  # a decode would be caught
        module.test_dataloader()[0].dataset[0]


def fit(module, ckpt_path=None, checkpoint_dir=None):
    from pytorch_lightning.callbacks import ModelCheckpoint

    callbacks = []
    if checkpoint_dir is not None:
        callbacks = [
            ModelCheckpoint(checkpoint_dir, "s{step}", every_n_train_steps=1, save_top_k=-1),
            ModelCheckpoint(checkpoint_dir, "e{epoch}", save_top_k=-1),
        ]
    recorder = Recorder()
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        use_distributed_sampler=False,
        logger=False,
        callbacks=callbacks,
        enable_checkpointing=bool(callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=1,
    )
    trainer.fit(recorder, datamodule=module, ckpt_path=ckpt_path)
    return [gt for _, gt in recorder.seen]


@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before")
@pytest.mark.parametrize("workers", [0, 2])
def test_resuming_from_any_checkpoint_continues_with_the_uninterrupted_samples(
    data_root, cache_dir, tmp_path, workers
):
    def module():
        options = {"images": DIV2K(data_root), "repeat": 1, "val_first_k": 1}
        return small(cache_dir, num_workers=workers, **options)

    full = fit(module(), checkpoint_dir=tmp_path / "ckpt")  # 3 images, batch 2: 2 batches an epoch
    assert len(full) == 4
    checkpoints = {
        "sstep=1.ckpt": 3,  # mid-epoch 0
        "sstep=2.ckpt": 2,  # after the last batch of epoch 0, before its end
        "eepoch=0.ckpt": 2,  # end of epoch 0
        "sstep=3.ckpt": 1,  # mid-epoch 1
    }
    for name, remaining in checkpoints.items():
        resumed = fit(module(), ckpt_path=tmp_path / "ckpt" / name)
        assert len(resumed) == remaining, name
        for got, want in zip(resumed, full[-remaining:], strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0, msg=name)


def test_a_test_run_checks_only_the_evaluation_sets(data_root, cache_dir):
    sets = {"set5": {"images": Benchmark(data_root, "Set5"), "scales": [2]}}
    shutil.rmtree(data_root / "DIV2K")
    module = small(cache_dir, images=DIV2K(data_root), eval_sets=sets)
    module.check("test")
    assert module.test_set_names == ["set5/x2"]
    with pytest.raises(DatasetNotFoundError, match="DIV2K_train_HR"):
        module.check()


def folders_with_a_truncated_image(tmp_path, make, rng, split):
    """Train, val and test folders of 70x70 PNGs; ``split``'s folder also holds ``cut.png``."""
    folders = {name: tmp_path / name for name in ("train", "val", "test")}
    for folder in folders.values():
        for stem in ("a", "b"):
            make.save_png(folder / f"{stem}.png", make.random_rgb(rng, 70, 70))
    cut = make.save_truncated_png(folders[split] / "cut.png", make.random_rgb(rng, 70, 70))
    source = ImageFolders(folders["train"], folders["val"], folders["test"])
    eval_sets = {"folder": {"images": source, "scales": [2]}}
    return source, eval_sets, cut


def test_a_truncated_training_image_is_found_at_setup_by_the_cache(tmp_path, make, rng, cache_dir):
    source, eval_sets, _ = folders_with_a_truncated_image(tmp_path, make, rng, "train")
    with pytest.raises(BadImageError, match=r"(?s)1 unreadable.*cut\.png: OSError: image file"):
        small(cache_dir, images=source, eval_sets=eval_sets).check("fit")


def test_skip_bad_skips_a_truncated_training_image_with_one_warning(tmp_path, make, rng, cache_dir):
    source, eval_sets, cut = folders_with_a_truncated_image(tmp_path, make, rng, "train")
    module = small(cache_dir, images=source, eval_sets=eval_sets, skip_bad=True, repeat=4)
    with pytest.warns(DataWarning) as caught:
        module.check()
    (warning,) = [str(w.message) for w in caught]
    assert "skipping 1 unreadable or corrupt image file(s) in training images" in warning
    assert str(cut) in warning
    assert [p.name for p in module.train_paths] == ["a.png", "b.png"]
    assert sum(len(batch["lr"]) for batch in module.train_dataloader()) == 8  # all readable


def test_a_truncated_test_image_is_found_before_training(tmp_path, make, rng, cache_dir):
    source, eval_sets, cut = folders_with_a_truncated_image(tmp_path, make, rng, "test")
    module = small(cache_dir, images=source, eval_sets=eval_sets)
    with pytest.raises(BadImageError, match=re.escape(str(cut))):
        module.check()  # what a training run checks before fitting
    skipping = small(cache_dir, images=source, eval_sets=eval_sets, skip_bad=True)
    with pytest.warns(DataWarning, match="skipping 1 unreadable"):
        skipping.check("test")
    ((name, dataset),) = skipping.eval_datasets
    assert name == "folder/x2" and [dataset[i]["name"] for i in range(len(dataset))] == ["a", "b"]


def test_without_the_cache_the_scan_says_it_checks_headers_only(
    tmp_path, make, rng, cache_dir, caplog
):
    source, eval_sets, cut = folders_with_a_truncated_image(tmp_path, make, rng, "train")
    module = small(cache_dir, images=source, eval_sets=eval_sets, cache=False)
    with caplog.at_level("INFO", logger="ipe_lightning.data.datamodule"):
        module.check()
    assert cut in module.train_paths  # the header is fine
    assert caplog.text.count("checked by their headers only") == 1


def test_a_cache_that_cannot_be_written_is_named_with_the_way_out(
    hr_folder, cache_dir, monkeypatch
):
    import errno
    import tempfile

    def read_only(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # as in a read-only cache_dir
    module = small(cache_dir, images=ImageFolders(hr_folder, hr_folder), scale_max=3)
    with pytest.raises(OSError) as error:
        module.check()
    message = str(error.value)
    assert "could not read" not in message
    assert f"could not write the decoded cache entry {cache_dir}/" in message
    assert "errno 13 (Permission denied)" in message
    assert "data.cache_dir=" in message and "data.cache=false" in message
