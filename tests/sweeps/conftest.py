"""Fixtures of the sweep tests: tiny DIV2K/benchmark folders; Table 4 from made-up results."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sweeps import made_up_results


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """``DIV2K/`` and ``benchmark/`` in the distributed layout, tiny (``data/tiny_tree.py``)."""
    from ipe_lightning.data.tiny_tree import write_tiny_datasets

    return write_tiny_datasets(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture(scope="session")
def decoded_cache(tmp_path_factory) -> Path:
    """One decoded-image cache for every sweep of the session (the images do not change)."""
    return tmp_path_factory.mktemp("decoded_cache")


@pytest.fixture
def table4_results():
    return made_up_results.table4_results()


@pytest.fixture
def table4(table4_results):
    from ipe_lightning.sweeps.definitions import load_sweep
    from ipe_lightning.sweeps.paper_numbers import load_paper_numbers
    from ipe_lightning.sweeps.table import build_table

    return build_table(load_sweep("table4").layout, table4_results, load_paper_numbers())
