"""conf/data and conf/eval compose with the root config and build the datasets they describe."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
from hydra import compose, initialize_config_dir

from ipe_lightning.data import (
    DIV2K,
    HELD_OUT_PHOTOS,
    TRAIN_PHOTOS,
    BundledPhotos,
    SRDataModule,
)
from ipe_lightning.data.layouts import DatasetNotFoundError

CONF = Path(__file__).resolve().parents[2] / "conf"


def data_module(*overrides: str) -> SRDataModule:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    module = hydra.utils.instantiate(cfg.data)
    assert isinstance(module, SRDataModule)
    return module


def test_the_embedded_default_needs_no_root(tmp_path, monkeypatch):
    monkeypatch.delenv("IPE_DATA_ROOT", raising=False)
    module = data_module(f"data.cache_dir={tmp_path}")
    assert isinstance(module.images, BundledPhotos)
    assert (module.inp_size, module.sample_q, module.seed) == (12, 144, 0)
    module.check()
    assert module.test_set_names == [
        "sample/x2",
        "sample/x2.5",
        "sample/x3",
        "sample/x4",
        "sample/x6",
        "sample/x12",
    ]
    assert [p.stem for p in module.train_paths] == list(TRAIN_PHOTOS)
    assert [p.stem for p in module.val_paths] == list(HELD_OUT_PHOTOS)
    for loader in module.test_dataloader():
        assert [pair.name for pair in loader.dataset.pairs] == list(HELD_OUT_PHOTOS)


def test_sample_scales_may_be_non_integer_and_per_axis(tmp_path):
    module = data_module(f"data.cache_dir={tmp_path}", "eval.scales=[2.5,[2,3]]")
    assert module.test_set_names == ["sample/x2.5", "sample/x2x3"]
    item = module.test_dataloader()[1].dataset[0]
    assert (item["channel"], item["shave"]) == ("y", 3)


def test_div2k_paper_settings(tiny_data_root, monkeypatch):
    monkeypatch.delenv("IPE_DATA_ROOT", raising=False)
    module = data_module("data=div2k", "eval=div2k", f"data.root={tiny_data_root}")
    assert (module.scale_min, module.scale_max, module.inp_size) == (1.0, 4.0, 48)
    assert (module.sample_q, module.repeat, module.batch_size) == (2304, 20, 16)
    assert (module.val_first_k, module.val_repeat) == (10, 160)
    assert isinstance(module.images, DIV2K) and module.images.root == str(tiny_data_root)
    (spec,) = module.eval_sets.values()
    assert isinstance(spec["images"], DIV2K)
    assert (spec["channel"], spec["shave"], spec["images"].root) == (
        "rgb",
        "scale_plus_6",
        str(tiny_data_root),
    )
    assert spec["scales"] == [2, 3, 4, 6, 12, 18, 24, 30]


def test_data_root_comes_from_the_environment_variable(tiny_data_root, monkeypatch, tmp_path):
    monkeypatch.setenv("IPE_DATA_ROOT", str(tiny_data_root))
    module = data_module(
        "data=div2k",
        "eval=div2k",
        "data.inp_size=16",
        f"data.cache_dir={tmp_path}",
        "eval.scales=[2,3,4,6,12,18,24,30]",
    )
    assert module.images.root == str(tiny_data_root)  # data.root, handed on to the source
    assert module.eval_sets["div2k"]["images"].root == str(tiny_data_root)
    module.check()
    assert module.test_set_names[-1] == "div2k/x30" and len(module.train_paths) == 3


def test_paper_evaluation_is_div2k_and_the_four_benchmarks(tiny_data_root, tmp_path):
    module = data_module("eval=paper", f"data.root={tiny_data_root}", f"data.cache_dir={tmp_path}")
    names = module.test_set_names
    assert [name.split("/")[0] for name in names] == ["div2k"] * 8 + [
        s for s in ("set5", "set14", "b100", "urban100") for _ in range(5)
    ]
    assert "set14/x8" in names and "div2k/x30" in names
    loaders = dict(zip(names, module.test_dataloader(), strict=True))
    item = loaders["urban100/x3"].dataset[0]
    assert (item["channel"], item["shave"]) == ("y", 3)


def test_benchmarks_scales_override_applies_to_every_set(tiny_data_root, tmp_path):
    module = data_module(
        "eval=benchmarks",
        "eval.scales=[4]",
        f"data.root={tiny_data_root}",
        f"data.cache_dir={tmp_path}",
    )
    assert module.test_set_names == ["set5/x4", "set14/x4", "b100/x4", "urban100/x4"]


def test_folder_evaluation_takes_eval_root(hr_folder, tmp_path):
    module = data_module("eval=folder", f"eval.root={hr_folder}", f"data.cache_dir={tmp_path}")
    assert module.test_set_names == ["folder/x2", "folder/x3", "folder/x4"]
    assert len(module.test_dataloader()[0]) == 3


def test_folder_evaluation_without_root_says_what_to_set(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"eval\.root is not set"):
        data_module("eval=folder", f"data.cache_dir={tmp_path}").check()


def test_div2k_without_root_fails_in_check_with_the_layout(monkeypatch, tmp_path):
    monkeypatch.delenv("IPE_DATA_ROOT", raising=False)
    module = data_module("data=div2k", "eval=div2k", f"data.cache_dir={tmp_path}")
    with pytest.raises(DatasetNotFoundError, match=r"(?s)data.root is not set.*python run.py"):
        module.check()


def test_folder_training_takes_train_and_val_dirs(hr_folder, tmp_path):
    module = data_module(
        "data=folder",
        f"data.train_dir={hr_folder}",
        f"data.val_dir={hr_folder}",
        "data.inp_size=16",
        "data.scale_max=3",
        f"data.cache_dir={tmp_path}",
    )
    module.check()
    assert [p.name for p in module.train_paths] == ["a.png", "b.jpg", "c.bmp"]


def test_a_set_joins_an_eval_config_by_name(tiny_data_root, tmp_path):
    module = data_module(
        "eval=div2k",
        "eval.scales=[2]",
        "+eval/sets@eval.sets.set5=set5",
        "eval.sets.set5.scales=[4]",
        f"data.root={tiny_data_root}",
        f"data.cache_dir={tmp_path}",
    )
    assert module.test_set_names == ["div2k/x2", "set5/x4"]


def test_paper_evaluation_has_a_scale_list_per_protocol(tiny_data_root, tmp_path):
    module = data_module(
        "eval=paper",
        "eval.sets.div2k.scales=[3]",
        "eval.scales=[2]",  # the benchmarks' list, as under eval=benchmarks
        f"data.root={tiny_data_root}",
        f"data.cache_dir={tmp_path}",
    )
    assert module.test_set_names == ["div2k/x3", "set5/x2", "set14/x2", "b100/x2", "urban100/x2"]


def test_every_eval_set_reads_its_scales_from_one_place():
    """The sets read ``eval.scales``; eval=paper states DIV2K's list under its set, once."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        for choice in ("div2k", "benchmarks", "paper"):
            cfg = compose("config", overrides=[f"eval={choice}"])
            assert not {"div2k_scales", "benchmark_scales"} & set(cfg.eval), choice
            for name, spec in cfg.eval.sets.items():
                own = choice == "paper" and name == "div2k"
                raw = spec._get_node("scales")._value()
                assert (raw == "${eval.scales}") != own, (choice, name, raw)


@pytest.mark.parametrize("choice", ["div2k", "folder", "sample"])
def test_where_the_data_lives_is_config_only_and_reaches_the_sources(choice, tmp_path):
    """``data.root`` (and ``data.train_dir`` / ``data.val_dir``) are set by users and handed on
    by interpolation; the data module's constructor takes none of them."""
    import inspect

    assert not {"root", "train_dir", "val_dir"} & set(inspect.signature(SRDataModule).parameters)
    overrides = [f"data={choice}", "eval=div2k", f"data.root={tmp_path}"]
    if choice == "folder":
        overrides += [f"data.train_dir={tmp_path}/train", f"data.val_dir={tmp_path}/val"]
    module = data_module(*overrides)
    assert not hasattr(module, "root")
    assert module.eval_sets["div2k"]["images"].root == str(tmp_path)
    if choice == "div2k":
        assert module.images.root == str(tmp_path)
    if choice == "folder":
        assert (module.images.train_dir, module.images.val_dir) == (
            f"{tmp_path}/train",
            f"{tmp_path}/val",
        )
