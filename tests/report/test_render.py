"""The table as markdown, CSV and LaTeX: every cell, status and mark in each format."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess

import pytest

from ipe_lightning.report.paper_numbers import load_paper_numbers
from ipe_lightning.report.render import render_latex, render_markdown
from ipe_lightning.report.render_csv import render_csv
from ipe_lightning.report.table import build_table
from ipe_lightning.sweep.definitions import load_sweep
from tests.report.made_up_results import TABLE4_SCALES, finished

PAPER = load_paper_numbers()


def test_markdown_cells_show_ours_the_papers_number_and_the_difference(table4):
    markdown = render_markdown(table4)
    assert "| L = 10 (ours, default) | **34.75** (34.72, Δ +0.03) |" in markdown
    assert "30.90 (31.00, Δ -0.10)" in markdown  # L=4 at x3: below the paper


def test_failed_interrupted_and_missing_jobs_are_shown_in_every_format(table4):
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
    assert "L = 16 & \\multicolumn{6}{c}{\\textit{missing}} \\\\" in latex  # said once
    assert "\\multicolumn{6}{c}{\\textit{failed}}" in latex


def test_our_best_value_per_column_is_bold_ties_included(table4):
    latex = render_latex(table4)
    assert "\\textbf{34.75} & " in latex
    assert "\\quad{\\scriptsize paper} & {\\scriptsize 34.72} & " in latex  # the paper's, under it
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
        "\\begin{tabular}{@{}lcccccc@{}}",
        "$\\times30$",
        "\\multicolumn{7}{@{}l}{\\textit{IPE-LIIF}}",
    ):
        assert command in latex, command
    assert "$-$ skip" in latex  # the paper's "− skip", in ASCII LaTeX
    assert latex.isascii()


def test_psnr_ssim_tables_show_both_metrics_with_both_differences():
    layout = load_sweep("table1").layout
    results = {"table1_rdn_ipe_liif": finished({2: 34.70, 3: 31.0}, ssim=0.9700)}
    markdown = render_markdown(build_table(layout, results, PAPER))
    assert "**34.70** / **0.9700** (35.04 / 0.9694, Δ -0.34 / +0.0006)" in markdown
    x2_only = "| EDSR-baseline ×2 (one model per scale) — MISSING | *missing* (34.55 / 0.9671) |"
    assert x2_only + " *missing* |" in markdown  # the paper's number at x2 only


def test_per_axis_scales_are_labelled_per_axis():
    from ipe_lightning.results import JobResult
    from ipe_lightning.table_layout import default_layout

    results = {
        "a": JobResult("finished", {"div2k/x2": {"psnr": 30.0}, "div2k/x2x3": {"psnr": 28.0}})
    }
    markdown = render_markdown(build_table(default_layout(["a"], results), results))
    assert "| Method | div2k ×2 | ×2×3 |" in markdown


def test_latex_says_what_it_needs_has_a_label_and_no_doubled_table_number(table4):
    latex = render_latex(table4)
    assert "\\usepackage{booktabs}" in latex
    assert "\\label{tab:table4}" in latex
    caption = next(line for line in latex.splitlines() if line.startswith("\\caption{"))
    assert caption.startswith("\\caption{ablation (EDSR-baseline") and "Table 4" not in caption


def test_latex_keeps_the_text_size_of_a_paper_and_a_caption_of_one_line(table4):
    """No \\resizebox (which shrank the text to ~5 pt): a paper's \\small, and the legend in
    notes under the table instead of a caption of 7-8 lines."""
    latex = render_latex(table4)
    assert "resizebox" not in latex and "\\small" in latex
    (caption,) = [line for line in latex.splitlines() if line.startswith("\\caption{")]
    assert len(caption) < 100
    assert "Bold: our best per column" in latex.split("\\end{tabular}")[-1]  # in the notes


def test_a_wide_table_is_stacked_in_tabulars_that_fit_a_page():
    """Table 2 (four benchmarks in and out of distribution, PSNR / SSIM: 20 columns) becomes one
    tabular per benchmark, in- and out-of-distribution side by side."""
    from ipe_lightning.report.render import PANEL_COLUMNS, latex_panels

    layout = load_sweep("table2").layout
    results = {"table2_rdn_liif": finished({2: 30.0})}
    table = build_table(layout, results, PAPER)
    panels = latex_panels(table)
    assert [[group.set for group in panel] for panel in panels] == [
        [name, name] for name in ("set5", "set14", "b100", "urban100")
    ]
    latex = render_latex(table)
    assert latex.count("\\begin{tabular}") == 4 and latex.count("\\begin{table*}") == 1
    specs = re.findall(r"\\begin\{tabular\}\{@\{\}(l c*)@\{\}\}".replace(" ", ""), latex)
    assert specs == ["lccccc"] * 4 and PANEL_COLUMNS[2] >= 5  # label + 5 columns each
    assert "\\scriptsize" in latex


LATEX_DOCUMENT = (
    "\\documentclass{article}\n\\usepackage{booktabs}\n"
    "\\begin{document}\n\\input{%s}\n\\input{%s}\nSee Table~\\ref{tab:table4}.\n\\end{document}\n"
)


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("pdflatex"), reason="pdflatex is not installed")
def test_both_latex_tables_compile_with_pdflatex_as_the_readme_says(table4, tmp_path):
    (tmp_path / "table.tex").write_text(render_latex(table4))
    (tmp_path / "table_clean.tex").write_text(render_latex(table4, "clean"))
    (tmp_path / "main.tex").write_text(LATEX_DOCUMENT % ("table.tex", "table_clean.tex"))
    for _ in range(2):  # the second pass resolves \ref
        result = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "main.pdf").stat().st_size > 0
    log = (tmp_path / "main.log").read_text(errors="replace")
    assert "undefined" not in log.lower()
