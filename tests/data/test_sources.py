"""Image sources find each split's HR images and the provided LR files where the sets keep them."""

from __future__ import annotations

import pytest

from ipe_lightning.data.bundled import HELD_OUT_PHOTOS, TRAIN_PHOTOS
from ipe_lightning.data.layouts import DatasetNotFoundError
from ipe_lightning.data.sources import DIV2K, Benchmark, BundledPhotos, ImageFolders


def test_div2k_splits_and_lr_files_follow_the_distributed_layout(data_root):
    div2k = DIV2K(data_root)
    assert [p.name for p in div2k.train_images()] == ["0001.png", "0002.png", "0003.png"]
    assert div2k.val_images() == div2k.test_images("div2k")
    (first, _) = div2k.test_images("div2k")
    lr = div2k.lr_file(first, 3)
    assert lr == data_root / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X3" / "0801x3.png"
    assert lr.is_file() and div2k.paired_scales == (2, 3, 4)


def test_a_benchmark_finds_its_own_folder_and_lr_files(data_root):
    set5 = Benchmark(data_root, "Set5")
    assert [p.stem for p in set5.test_images("set5")] == ["baby", "bird"]
    assert set5.lr_file(set5.test_images("set5")[1], 4).is_file()


def test_a_root_given_with_a_tilde_is_expanded_for_hr_and_lr(data_root, monkeypatch):
    monkeypatch.setenv("HOME", str(data_root.parent))
    set5 = Benchmark(f"~/{data_root.name}", "Set5")
    (baby, _) = set5.test_images("set5")
    assert baby.is_file() and set5.lr_file(baby, 2).is_file()


def test_a_benchmark_is_a_test_set_only(data_root):
    with pytest.raises(ValueError, match="the benchmark Set14 is a test set"):
        Benchmark(data_root, "Set14").train_images()


def test_folders_without_lr_files_are_evaluated_on_generated_lr(hr_folder):
    folders = ImageFolders(test_dir=hr_folder)
    assert folders.paired_scales == ()
    assert [p.name for p in folders.test_images("folder")] == ["a.png", "b.jpg", "c.bmp"]
    with pytest.raises(DatasetNotFoundError, match=r"data\.train_dir is not set"):
        folders.train_images()


def test_the_bundled_photos_train_on_the_training_photos_and_test_on_the_held_out_ones():
    photos = BundledPhotos()
    assert [p.stem for p in photos.train_images()] == list(TRAIN_PHOTOS)
    assert [p.stem for p in photos.val_images()] == list(HELD_OUT_PHOTOS)
    assert photos.test_images("sample") == photos.val_images()
    assert photos.paired_scales == ()
