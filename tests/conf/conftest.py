"""Fixtures of the config tests: the tiny DIV2K/benchmark tree and a plain folder of HR images."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """``DIV2K/`` and ``benchmark/`` in the distributed layout, tiny (``data/tiny_tree.py``)."""
    from ipe_lightning.data.tiny_tree import write_tiny_datasets

    return write_tiny_datasets(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture(scope="session")
def hr_folder(tiny_data_root, tmp_path_factory) -> Path:
    """A plain folder of HR images (PNG, JPEG, BMP: the tiny DIV2K training images) plus files
    that are not images."""
    folder = tmp_path_factory.mktemp("hr")
    training = sorted((tiny_data_root / "DIV2K" / "DIV2K_train_HR").glob("*.png"))
    for path, name in zip(training, ["a.png", "b.jpg", "c.bmp"], strict=True):
        with Image.open(path) as image:
            image.save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    (folder / "Thumbs.db").write_bytes(b"\0" * 64)
    return folder
