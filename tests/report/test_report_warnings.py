"""A report never lets a result pass for more than it is: skipped test files, per-image files that
disagree with their record, intervals on too few images, records that cannot be read."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import numpy as np
import pytest

from ipe_lightning.report.command import sweep_file_layout
from ipe_lightning.report.files import write_report
from ipe_lightning.report.render import render_latex, render_markdown
from ipe_lightning.report.render_csv import render_csv
from ipe_lightning.results import write_record
from ipe_lightning.sweep_files import REPO_CONF_DIR
from tests.report.made_up_results import table4_results

REFERENCE, OTHER = "table4_ipe_liif_l10", "table4_ipe_liif_l4"


def per_image_rows(result, images: int, seed: int) -> list[dict]:
    """``images`` rows per loader of ``result`` whose mean is the recorded PSNR exactly."""
    rng = np.random.default_rng(seed)
    rows = []
    for loader, values in result.metrics.items():
        set_name, _, tag = loader.rpartition("/")
        spread = rng.normal(0, 0.5, images)
        spread -= spread.mean()
        for index, offset in enumerate(spread):
            psnr = values["psnr"] + offset
            rows.append({"set": set_name, "scale": tag[1:], "image": f"{index:04d}", "psnr": psnr})
    return rows


def a_report(tmp_path, results, per_image):
    layout, _ = sweep_file_layout("table4", REPO_CONF_DIR)
    return write_report(tmp_path, layout, results, [], per_image=per_image)


def csv_line(text: str, variant: str) -> dict:
    return next(line for line in csv.DictReader(io.StringIO(text)) if line["variant"] == variant)


def test_a_result_over_99_of_100_images_says_so_in_every_format(tmp_path):
    results = table4_results()
    skipped = {"div2k": {"/data/DIV2K_valid_HR/0842.png": "OSError: image file is truncated"}}
    images = {loader: 99 for loader in results[OTHER].metrics}
    results[OTHER] = replace(results[OTHER], images=images, skipped=skipped)
    results[REFERENCE] = replace(results[REFERENCE], images={k: 100 for k in images})
    table = a_report(tmp_path, results, {})
    markdown = (tmp_path / "table.md").read_text()
    l4_line = next(line for line in markdown.splitlines() if line.startswith("| L = 4"))
    assert l4_line.count("‡") == 6  # every column of the row
    assert "‡" not in next(line for line in markdown.splitlines() if "(ours, default)" in line)
    assert (
        "‡ table4_ipe_liif_l4, div2k ×2, ×3, ×4, ×6, ×18, ×30: 99 of 100 images; skipped as "
        "unreadable (data.skip_bad=true): /data/DIV2K_valid_HR/0842.png: OSError: image file is "
        "truncated." in markdown
    )
    assert "99 of 100 images" in render_markdown(table, "clean")  # what the console prints
    assert "99 of 100 images" in csv_line(render_csv(table), OTHER)["div2k/x2/warning"]
    latex = render_latex(table)
    assert "$^{\\ddagger}$" in latex and "99 of 100 images" in latex


@pytest.mark.parametrize("damage", ["nan", "missing image"])
def test_a_per_image_file_that_disagrees_with_its_record_is_marked_and_left_out(tmp_path, damage):
    results = table4_results()
    for name in (REFERENCE, OTHER):  # as a record says how many images each loader measured
        results[name] = replace(results[name], images={k: 12 for k in results[name].metrics})
    per_image = {
        name: per_image_rows(results[name], 12, seed) for name, seed in ((REFERENCE, 0), (OTHER, 1))
    }
    damaged = [row for row in per_image[OTHER] if row["scale"] == "3"]
    if damage == "nan":
        damaged[4]["psnr"] = float("nan")
    else:
        per_image[OTHER].remove(damaged[4])
    table = a_report(tmp_path, results, per_image)
    l4 = next(row for row in table.rows if row.spec.variant == OTHER)
    columns = [loader for _, _, loader in table.columns]
    assert l4.cells[columns.index("div2k/x3")].delta is None  # no interval on what disagrees
    assert l4.cells[columns.index("div2k/x2")].delta.images == 12  # the rest stands
    markdown = (tmp_path / "table.md").read_text()
    assert "§ table4_ipe_liif_l4, div2k/x3: per_image.csv disagrees with metrics.json" in markdown
    l4_line = next(line for line in markdown.splitlines() if line.startswith("| L = 4"))
    assert l4_line.count("§") == 1
    warning = csv_line((tmp_path / "table.csv").read_text(), OTHER)["div2k/x3/warning"]
    assert "per_image.csv disagrees" in warning


def test_consistent_per_image_files_give_intervals_and_no_marks(tmp_path):
    results = table4_results()
    per_image = {
        name: per_image_rows(results[name], 12, seed) for name, seed in ((REFERENCE, 0), (OTHER, 1))
    }
    table = a_report(tmp_path, results, per_image)
    l4 = next(row for row in table.rows if row.spec.variant == OTHER)
    assert all(cell.delta is not None and cell.delta.images == 12 for cell in l4.cells)
    markdown = (tmp_path / "table.md").read_text()
    assert "§" not in markdown and "‡" not in markdown


def test_the_csv_has_no_interval_where_the_markdown_says_too_few_images(tmp_path):
    results = table4_results()
    per_image = {
        name: per_image_rows(results[name], 3, seed) for name, seed in ((REFERENCE, 0), (OTHER, 1))
    }
    table = a_report(tmp_path, results, per_image)
    assert table.too_few_images == {"div2k": 3}
    line = csv_line((tmp_path / "table.csv").read_text(), OTHER)
    assert line["div2k/x2/dpsnr"] != ""  # the mean difference is a fact ...
    assert line["div2k/x2/dpsnr_low"] == line["div2k/x2/dpsnr_high"] == ""  # ... its CI is not
    enough = {
        name: per_image_rows(results[name], 12, seed) for name, seed in ((REFERENCE, 0), (OTHER, 1))
    }
    a_report(tmp_path, results, enough)
    line = csv_line((tmp_path / "table.csv").read_text(), OTHER)
    assert float(line["div2k/x2/dpsnr_low"]) <= float(line["div2k/x2/dpsnr_high"])


def test_a_half_written_record_is_reported_unreadable_with_why_not_interrupted(tmp_path):
    from ipe_lightning.sweep_files import job_result

    job = tmp_path / "job"
    (job / "checkpoints").mkdir(parents=True)
    (job / "checkpoints" / "last.ckpt").write_bytes(b"weights")  # what a killed job leaves
    write_record(job, {"status": "finished", "metrics": {"div2k/x2": {"psnr": 34.0}}})
    text = (job / "metrics.json").read_text()
    (job / "metrics.json").write_text(text[: len(text) // 2])  # a full disk cut it short
    result = job_result(job)
    assert result.status == "unreadable"
    assert "metrics.json: not JSON" in result.note
    json.loads(text)  # the whole file was a record
