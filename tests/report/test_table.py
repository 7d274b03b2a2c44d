"""A layout filled with results: our value, the paper's and the difference; status rows; best."""

from __future__ import annotations

import pytest

from ipe_lightning.report.paper_numbers import load_paper_numbers
from ipe_lightning.report.table import build_table
from ipe_lightning.sweep.definitions import load_sweep
from tests.report.made_up_results import TABLE4_SCALES, finished, row_of

PAPER = load_paper_numbers()


def test_each_cell_has_ours_the_papers_number_and_the_difference(table4):
    cell = row_of(table4, "table4_ipe_liif_l10").cells[0]  # x2; paper Table 4, L=10: 34.72
    assert cell.ours == {"psnr": 34.75} and cell.paper == {"psnr": 34.72}
    assert cell.diff("psnr") == pytest.approx(0.03)


def test_failed_interrupted_and_missing_jobs_are_shown_never_dropped(table4):
    statuses = {r.spec.variant: r.status for r in table4.rows if r.spec.kind == "job"}
    assert statuses == {
        "table4_liif": "interrupted",
        "table4_liif_pe": "failed",
        "table4_ipe_liif_l4": "finished",
        "table4_ipe_liif_l10": "finished",
        "table4_ipe_liif_l16": "missing",
        "table4_ipe_liif_cell": "missing",
        "table4_ipe_liif_noskip": "missing",
    }
    assert len(table4.incomplete) == 5


def test_our_best_value_per_column_is_marked_ties_included(table4):
    l10, l4 = row_of(table4, "table4_ipe_liif_l10"), row_of(table4, "table4_ipe_liif_l4")
    assert [bool(c.best) for c in l10.cells] == [True] * 6
    assert [bool(c.best) for c in l4.cells] == [False] * 5 + [True]  # x30: 20.50 both


def test_bicubic_row_holds_the_bicubic_numbers_the_jobs_measured(table4):
    bicubic = next(r for r in table4.rows if r.spec.kind == "bicubic")
    assert [c.ours["psnr"] for c in bicubic.cells] == pytest.approx(
        [30 - s / 10 for s in TABLE4_SCALES]
    )
    assert bicubic.cells[0].paper == {"psnr": 31.01}  # Table 1's bicubic row
    assert not any(c.best for c in bicubic.cells)  # bold is for the variants only


def test_psnr_ssim_tables_hold_both_metrics_with_both_differences():
    layout = load_sweep("table1").layout
    results = {"table1_rdn_ipe_liif": finished({2: 34.70, 3: 31.0}, ssim=0.9700)}
    table = build_table(layout, results, PAPER)
    cell = row_of(table, "table1_rdn_ipe_liif").cells[0]  # paper: 35.04 / 0.9694
    assert cell.paper == {"psnr": 35.04, "ssim": 0.9694}
    assert cell.diff("psnr") == pytest.approx(-0.34) and cell.diff("ssim") == pytest.approx(6e-4)
    one_per_scale = [row_of(table, f"table1_edsr_baseline_x{s}") for s in (2, 3, 4)]
    assert [[c.paper.get("psnr") for c in r.cells][:4] for r in one_per_scale] == [
        [34.55, None, None, None],
        [None, 30.90, None, None],
        [None, None, 28.94, None],
    ]


def test_results_of_variants_the_layout_does_not_list_are_appended():
    layout = load_sweep("table4").layout
    table = build_table(layout, {"an_extra_job": finished({2: 30.0})}, PAPER)
    extra = row_of(table, "an_extra_job")
    assert extra.status == "finished" and extra.cells[0].ours == {"psnr": 30.0}
