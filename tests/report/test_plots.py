"""``psnr_vs_scale.{png,pdf}``: one gain-over-bicubic curve per finished variant, each its own
marker and line style, error bars over seeds, the paper's curve dashed, debug runs marked."""

from __future__ import annotations

import dataclasses

import pytest

from ipe_lightning.report.plots import (
    PAPER_LABEL,
    draw_psnr_gain,
    gain_curves,
    gain_series,
    plot_psnr_gain,
    style,
)
from tests.report.made_up_results import finished


def test_psnr_gain_plot_shows_each_finished_variant_against_scale(table4, table4_results, tmp_path):
    curves = gain_curves(table4, table4_results)
    assert set(curves) == {"div2k"}
    assert set(curves["div2k"]) == {"IPE-LIIF: L = 4", "IPE-LIIF: L = 10 (ours, default)"}
    l10 = dict(curves["div2k"]["IPE-LIIF: L = 10 (ours, default)"])
    assert l10[2.0] == pytest.approx(34.75 - (30 - 0.2))
    plot_psnr_gain(table4, table4_results, tmp_path / "psnr_vs_scale.png")
    assert (tmp_path / "psnr_vs_scale.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "psnr_vs_scale.pdf").read_bytes()[:5] == b"%PDF-"


def all_seven_finished():
    values = {2: 34.7, 3: 31.0, 4: 29.0, 6: 26.8, 18: 22.2, 30: 20.5}
    names = [
        "table4_liif",
        "table4_liif_pe",
        "table4_ipe_liif_l4",
        "table4_ipe_liif_l10",
        "table4_ipe_liif_l16",
        "table4_ipe_liif_cell",
        "table4_ipe_liif_noskip",
    ]
    return {name: finished(values) for name in names}  # identical curves: they overlap exactly


def test_every_variant_has_its_own_marker_and_line_style(table4):
    assert len({(style(i)["marker"], str(style(i)["linestyle"])) for i in range(60)}) == 60
    figure = draw_psnr_gain(table4, all_seven_finished())
    ours = [container.lines[0] for container in figure.axes[0].containers]
    assert len(ours) == 7
    assert len({line.get_marker() for line in ours}) == 7
    assert len({str(style(i)["linestyle"]) for i in range(5)}) == 5


def test_seeds_give_the_mean_and_error_bars(table4):
    seeds = [finished({2: 34.0}), finished({2: 34.2}), finished({2: 34.4})]
    results = {"table4_ipe_liif_l10": seeds}
    (series,) = gain_series(table4, results)["div2k"]
    ((scale, mean, std, n),) = series.points
    gains = [34.0 - 29.8, 34.2 - 29.8, 34.4 - 29.8]
    assert (scale, n) == (2.0, 3)
    assert mean == pytest.approx(sum(gains) / 3)
    assert std == pytest.approx(0.2)  # sample standard deviation
    figure = draw_psnr_gain(table4, results)
    axis = figure.axes[0]
    assert axis.collections, "error bars are drawn"
    assert any("n = 3 seeds" in text.get_text() for text in axis.get_legend().get_texts())


def test_the_papers_curve_is_dashed_where_the_paper_has_the_row(table4, table4_results):
    series = {s.label: s for s in gain_series(table4, table4_results)["div2k"]}
    l10 = dict(series["IPE-LIIF: L = 10 (ours, default)"].paper)
    assert l10[2.0] == pytest.approx(34.72 - 31.01)  # Table 4 L = 10 minus Table 1 bicubic
    assert l10[30.0] == pytest.approx(20.51 - 19.43)
    figure = draw_psnr_gain(table4, table4_results)
    paper = [line for line in figure.axes[0].get_lines() if line.get_label() == PAPER_LABEL]
    assert len(paper) == 2 and all(line.get_linestyle() == ":" for line in paper)
    texts = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert texts.count(PAPER_LABEL) == 1 and texts[-1] == PAPER_LABEL  # one entry, last


def test_a_debug_run_says_so_on_the_plot(table4, table4_results):
    texts = [t.get_text() for t in draw_psnr_gain(table4, table4_results, debug="tiny").texts]
    assert any("DEBUG RUN (debug=tiny)" in text for text in texts)
    assert not any("DEBUG" in t.get_text() for t in draw_psnr_gain(table4, table4_results).texts)


def test_unfinished_seeds_are_left_out(table4):
    failed = dataclasses.replace(finished({2: 10.0}), status="failed")
    (series,) = gain_series(table4, {"table4_liif": [finished({2: 34.0}), failed]})["div2k"]
    assert series.points[0][3] == 1


def seven_with_seeds():
    """Every Table 4 row with two seeds of the same results: curves and bars coincide."""
    return {name: [result, result] for name, result in all_seven_finished().items()}


def test_the_legend_sits_right_of_the_panels_not_over_the_curves(table4):
    figure = draw_psnr_gain(table4, seven_with_seeds(), debug="tiny")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    (legend,) = [axis.get_legend() for axis in figure.axes if axis.get_legend()]
    assert len(legend.get_texts()) == 8  # our 7 curves and one for all the paper's
    box = legend.get_window_extent(renderer)
    assert not any(box.overlaps(axis.get_window_extent(renderer)) for axis in figure.axes)
    assert figure.bbox.x0 <= box.x0 and box.x1 <= figure.bbox.x1, "the legend is not cut off"


def test_the_papers_curves_share_one_style_in_their_variants_colour(table4):
    """Seven paper curves in one band: one style for all (dotted, thinner, a dash for a marker)
    so that ours stand out, each in its variant's colour, one legend entry for all."""
    axis = draw_psnr_gain(table4, seven_with_seeds()).axes[0]
    ours = {c.lines[0].get_color(): c.lines[0] for c in axis.containers}
    paper = [line for line in axis.get_lines() if line.get_label() == PAPER_LABEL]
    assert len(paper) == 7 and len(ours) == 7
    assert {line.get_color() for line in paper} == set(ours)
    assert {(line.get_linestyle(), line.get_marker()) for line in paper} == {(":", "_")}
    assert all(line.get_linewidth() < ours[line.get_color()].get_linewidth() for line in paper)


def test_a_label_that_names_its_group_is_not_prefixed_with_it_again():
    from ipe_lightning.report.plots import _series_label

    assert _series_label("EDSR-baseline", "EDSR-baseline-MetaSR") == "EDSR-baseline-MetaSR"
    assert _series_label("IPE-LIIF", "L = 4") == "IPE-LIIF: L = 4"
    assert _series_label("", "LIIF") == "LIIF"


def test_equal_curves_stay_apart_with_small_caps_on_their_error_bars(table4):
    axis = draw_psnr_gain(table4, seven_with_seeds()).axes[0]
    drawn_at = [container.lines[0].get_xdata() for container in axis.containers]  # x2, x3, x4...
    at_x3, at_x4 = [x[1] for x in drawn_at], [x[2] for x in drawn_at]
    assert len(set(at_x3)) == 7, "seven equal gains at x3 drawn side by side, not on one point"
    assert max(at_x3) < 4 * 0.9 and min(at_x4) > 3 * 1.1, "x3 and x4 stay apart on the axis"
    caps = [cap for container in axis.containers for cap in container.lines[1]]
    assert caps and all(cap.get_markersize() <= 3 for cap in caps)
