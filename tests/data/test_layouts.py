"""A root may hold DIV2K and the benchmarks in this suite's layout or the LIIF code base's; the
folders are found without a flag and a missing one is told with both layouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipe_lightning.data.layouts import (
    DatasetNotFoundError,
    benchmark_dir,
    div2k_dir,
    require_images,
    require_root,
)

# (layout, where DIV2K is, where the benchmarks are), relative to the root given
LAYOUTS = [
    ("suite", "DIV2K", "benchmark"),
    ("LIIF repository", "load/div2k", "load/benchmark"),
    ("LIIF load folder", "div2k", "benchmark"),
]


def build(root: Path, div2k: str, benchmark: str) -> None:
    """Empty folders as the published layouts name them (the LIIF configs' paths)."""
    for folder in (
        f"{div2k}/DIV2K_train_HR",
        f"{div2k}/DIV2K_valid_HR",
        f"{div2k}/DIV2K_valid_LR_bicubic/X2",
        f"{benchmark}/Set5/HR",
        f"{benchmark}/Set5/LR_bicubic/X2",
    ):
        (root / folder).mkdir(parents=True)


@pytest.mark.parametrize(("layout", "div2k", "benchmark"), LAYOUTS)
def test_each_published_layout_is_found_without_a_flag(tmp_path, layout, div2k, benchmark):
    build(tmp_path, div2k, benchmark)
    assert div2k_dir(tmp_path) == tmp_path / div2k
    assert benchmark_dir(tmp_path) == tmp_path / benchmark
    assert (div2k_dir(tmp_path) / "DIV2K_valid_LR_bicubic" / "X2").is_dir()


def test_each_dataset_is_found_on_its_own(tmp_path):
    (tmp_path / "DIV2K").mkdir()
    (tmp_path / "load" / "benchmark").mkdir(parents=True)
    assert div2k_dir(tmp_path) == tmp_path / "DIV2K"
    assert benchmark_dir(str(tmp_path)) == tmp_path / "load" / "benchmark"


def test_an_empty_root_names_the_suite_layout_for_the_error(tmp_path):
    assert div2k_dir(tmp_path) == tmp_path / "DIV2K"
    assert benchmark_dir(tmp_path) == tmp_path / "benchmark"


def test_a_root_with_a_tilde_is_expanded(tmp_path, monkeypatch):
    build(tmp_path / "data", "load/div2k", "load/benchmark")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert div2k_dir("~/data") == tmp_path / "data" / "load" / "div2k"


def test_a_missing_set_shows_both_layouts_and_how_to_download(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        require_images(div2k_dir(tmp_path) / "DIV2K_valid_HR", "DIV2K validation HR")
    message = str(error.value)
    assert f"looked for the folder {tmp_path / 'DIV2K' / 'DIV2K_valid_HR'}" in message
    assert "DIV2K/DIV2K_valid_HR/0801.png" in message  # the suite's layout
    assert "<root>/load/" in message and "div2k/DIV2K_valid_HR/" in message  # LIIF's
    assert "python -m ipe_lightning.data.download div2k benchmarks --root <root>" in message
    assert "python run.py" in message


def test_an_unset_root_shows_both_layouts():
    with pytest.raises(DatasetNotFoundError) as error:
        require_root(None, "data.root", "data=div2k needs DIV2K")
    message = str(error.value)
    assert "data.root is not set" in message
    assert "benchmark/{Set5,Set14,B100,Urban100}/LR_bicubic/X2/<name>x2.png" in message
    assert "LIIF code base" in message
