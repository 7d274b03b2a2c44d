"""Fixtures of the report tool's tests: Table 4 from made-up results."""

from __future__ import annotations

import pytest

from tests.report import made_up_results


@pytest.fixture
def table4_results():
    return made_up_results.table4_results()


@pytest.fixture
def table4(table4_results):
    from ipe_lightning.report.command import sweep_file_layout
    from ipe_lightning.report.paper_numbers import load_paper_numbers
    from ipe_lightning.report.table import build_table
    from ipe_lightning.sweep_files import REPO_CONF_DIR

    layout, _ = sweep_file_layout("table4", REPO_CONF_DIR)
    return build_table(layout, table4_results, load_paper_numbers())
