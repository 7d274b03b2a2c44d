"""The image sources read DIV2K and the benchmarks from a root in the LIIF code base's layout."""

from __future__ import annotations

import shutil

import pytest

from ipe_lightning.data.eval_sets import EvalSetSpec, build_eval_datasets
from ipe_lightning.data.images import decode_rgb
from ipe_lightning.data.sources import DIV2K, Benchmark


@pytest.fixture(params=["repository", "load folder"])
def liif_root(request, data_root):
    """``data_root``'s trees moved to ``<root>/load/{div2k,benchmark}``; the root given is the
    repository (holding ``load/``) or the ``load/`` folder itself."""
    load = data_root / "load"
    load.mkdir()
    shutil.move(data_root / "DIV2K", load / "div2k")
    shutil.move(data_root / "benchmark", load / "benchmark")
    return data_root if request.param == "repository" else load


def test_div2k_in_the_liif_layout_gives_every_split_and_its_lr_files(liif_root):
    div2k = DIV2K(liif_root)
    folder = next(liif_root.glob("**/div2k"))
    assert div2k.train_images() == sorted((folder / "DIV2K_train_HR").glob("*.png"))
    assert [p.name for p in div2k.val_images()] == ["0801.png", "0802.png"]
    first = div2k.test_images("div2k")[0]
    assert div2k.lr_file(first, 3) == folder / "DIV2K_valid_LR_bicubic" / "X3" / "0801x3.png"
    assert div2k.lr_file(first, 3).is_file()


def test_a_benchmark_in_the_liif_layout_is_evaluated_on_its_lr_files(liif_root):
    spec = EvalSetSpec.from_config("set5", {"images": Benchmark(liif_root, "Set5"), "scales": [2]})
    ((name, dataset),) = build_eval_datasets(spec, decode_rgb)
    assert name == "set5/x2" and dataset.paired_scale == 2
    assert [pair.lr.name for pair in dataset.pairs] == ["babyx2.png", "birdx2.png"]
    assert all(pair.lr.is_file() and "load" in pair.lr.parts for pair in dataset.pairs)
