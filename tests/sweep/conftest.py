"""Fixtures of the sweep tool's tests: tiny DIV2K/benchmark folders, one decoded-image cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """``DIV2K/`` and ``benchmark/`` in the distributed layout, tiny (``data/tiny_tree.py``)."""
    from ipe_lightning.data.tiny_tree import write_tiny_datasets

    return write_tiny_datasets(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture(scope="session")
def decoded_cache(tmp_path_factory) -> Path:
    """One decoded-image cache for every sweep of the session (the images do not change)."""
    return tmp_path_factory.mktemp("decoded_cache")
