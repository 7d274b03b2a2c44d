"""Table layouts: from a sweep file, back from the manifest, or inferred from the results."""

from __future__ import annotations

import pytest

from ipe_lightning.report.paper_numbers import load_paper_numbers
from ipe_lightning.report.render import render_markdown
from ipe_lightning.report.table import build_table
from ipe_lightning.results import JobResult
from ipe_lightning.sweep.definitions import load_sweep
from ipe_lightning.table_layout import default_layout, layout_from_dict, layout_to_dict


@pytest.mark.parametrize("sweep", ["table1", "table2", "table3", "table4"])
def test_the_manifests_layout_reads_back_as_the_sweep_files(sweep):
    layout = load_sweep(sweep).layout
    assert layout_from_dict(layout_to_dict(layout)) == layout


def test_default_layout_lists_every_job_and_the_columns_they_measured():
    results = {
        "b": JobResult("finished", {"folder/x3": {"psnr": 20.0}, "folder/x2": {"psnr": 25.0}}),
        "a": JobResult("failed", {}, "boom"),
    }
    layout = default_layout(["a", "b", "c"], results, title="mine")
    assert [r.variant for r in layout.rows if r.kind == "job"] == ["a", "b", "c"]
    assert [(g.set, g.scales) for g in layout.columns] == [("folder", (2, 3))]
    markdown = render_markdown(build_table(layout, results, load_paper_numbers()))
    assert "| b | **25.00** | **20.00** |" in markdown
    assert "| a — FAILED | *failed* | *failed* |" in markdown
    assert "| c — MISSING |" in markdown


def test_default_layout_ignores_loaders_that_are_not_set_and_scale():
    results = {"a": JobResult("finished", {"folder/x2.5": {"psnr": 1.0}, "oddname": {}})}
    layout = default_layout(["a"], results)
    assert [(g.set, g.scales) for g in layout.columns] == [("folder", (2.5,))]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"metric": "lpips"}, "table.metric"),
        ({"rows": [{"kind": "job"}]}, "needs a variant"),
        ({"rows": [{"kind": "other", "label": "x"}]}, "row kind"),
    ],
)
def test_a_bad_table_section_names_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        layout_from_dict(spec)
