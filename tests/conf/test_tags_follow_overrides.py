"""A job's tags say what it runs: an override of a row's ablation shows in them, and no tag
names a row whose setting the command line changed."""

from __future__ import annotations

from tests.support.runs import compose_config


def test_a_table4_row_with_another_bandwidth_is_tagged_by_what_it_runs():
    cfg = compose_config(["experiment=table4_ipe_liif_l10", "model.net.encoding.bandwidth=4"])
    tags = list(cfg.tags)
    assert "bandwidth=4" in tags
    assert not any("l10" in tag or "bandwidth=10" in tag for tag in tags), tags


def test_table4_rows_differ_in_their_tags_by_their_ablation():
    rows = {
        "table4_ipe_liif_l16": "bandwidth=16",
        "table4_ipe_liif_cell": "encoding=ipe_cell",
        "table4_ipe_liif_noskip": "mlp=plain",
        "table4_liif": "bandwidth=none",
    }
    for row, tag in rows.items():
        assert tag in compose_config([f"experiment={row}"]).tags, row
