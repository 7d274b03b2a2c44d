"""Fixtures of the config tests: a plain folder of HR images (the tiny DIV2K/benchmark tree is the
session's, tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image


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
