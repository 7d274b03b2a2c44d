"""The tiny tree has the distributed DIV2K and benchmark layouts that the image sources read, with
paired bicubic LR files as the distributed sets make them, and every scale the paper reports can
be evaluated on it; ``python -m ipe_lightning.data.tiny_tree DIR`` writes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ipe_lightning.data.eval_sets import EvalSetSpec, build_eval_datasets
from ipe_lightning.data.images import decode_rgb
from ipe_lightning.data.sources import DIV2K, Benchmark
from ipe_lightning.data.tiny_tree import write_tiny_datasets
from ipe_lightning.metrics import SSIM_WINDOW
from tests.support.runs import CONF_DIR, REPO

# What docs/method.md §5 lists, written out here rather than read from tiny_tree.py.
TRAIN = ["0001", "0002", "0003"]
VALID = ["0801", "0802"]
BENCHMARK_IMAGES = {
    "Set5": {"baby": (64, 66), "bird": (70, 64)},
    "Set14": {"lenna": (67, 72)},
    "B100": {"3096": (64, 70)},
    "Urban100": {"img_001": (66, 66)},
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_tiny_datasets(tmp_path_factory.mktemp("tiny") / "datasets")


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.mode == "RGB", path
        return np.asarray(image)


def files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def assert_paired_lr_is_pillow_bicubic_of_the_cropped_hr(source, hr_path: Path) -> None:
    hr = pixels(hr_path)
    height, width = hr.shape[:2]
    for scale in (2, 3, 4):
        lr_path = source.lr_file(hr_path, scale)
        assert lr_path.is_file(), lr_path
        crop = hr[: height // scale * scale, : width // scale * scale]
        expected = Image.fromarray(crop).resize(
            (width // scale, height // scale), Image.Resampling.BICUBIC
        )
        np.testing.assert_array_equal(pixels(lr_path), np.asarray(expected), err_msg=str(lr_path))


def test_div2k_finds_three_training_and_two_validation_images_of_96_pixels(tree):
    source = DIV2K(tree)
    assert [path.stem for path in source.train_images()] == TRAIN
    assert [path.stem for path in source.val_images()] == VALID
    assert source.test_images("div2k") == source.val_images()
    for path in [*source.train_images(), *source.val_images()]:
        assert pixels(path).shape == (96, 96, 3), path


def test_div2k_validation_images_have_their_paired_lr_at_x2_x3_x4(tree):
    source = DIV2K(tree)
    for hr_path in source.val_images():
        assert_paired_lr_is_pillow_bicubic_of_the_cropped_hr(source, hr_path)


def test_div2k_training_images_have_matlab_bicubic_lr_at_x2_x3_x4_for_paired_training(tree):
    """DIV2K_train_LR_bicubic/X<s>/<name>x<s>.png, as DIV2K made them: MATLAB's imresize."""
    import torch

    from ipe_lightning.data.matlab_resize import imresize_matlab_uint8

    lr_root = tree / "DIV2K" / "DIV2K_train_LR_bicubic"
    assert sorted(p.name for p in lr_root.iterdir()) == ["X2", "X3", "X4"]
    for hr_path in DIV2K(tree).train_images():
        hr = torch.from_numpy(pixels(hr_path).copy()).permute(2, 0, 1)
        for scale in (2, 3, 4):
            lr_path = lr_root / f"X{scale}" / f"{hr_path.stem}x{scale}.png"
            expected = imresize_matlab_uint8(hr, size=(96 // scale, 96 // scale))
            assert pixels(lr_path).shape == (96 // scale, 96 // scale, 3), lr_path
            np.testing.assert_array_equal(pixels(lr_path), expected.permute(1, 2, 0).numpy())
            pillow = Image.fromarray(pixels(hr_path)).resize((96 // scale,) * 2, Image.BICUBIC)
            assert not np.array_equal(pixels(lr_path), np.asarray(pillow))  # not Pillow's


@pytest.mark.parametrize("subdir", list(BENCHMARK_IMAGES))
def test_each_benchmark_has_its_images_at_odd_sizes_with_paired_lr(tree, subdir):
    source = Benchmark(tree, subdir)
    hr_paths = source.test_images(subdir.lower())
    assert {path.stem: pixels(path).shape[:2] for path in hr_paths} == BENCHMARK_IMAGES[subdir]
    for hr_path in hr_paths:
        assert_paired_lr_is_pillow_bicubic_of_the_cropped_hr(source, hr_path)


def contains(outer: np.ndarray, inner: np.ndarray) -> bool:
    """Whether ``inner`` is a window of ``outer`` (same pixels at some offset)."""
    if inner.shape[0] > outer.shape[0] or inner.shape[1] > outer.shape[1]:
        return False
    windows = np.lib.stride_tricks.sliding_window_view(outer, inner.shape)[..., 0, :, :, :]
    return bool((windows == inner).all(axis=(-3, -2, -1)).any())


def test_no_image_is_a_crop_of_another(tree):
    """Nine photos give ten images: a reused photo is cropped elsewhere, so no test image holds
    the pixels of a training image."""
    hr_paths = [
        path for path in sorted(tree.rglob("*.png")) if "LR_bicubic" not in str(path.parent)
    ]
    assert len(hr_paths) == len(TRAIN) + len(VALID) + 5
    for first in hr_paths:
        for second in hr_paths:
            if first != second:
                assert not contains(pixels(second), pixels(first)), (first, second)


def test_every_scale_the_paper_reports_leaves_an_ssim_window_after_the_shave(tree):
    """DIV2K at up to x30 with shave s + 6, the benchmarks at up to x8 with shave s: the HR left
    inside the shaved border still holds one 11x11 SSIM window."""
    paper = yaml.safe_load((CONF_DIR / "eval" / "paper.yaml").read_text())
    specs = [
        EvalSetSpec.from_config(
            "div2k",
            {
                "images": DIV2K(tree),
                "scales": paper["sets"]["div2k"]["scales"],
                "channel": "rgb",
                "shave": "scale_plus_6",
            },
        ),
        *(
            EvalSetSpec.from_config(
                subdir.lower(),
                {"images": Benchmark(tree, subdir), "scales": paper["scales"]},
            )
            for subdir in BENCHMARK_IMAGES
        ),
    ]
    for spec in specs:
        for name, dataset in build_eval_datasets(spec, decode_rgb):
            for item in dataset:
                height, width = item["hr"].shape[-2:]
                left = min(height, width) - 2 * item["shave"]
                assert left >= SSIM_WINDOW, f"{name} {item['name']}: {height}x{width}"


def test_writing_into_an_existing_tree_rewrites_its_images_and_keeps_other_files(tree, tmp_path):
    root = tmp_path / "datasets"
    write_tiny_datasets(root)
    stale = root / "DIV2K" / "DIV2K_train_HR" / "0001.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(stale)
    notes = root / "benchmark" / "notes.txt"
    notes.write_text("mine")
    assert write_tiny_datasets(root) == root
    assert files(root) == {**files(tree), "benchmark/notes.txt": b"mine"}


def test_the_command_line_writes_the_tree_and_prints_its_root(tree, tmp_path):
    root = tmp_path / "new" / "datasets"  # its parents need not exist
    done = subprocess.run(
        [sys.executable, "-m", "ipe_lightning.data.tiny_tree", str(root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(root)
    assert files(root) == files(tree)
