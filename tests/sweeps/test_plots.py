"""``psnr_vs_scale.png``: one gain-over-bicubic curve per finished variant."""

from __future__ import annotations

import pytest

from ipe_lightning.sweeps.plots import gain_curves, plot_psnr_gain


def test_psnr_gain_plot_shows_each_finished_variant_against_scale(table4, table4_results, tmp_path):
    curves = gain_curves(table4, table4_results)
    assert set(curves) == {"div2k"}
    assert set(curves["div2k"]) == {"IPE-LIIF: L = 4", "IPE-LIIF: L = 10 (ours, default)"}
    l10 = dict(curves["div2k"]["IPE-LIIF: L = 10 (ours, default)"])
    assert l10[2.0] == pytest.approx(34.75 - (30 - 0.2))
    plot_psnr_gain(table4, table4_results, tmp_path / "psnr_vs_scale.png")
    assert (tmp_path / "psnr_vs_scale.png").read_bytes()[:4] == b"\x89PNG"
