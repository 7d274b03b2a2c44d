"""Paired training samples (the provided LR with its HR, data/paired.py), checked by an oracle that
knows nothing of the code: LR and HR are position-coded (a pixel's red and green are its row and
column), so from a sample alone the oracle reads which LR window, which HR window and which of
the eight flips/transposes each shows. The pairs are checked as paired evaluation checks them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from ipe_lightning.data.datamodule import SRDataModule
from ipe_lightning.data.eval_sets import EvalPair
from ipe_lightning.data.images import DataWarning, decode_rgb
from ipe_lightning.data.paired import PairedPatches, paired_sample, train_lr_dir
from ipe_lightning.data.sampler import EpochSampler
from ipe_lightning.data.sources import DIV2K
from ipe_lightning.errors import SettingError, UserError
from tests.data.test_crops import DIHEDRAL  # (u, v) of the crop shown at (i, j), each of eight


def coded(height: int, width: int, blue: int) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows, cols, np.full_like(rows, blue)], axis=-1).astype(np.uint8)


def window_of(i: np.ndarray, j: np.ndarray, rows: np.ndarray, cols: np.ndarray, n: int):
    """``(top, left, dihedral)`` of the one n x n window whose augmented (i, j) show the original
    (rows, cols); fails unless exactly one fits."""
    found = []
    for index, dihedral in enumerate(DIHEDRAL):
        u, v = dihedral(i, j, n)
        tops, lefts = rows - u, cols - v
        if (tops == tops[0]).all() and (lefts == lefts[0]).all():
            found.append((int(tops[0]), int(lefts[0]), index))
    assert len(found) == 1, f"{len(found)} windows fit"
    return found[0]


def read_lr(lr: torch.Tensor):
    n = lr.shape[-1]
    i, j = (a.ravel() for a in np.mgrid[0:n, 0:n])
    values = (lr * 255).round().long().numpy()
    return window_of(i, j, values[0, i, j], values[1, i, j], n)


def read_hr(sample: dict[str, torch.Tensor]):
    side = round(2 / sample["cell"][0, 0].item())
    local = ((sample["coord"].double() + 1) * side / 2 - 0.5).round().long().numpy()
    rows, cols = (sample["gt"][:, :2] * 255).round().long().numpy().T
    return side, local, window_of(local[:, 0], local[:, 1], rows, cols, side)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_the_hr_crop_is_the_lr_crops_area_with_the_same_flips_and_every_pixel_queried(scale):
    lr, hr = coded(20, 23, 200), coded(20 * scale + 1, 23 * scale, 77)  # HR // s, one row spare
    for seed in range(12):
        sample = paired_sample(lr, hr, np.random.default_rng(seed), scale=scale, inp_size=8)
        assert sample["lr"].shape == (3, 8, 8)
        lr_top, lr_left, lr_flip = read_lr(sample["lr"])
        side, local, (hr_top, hr_left, hr_flip) = read_hr(sample)
        assert side == 8 * scale
        assert (hr_top, hr_left, hr_flip) == (lr_top * scale, lr_left * scale, lr_flip)
        assert 0 <= lr_top <= 20 - 8 and 0 <= lr_left <= 23 - 8
        assert sorted(map(tuple, local)) == [(r, c) for r in range(side) for c in range(side)]
        assert torch.allclose(sample["cell"], torch.full((side * side, 2), 2 / side))
        assert (sample["gt"][:, 2] * 255).round().eq(77).all()  # HR pixels, not LR ones


def test_flips_and_positions_are_uniform_and_augment_false_keeps_the_crop():
    lr, hr = coded(10, 10, 200), coded(20, 20, 77)
    seen_flips, seen_tops = set(), set()
    for seed in range(200):
        sample = paired_sample(lr, hr, np.random.default_rng(seed), scale=2, inp_size=8)
        top, _, flip = read_lr(sample["lr"])
        seen_flips.add(flip)
        seen_tops.add(top)
    assert seen_flips == set(range(8)) and seen_tops == {0, 1, 2}
    for seed in range(20):
        plain = paired_sample(
            lr, hr, np.random.default_rng(seed), scale=2, inp_size=8, augment=False
        )
        assert read_lr(plain["lr"])[2] == 0 and read_hr(plain)[2][2] == 0


def test_sample_q_queries_that_many_distinct_hr_pixels_of_the_crop():
    lr, hr = coded(12, 12, 200), coded(36, 36, 77)
    sample = paired_sample(lr, hr, np.random.default_rng(3), scale=3, inp_size=6, sample_q=50)
    side, local, (top, left, flip) = read_hr(sample)
    assert sample["gt"].shape == (50, 3) and side == 18
    assert len(set(map(tuple, local))) == 50
    assert (top, left, flip)[:2] == tuple(3 * x for x in read_lr(sample["lr"])[:2])


def test_a_sample_is_a_function_of_its_seed():
    lr, hr = coded(12, 12, 200), coded(24, 24, 77)
    first, second = (
        paired_sample(lr, hr, np.random.default_rng(9), scale=2, inp_size=6) for _ in range(2)
    )
    for key in first:
        assert torch.equal(first[key], second[key])


def test_crops_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match="does not fit"):
        paired_sample(
            coded(7, 12, 0), coded(14, 24, 0), np.random.default_rng(0), scale=2, inp_size=8
        )
    with pytest.raises(ValueError, match="does not hold"):
        paired_sample(
            coded(8, 8, 0), coded(15, 16, 0), np.random.default_rng(0), scale=2, inp_size=4
        )


# -- the pairs on disk, through the data module --------------------------------------------------


@pytest.fixture
def paired_root(data_root, make):
    """``data_root`` with its training LR at x2 and x3 (x4 left out), the HR cut to ``LR·s``
    (any resize does here: the checks look at files and sizes)."""
    for hr_path in (data_root / "DIV2K" / "DIV2K_train_HR").glob("*.png"):
        hr = decode_rgb(hr_path)
        for scale in (2, 3):
            lr = hr[: hr.shape[0] // scale * scale : scale, : hr.shape[1] // scale * scale : scale]
            make.save_png(train_lr_dir(hr_path.parent, scale) / f"{hr_path.stem}x{scale}.png", lr)
    return data_root


def module(root, tmp_path, **settings) -> SRDataModule:
    options = {"inp_size": 8, "sample_q": None, "batch_size": 2, "cache_dir": str(tmp_path / "c")}
    return SRDataModule(DIV2K(root), **{**options, **settings})


def test_the_data_module_pairs_each_training_and_validation_hr_with_its_provided_lr(
    paired_root, tmp_path
):
    dm = module(paired_root, tmp_path, scale=3)
    dm.check("fit")
    train_lr = paired_root / "DIV2K" / "DIV2K_train_LR_bicubic" / "X3"
    val_lr = paired_root / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X3"
    assert [(p.name, p.lr) for p in dm.train_pairs] == [
        (n, train_lr / f"{n}x3.png") for n in ("0001", "0002", "0003")
    ]
    assert [(p.name, p.lr) for p in dm.val_pairs] == [
        (n, val_lr / f"{n}x3.png") for n in ("0801", "0802")
    ]
    batch = next(iter(dm.train_dataloader()))
    assert batch["lr"].shape == (2, 3, 8, 8)
    assert batch["coord"].shape == batch["cell"].shape == (2, 24 * 24, 2)
    assert batch["gt"].shape == (2, 24 * 24, 3)
    assert next(iter(dm.val_dataloader()))["gt"].shape == (2, 24 * 24, 3)


def test_a_missing_scale_folder_is_one_user_error_naming_it(paired_root, tmp_path):
    with pytest.raises(UserError, match=r"x4 LR folder of training images of DIV2K.*X4"):
        module(paired_root, tmp_path, scale=4).check("fit")


def test_a_missing_lr_file_is_one_user_error_naming_the_pair(paired_root, tmp_path):
    lr = paired_root / "DIV2K" / "DIV2K_train_LR_bicubic" / "X2" / "0002x2.png"
    lr.unlink()
    with pytest.raises(UserError) as caught:
        module(paired_root, tmp_path, scale=2).check("fit")
    message = str(caught.value)
    assert "1 LR file(s) missing" in message
    assert f"0002.png -> LR {lr}" in message and "0001" not in message


def test_an_lr_of_the_wrong_size_is_one_user_error_naming_the_pair(paired_root, tmp_path, make):
    lr = paired_root / "DIV2K" / "DIV2K_train_LR_bicubic" / "X2" / "0003x2.png"
    make.save_png(lr, np.zeros((31, 32, 3), np.uint8))  # its HR is 64x64: expected 32x32
    with pytest.raises(UserError) as caught:
        module(paired_root, tmp_path, scale=2).check("fit")
    message = str(caught.value)
    assert str(lr) in message and "0003.png is 64x64" in message and "expected 32x32" in message
    assert "0001" not in message


def test_an_lr_folder_elsewhere_is_read_from_data_lr_dir(paired_root, tmp_path):
    elsewhere = tmp_path / "my_lr"
    shutil.copytree(paired_root / "DIV2K" / "DIV2K_train_LR_bicubic" / "X2", elsewhere)
    shutil.rmtree(paired_root / "DIV2K" / "DIV2K_train_LR_bicubic")
    dm = module(paired_root, tmp_path, scale=2, lr_dir=str(elsewhere))
    dm.check("fit")
    assert [p.lr.parent for p in dm.train_pairs] == [elsewhere] * 3


def test_pairs_too_small_for_the_crop_are_skipped_with_one_warning(paired_root, tmp_path):
    # x3 LR of training 0001-0003: 23x22, 22x25, 21x21; a 22-pixel crop fits the first two
    dm = module(paired_root, tmp_path, scale=3, inp_size=22)
    with pytest.warns(DataWarning, match=r"(?s)skipping 1 pair.*0003x3.png \(21x21\)"):
        dm.check("fit")
    assert [p.name for p in dm.train_pairs] == ["0001", "0002"]
    with pytest.raises(UserError, match="no LR file of training images of DIV2K holds"):
        module(paired_root, tmp_path, scale=3, inp_size=24).check("fit")


@pytest.mark.parametrize("scale", [0, 2.0, "2"])
def test_data_scale_must_be_a_positive_integer(scale, tmp_path, data_root):
    with pytest.raises(SettingError, match=r"data\.scale"):
        module(data_root, tmp_path, scale=scale)


def test_data_scale_needs_a_source_with_validation_lr_at_that_scale(paired_root, tmp_path):
    with pytest.raises(SettingError, match=r"data.scale=5 .*x2, x3, x4"):
        module(paired_root, tmp_path, scale=5).check("fit")


def test_paired_patches_are_keyed_by_index_and_seed_like_the_random_scale_ones(paired_root):
    hr = paired_root / "DIV2K" / "DIV2K_train_HR" / "0001.png"
    pair = EvalPair("0001", hr, train_lr_dir(hr.parent, 2) / "0001x2.png")
    patches = PairedPatches([pair], decode_rgb, scale=2, repeat=4, inp_size=8)
    sampler = EpochSampler(len(patches), seed=5)
    first = [patches[key]["lr"] for key in sampler]
    again = [patches[key]["lr"] for key in sampler]
    assert len(first) == 4 and all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    with pytest.raises(TypeError, match="EpochSampler"):
        patches[0]
