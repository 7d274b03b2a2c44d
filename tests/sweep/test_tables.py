"""Tables in the paper's layout from a hand-made results set: md, csv and tex content."""

from __future__ import annotations

import csv
import io

import pytest

from ipe_lightning.sweeps.definitions import load_sweep
from ipe_lightning.sweeps.plots import gain_curves, plot_psnr_gain
from ipe_lightning.sweeps.tables import (
    JobResult,
    build_table,
    default_layout,
    load_paper_numbers,
    render_csv,
    render_latex,
    render_markdown,
    scale_key,
)

PAPER = load_paper_numbers()
TABLE4_SCALES = (2, 3, 4, 6, 18, 30)


def finished(psnr: dict[int, float], *, ssim: float = 0.9, bicubic: float = 30.0) -> JobResult:
    metrics = {
        f"div2k/x{s}": {
            "psnr": value,
            "ssim": ssim,
            "bicubic_psnr": bicubic - s / 10,
            "bicubic_ssim": 0.8,
        }
        for s, value in psnr.items()
    }
    return JobResult("finished", metrics, "")


@pytest.fixture
def table4_results() -> dict[str, JobResult]:
    """L=10 beats L=4 except at x30 (tie); LIIF w/ PE failed; the other variants never ran."""
    return {
        "table4_ipe_liif_l10": finished(
            {2: 34.75, 3: 31.00, 4: 29.10, 6: 26.80, 18: 22.30, 30: 20.50}
        ),
        "table4_ipe_liif_l4": finished(
            {2: 34.70, 3: 30.90, 4: 29.00, 6: 26.70, 18: 22.20, 30: 20.50}
        ),
        "table4_liif_pe": JobResult("failed", {}, "NonFiniteLossError: loss is nan at step 4"),
        "table4_liif": JobResult("interrupted", {}, "stopped before its results"),
    }


@pytest.fixture
def table4(table4_results):
    return build_table(load_sweep("table4").layout, table4_results, PAPER)


def row_of(table, variant):
    (row,) = [r for r in table.rows if r.spec.variant == variant]
    return row


def test_each_cell_has_ours_the_papers_number_and_the_difference(table4):
    cell = row_of(table4, "table4_ipe_liif_l10").cells[0]  # x2; paper Table 4, L=10: 34.72
    assert cell.ours == {"psnr": 34.75} and cell.paper == {"psnr": 34.72}
    assert cell.diff("psnr") == pytest.approx(0.03)
    markdown = render_markdown(table4)
    assert "| L = 10 (ours, default) | **34.75** (34.72, Δ +0.03) |" in markdown
    assert "30.90 (31.00, Δ -0.10)" in markdown  # L=4 at x3: below the paper


def test_paper_numbers_of_a_row_can_come_from_another_table(table4):
    # The LIIF baseline of Table 4 has no Table 4 entry: the sweep file points it at Table 1.
    liif = row_of(table4, "table4_liif")
    assert [c.paper.get("psnr") for c in liif.cells] == [34.67, 30.96, 29.00, 26.75, 22.17, 20.48]


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
    markdown = render_markdown(table4)
    assert "| LIIF w/ PE (L = 10) — FAILED | *failed* (34.59) |" in markdown
    assert "| L = 16 — MISSING | *missing* (34.72) |" in markdown
    assert "Incomplete jobs (5):" in markdown
    assert "- `table4_liif_pe` (LIIF w/ PE (L = 10)): **failed**: NonFiniteLossError" in markdown
    lines = {r["variant"]: r for r in csv.DictReader(io.StringIO(render_csv(table4)))}
    assert lines["table4_liif_pe"]["status"] == "failed"
    assert "loss is nan" in lines["table4_liif_pe"]["note"]
    assert lines["table4_ipe_liif_l16"]["status"] == "missing"
    assert lines["table4_ipe_liif_l16"]["div2k/x2/psnr"] == ""
    assert lines["table4_ipe_liif_l16"]["div2k/x2/psnr/paper"] == "34.72"
    latex = render_latex(table4)
    assert "L = 16 --- MISSING" in latex
    assert "\\textit{failed}" in latex and "\\textit{missing}" in latex


def test_our_best_value_per_column_is_bold_ties_included(table4):
    l10, l4 = row_of(table4, "table4_ipe_liif_l10"), row_of(table4, "table4_ipe_liif_l4")
    assert [bool(c.best) for c in l10.cells] == [True] * 6
    assert [bool(c.best) for c in l4.cells] == [False] * 5 + [True]  # x30: 20.50 both
    latex = render_latex(table4)
    assert "\\textbf{34.75} {\\scriptsize(34.72, $+0.03$)}" in latex
    assert "\\textbf{34.70}" not in latex
    assert render_markdown(table4).count("**20.50**") == 2


def test_csv_has_a_line_per_row_with_ours_paper_and_difference(table4):
    lines = list(csv.DictReader(io.StringIO(render_csv(table4))))
    assert [line["label"] for line in lines][:3] == [
        "Bicubic",
        "LIIF (paper: Table 1)",
        "LIIF w/ PE (L = 10)",
    ]
    assert len(lines) == 1 + 7  # bicubic + every variant of the sweep
    l10 = next(line for line in lines if line["variant"] == "table4_ipe_liif_l10")
    assert (l10["group"], l10["status"]) == ("IPE-LIIF", "finished")
    for scale, paper in zip(TABLE4_SCALES, [34.72, 31.01, 29.04, 26.79, 22.21, 20.51], strict=True):
        ours = float(l10[f"div2k/x{scale}/psnr"])
        assert float(l10[f"div2k/x{scale}/psnr/paper"]) == paper
        assert float(l10[f"div2k/x{scale}/psnr/diff"]) == pytest.approx(ours - paper)


def test_bicubic_row_holds_the_bicubic_numbers_the_jobs_measured(table4):
    bicubic = next(r for r in table4.rows if r.spec.kind == "bicubic")
    assert [c.ours["psnr"] for c in bicubic.cells] == pytest.approx(
        [30 - s / 10 for s in TABLE4_SCALES]
    )
    assert bicubic.cells[0].paper == {"psnr": 31.01}  # Table 1's bicubic row
    assert not any(c.best for c in bicubic.cells)  # bold is for the variants only


def test_latex_is_booktabs_with_grouped_columns_and_pdflatex_safe_text(table4):
    latex = render_latex(table4)
    for command in (
        "\\toprule",
        "\\midrule",
        "\\bottomrule",
        "\\cmidrule(lr){2-4}",
        "\\cmidrule(lr){5-7}",
        "\\multicolumn{3}{c}{In-distribution}",
        "\\multicolumn{3}{c}{Out-of-distribution}",
        "\\begin{tabular}{lcccccc}",
        "$\\times30$",
        "\\multicolumn{7}{l}{\\textit{IPE-LIIF}}",
    ):
        assert command in latex, command
    assert "$-$ skip" in latex  # the paper's "− skip", in ASCII LaTeX
    assert latex.isascii()


def test_psnr_ssim_tables_show_both_metrics_with_both_differences():
    layout = load_sweep("table1").layout
    results = {"table1_rdn_ipe_liif": finished({2: 34.70, 3: 31.0}, ssim=0.9700)}
    table = build_table(layout, results, PAPER)
    cell = row_of(table, "table1_rdn_ipe_liif").cells[0]  # paper: 35.04 / 0.9694
    assert cell.paper == {"psnr": 35.04, "ssim": 0.9694}
    assert "**34.70** / **0.9700** (35.04 / 0.9694, Δ -0.34 / +0.0006)" in render_markdown(table)
    paper_only = next(r for r in table.rows if r.spec.kind == "paper" and "EDSR" in r.spec.label)
    assert [c.paper.get("psnr") for c in paper_only.cells][:4] == [34.55, 30.90, 28.94, None]
    assert "EDSR-baseline (one model per scale) (paper only)" in render_markdown(table)


def test_results_of_variants_the_layout_does_not_list_are_appended():
    layout = load_sweep("table4").layout
    table = build_table(layout, {"an_extra_job": finished({2: 30.0})}, PAPER)
    extra = row_of(table, "an_extra_job")
    assert extra.status == "finished" and extra.cells[0].ours == {"psnr": 30.0}


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
            elif row.spec.kind == "paper":  # fixed-scale baselines: x2, x3, x4 per set
                assert found == count * 3 // 8 if name == "table1" else found == 12, row.spec.label
            else:
                assert found == count, (name, row.spec.label)


@pytest.mark.parametrize("scale", [2, 2.5, 3.0, 12, (2, 3), (2.5, 2.5), [1.5, 4]])
def test_scale_key_names_loaders_as_the_eval_sets_do(scale):
    from ipe_lightning.data.eval_sets import scale_tag

    assert scale_key(scale) == scale_tag(scale)


def test_default_layout_lists_every_job_and_the_columns_they_measured():
    results = {
        "b": JobResult("finished", {"folder/x3": {"psnr": 20.0}, "folder/x2": {"psnr": 25.0}}),
        "a": JobResult("failed", {}, "boom"),
    }
    layout = default_layout(["a", "b", "c"], results, title="mine")
    assert [r.variant for r in layout.rows if r.kind == "job"] == ["a", "b", "c"]
    assert [(g.set, g.scales) for g in layout.columns] == [("folder", (2, 3))]
    markdown = render_markdown(build_table(layout, results, PAPER))
    assert "| b | **25.00** | **20.00** |" in markdown
    assert "| a — FAILED | *failed* | *failed* |" in markdown
    assert "| c — MISSING |" in markdown


def test_psnr_gain_plot_shows_each_finished_variant_against_scale(table4, table4_results, tmp_path):
    curves = gain_curves(table4, table4_results)
    assert set(curves) == {"div2k"}
    assert set(curves["div2k"]) == {"IPE-LIIF: L = 4", "IPE-LIIF: L = 10 (ours, default)"}
    l10 = dict(curves["div2k"]["IPE-LIIF: L = 10 (ours, default)"])
    assert l10[2.0] == pytest.approx(34.75 - (30 - 0.2))
    plot_psnr_gain(table4, table4_results, tmp_path / "psnr_vs_scale.png")
    assert (tmp_path / "psnr_vs_scale.png").read_bytes()[:4] == b"\x89PNG"
