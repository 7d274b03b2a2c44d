"""The paper's numbers: every row of the paper sweeps finds its cells, and only its own."""

from __future__ import annotations

import pytest

from ipe_lightning.report.paper_numbers import load_paper_numbers, paper_cell
from ipe_lightning.report.table import build_table
from ipe_lightning.sweep.definitions import load_sweep
from tests.report.made_up_results import row_of

PAPER = load_paper_numbers()


def test_paper_numbers_of_a_row_can_come_from_another_table(table4):
    # The LIIF baseline of Table 4 has no Table 4 entry: the sweep file points it at Table 1.
    liif = row_of(table4, "table4_liif")
    assert [c.paper.get("psnr") for c in liif.cells] == [34.67, 30.96, 29.00, 26.75, 22.17, 20.48]


def test_every_row_of_the_paper_sweeps_finds_its_paper_numbers():
    expected_cells = {"table1": 8, "table2": 20, "table3": None, "table4": 6}
    for name, count in expected_cells.items():
        table = build_table(load_sweep(name).layout, {}, PAPER)  # raises if a key is ambiguous
        for row in table.rows:
            if row.spec.paper is None:
                continue
            found = sum(bool(c.paper) for c in row.cells)
            if count is None:  # Table 3: U(1,8) rows stop at x6, U(1,16) rows go to x12
                count_here = 4 if "U(1,8)" in row.spec.group else 5
                assert found == count_here, (name, row.spec.label)
            elif "train_scales" in row.spec.paper:  # one model per scale: its scale in each set
                assert found == (1 if name == "table1" else 4), row.spec.label
            else:
                assert found == count, (name, row.spec.label)


def test_the_srno_sweep_shows_srnos_published_numbers_beside_its_own_recipes_row():
    table = build_table(load_sweep("table1_srno").layout, {}, PAPER)
    srno = row_of(table, "table1_edsr_baseline_srno_srno_recipe")
    published = [34.85, 31.11, 29.16, 26.90, 23.84, 22.29, 21.27, 20.56]  # Wei & Zhang, Table 1
    assert [c.paper.get("psnr") for c in srno.cells] == published
    assert not any(c.paper for c in row_of(table, "table1_edsr_baseline_srno").cells)


def test_a_key_that_matches_several_paper_rows_is_refused():
    # Table 4 has IPE-LIIF for L = 4, 10, 16, + cell and − skip: without the variant, ambiguous.
    with pytest.raises(ValueError, match="ambiguous"):
        paper_cell(PAPER, {"table": "table4", "method": "ipe_liif"}, "div2k", 2, ("psnr",))


def test_per_axis_scales_have_no_paper_numbers():
    key = {"table": "table1", "method": "bicubic"}
    assert paper_cell(PAPER, key, "div2k", 2, ("psnr",)) == {"psnr": 31.01}
    assert paper_cell(PAPER, key, "div2k", [2, 2], ("psnr",)) == {}
