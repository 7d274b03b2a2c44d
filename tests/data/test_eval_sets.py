"""Evaluation sets follow docs/method.md §4: paired LR where provided, the crop rule elsewhere."""

from __future__ import annotations

import math
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ipe_lightning.data.eval_sets import (
    EvalSetSpec,
    build_eval_datasets,
    collate_eval,
    resolve_shave,
)
from ipe_lightning.data.images import decode_rgb
from ipe_lightning.data.layouts import DatasetNotFoundError
from ipe_lightning.data.matlab_resize import imresize_matlab_uint8
from ipe_lightning.data.sources import DIV2K, Benchmark, BundledPhotos, ImageFolders
from ipe_lightning.scales import scale_tag


def as_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def eval_set(name, images, scales, **extra) -> EvalSetSpec:
    return EvalSetSpec.from_config(name, {"images": images, "scales": scales, **extra})


def div2k(root, scales, **extra):
    return eval_set("div2k", DIV2K(root), scales, channel="rgb", shave="scale_plus_6", **extra)


def set5(root, scales, **extra):
    return eval_set("set5", Benchmark(root, "Set5"), scales, **extra)


@pytest.mark.parametrize(
    ("scale", "tag"),
    [(2, "x2"), (2.0, "x2"), (2.5, "x2.5"), ([2.5, 3], "x2.5x3"), ([3, 3], "x3"), (12, "x12")],
)
def test_scale_tags_read_like_the_scale(scale, tag):
    assert scale_tag(scale) == tag


def test_shave_rules():
    assert resolve_shave("scale_plus_6", 4) == 10  # LIIF test code, DIV2K
    assert resolve_shave("scale", 3) == 3  # benchmarks
    assert resolve_shave("scale", 2.5) == 3 and resolve_shave("scale", [2, 3.5]) == 4
    assert resolve_shave(5, 30) == 5
    with pytest.raises(ValueError, match="shave must be"):
        resolve_shave("scale+6", 2)


def test_paired_scales_use_the_lr_files_and_crop_hr_to_lr_times_s(data_root):
    (named,) = build_eval_datasets(div2k(data_root, [3]), decode_rgb)
    name, dataset = named
    assert name == "div2k/x3" and len(dataset) == 2
    item = dataset[1]  # 0802: 67 x 75 HR, 22 x 25 LR
    lr_file = data_root / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X3" / "0802x3.png"
    hr_file = data_root / "DIV2K" / "DIV2K_valid_HR" / "0802.png"
    np.testing.assert_array_equal(as_uint8(item["lr"]), decode_rgb(lr_file))
    np.testing.assert_array_equal(as_uint8(item["hr"]), decode_rgb(hr_file)[:66, :75])
    assert item["name"] == "0802" and item["scale"] == (3.0, 3.0)
    assert item["channel"] == "rgb" and item["shave"] == 9


# 0801 is 70 x 66: 70/2.5 = 28, 66/2.5 = 26.4 -> 26, 26·2.5 = 65; per axis 70/2 = 35, 66/3 = 22
@pytest.mark.parametrize(
    ("scale", "lr_size", "hr_size"), [(2.5, (28, 26), (70, 65)), ([2, 3], (35, 22), (70, 66))]
)
def test_other_scales_generate_lr_by_the_crop_rule(data_root, scale, lr_size, hr_size):
    (named,) = build_eval_datasets(div2k(data_root, [scale]), decode_rgb)
    item = named[1][0]
    hr = decode_rgb(data_root / "DIV2K" / "DIV2K_valid_HR" / "0801.png")
    crop = hr[: hr_size[0], : hr_size[1]]
    lr = Image.fromarray(crop).resize(lr_size[::-1], Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(as_uint8(item["hr"]), crop)
    np.testing.assert_array_equal(as_uint8(item["lr"]), np.asarray(lr))
    assert item["shave"] == math.ceil(max(np.atleast_1d(scale))) + 6


def test_generated_lr_follows_the_sets_degrade_and_provided_files_stay(data_root):
    spec = div2k(data_root, [2, 2.5], degrade="matlab")
    named = dict(build_eval_datasets(spec, decode_rgb))
    hr = decode_rgb(data_root / "DIV2K" / "DIV2K_valid_HR" / "0801.png")
    crop = torch.tensor(hr[:70, :65]).permute(2, 0, 1)  # x2.5: LR 28 x 26 of HR 70 x 65
    matlab = imresize_matlab_uint8(crop, size=(28, 26)).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(as_uint8(named["div2k/x2.5"][0]["lr"]), matlab)
    lr_file = data_root / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X2" / "0801x2.png"
    np.testing.assert_array_equal(as_uint8(named["div2k/x2"][0]["lr"]), decode_rgb(lr_file))


def test_an_unknown_degrade_is_an_error_naming_the_option():
    spec = {"images": ImageFolders(test_dir="/nowhere"), "scales": [2], "degrade": "opencv"}
    with pytest.raises(ValueError, match=r"eval.degrade \(eval.sets.x.degrade\) must be one of"):
        EvalSetSpec.from_config("x", spec)


def test_integer_scales_without_provided_lr_are_generated(data_root):
    named = dict(build_eval_datasets(div2k(data_root, [2, 6], paired=False), decode_rgb))
    assert named["div2k/x2"].paired_scale is None and named["div2k/x6"].paired_scale is None
    item = named["div2k/x2"][0]
    assert tuple(item["lr"].shape[-2:]) == (35, 33) and tuple(item["hr"].shape[-2:]) == (70, 66)


def test_benchmarks_evaluate_y_with_shave_s_and_order_sets_by_scale(data_root):
    spec = set5(data_root, [4, 2, 8], channel="y", shave="scale")
    named = build_eval_datasets(spec, decode_rgb)
    assert [name for name, _ in named] == ["set5/x4", "set5/x2", "set5/x8"]
    assert [dataset.paired_scale for _, dataset in named] == [4, 2, None]
    item = named[0][1][0]
    assert (item["name"], item["channel"], item["shave"]) == ("baby", "y", 4)
    assert tuple(item["hr"].shape[-2:]) == (68, 64)  # 70 x 66 cropped to (17·4, 16·4)


def test_bundled_set_needs_no_root_and_holds_the_held_out_photos():
    spec = eval_set("sample", BundledPhotos(), [2.5], channel="y")
    ((name, dataset),) = build_eval_datasets(spec, decode_rgb)
    assert name == "sample/x2.5"
    assert [pair.name for pair in dataset.pairs] == ["chelsea", "rocket"]


def test_folder_set_reads_images_only(hr_folder):
    spec = eval_set("folder", ImageFolders(test_dir=hr_folder), [2])
    ((_, dataset),) = build_eval_datasets(spec, decode_rgb)
    assert [pair.name for pair in dataset.pairs] == ["a", "b", "c"]


def test_test_batches_have_a_batch_dim_and_plain_metadata(data_root):
    ((_, dataset),) = build_eval_datasets(div2k(data_root, [[2, 3]]), decode_rgb)
    batch = next(iter(DataLoader(dataset, batch_size=1, collate_fn=collate_eval)))
    assert batch["lr"].shape == (1, 3, 35, 22) and batch["hr"].shape == (1, 3, 70, 66)
    assert batch["lr"].dtype == batch["hr"].dtype == torch.float32
    assert batch["hr"].min() >= 0 and batch["hr"].max() <= 1
    assert batch["name"] == "0801" and batch["scale"] == (2.0, 3.0)
    assert batch["channel"] == "rgb" and batch["shave"] == 9
    assert type(batch["shave"]) is int and type(batch["scale"][0]) is float


def test_missing_lr_file_is_an_error_naming_the_pair(data_root):
    lr_file = data_root / "benchmark" / "Set5" / "LR_bicubic" / "X2" / "birdx2.png"
    lr_file.unlink()
    with pytest.raises(DatasetNotFoundError) as error:
        build_eval_datasets(set5(data_root, [2]), decode_rgb)
    message = str(error.value)
    assert "1 LR file(s) missing" in message
    assert f"HR {data_root / 'benchmark' / 'Set5' / 'HR' / 'bird.png'} -> LR {lr_file}" in message


def test_lr_of_the_wrong_size_is_an_error_naming_the_pair(data_root):
    lr_file = data_root / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X2" / "0801x2.png"
    Image.fromarray(np.zeros((36, 33, 3), np.uint8)).save(lr_file)
    with pytest.raises(ValueError) as error:
        build_eval_datasets(div2k(data_root, [2]), decode_rgb)
    message = str(error.value)
    assert str(lr_file) in message and "0801.png" in message
    assert "is 36x33" in message and "expected 35x33 (HR // 2)" in message


def test_missing_lr_folder_is_an_error_naming_it(data_root):
    shutil.rmtree(data_root / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X4")
    with pytest.raises(DatasetNotFoundError) as error:
        build_eval_datasets(div2k(data_root, [2, 4]), decode_rgb)
    assert str(data_root / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X4") in str(error.value)


def test_missing_root_says_how_to_set_it_and_how_to_run_the_default(data_root):
    with pytest.raises(DatasetNotFoundError) as error:
        build_eval_datasets(div2k(None, [2]), decode_rgb)
    message = str(error.value)
    assert "eval.root is not set" in message and "IPE_DATA_ROOT" in message
    assert "DIV2K/DIV2K_valid_HR/0801.png" in message  # the expected layout
    assert "python run.py" in message


def test_missing_benchmark_folder_names_the_path(data_root):
    shutil.rmtree(data_root / "benchmark" / "Urban100")
    spec = eval_set("urban100", Benchmark(data_root, "Urban100"), [2])
    with pytest.raises(DatasetNotFoundError) as error:
        build_eval_datasets(spec, decode_rgb)
    message = str(error.value)
    assert f"looked for the folder {data_root / 'benchmark' / 'Urban100' / 'HR'}" in message
    assert "benchmark/{Set5,Set14,B100,Urban100}/HR/<name>.png" in message
    assert "python run.py" in message


def test_too_large_a_scale_for_an_image_is_an_error_naming_it(data_root):
    with pytest.raises(ValueError, match=r"0801.png \(70x66\) is too small for scale x80"):
        build_eval_datasets(div2k(data_root, [80]), decode_rgb)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("x", {"colour": "rgb"}, "unknown keys"),
        ("x", {"channel": "ycbcr"}, "channel must be one of"),
        ("x", {"images": "zip"}, "images must be an image source"),
        ("x", {"images": {"_target_": "ipe_lightning.data.DIV2K"}}, "hydra.utils.instantiate"),
        ("x", {"scales": []}, "scales must be a non-empty list"),
        ("x", {"scales": [0]}, "scale must be positive"),
        ("a/b", {}, "without '/'"),
    ],
)
def test_bad_specs_are_errors(name, change, message):
    spec = {"images": ImageFolders(test_dir="/nowhere"), "scales": [2]} | change
    with pytest.raises(ValueError, match=message):
        EvalSetSpec.from_config(name, spec)


def test_a_benchmark_needs_its_folder_name():
    with pytest.raises(ValueError, match="needs subdir"):
        Benchmark("/nowhere", "")


def test_an_image_cut_short_is_an_error_naming_it_when_read(data_root):
    hr_file = data_root / "DIV2K" / "DIV2K_valid_HR" / "0802.png"
    ((_, dataset),) = build_eval_datasets(div2k(data_root, [2.5]), decode_rgb)
    hr_file.write_bytes(hr_file.read_bytes()[:200])
    with pytest.raises(RuntimeError, match=re.escape(f"could not read evaluation image {hr_file}")):
        dataset[1]
