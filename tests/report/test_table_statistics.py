"""Seeds folded into rows (mean ± std, n), ΔPSNR intervals against the reference row, bold only
when best by more than the noise, the clean and tidy outputs, debug runs marked everywhere."""

from __future__ import annotations

import csv
import dataclasses
import io
import shutil
import subprocess

import numpy as np
import pytest

from ipe_lightning.report.render import render_latex, render_markdown
from ipe_lightning.report.render_csv import render_csv, render_long_csv
from ipe_lightning.report.table import build_table
from ipe_lightning.results import JobResult
from ipe_lightning.sweep_files import split_seed
from ipe_lightning.table_layout import layout_from_dict

IMAGES = [f"{i:04d}" for i in range(30)]
LAYOUT = layout_from_dict(
    {
        "title": "Table 9: made up",
        "metric": "psnr",
        "reference": "base",
        "columns": [{"label": "DIV2K", "set": "div2k", "scales": [2]}],
        "rows": [
            {"label": "Bicubic", "kind": "bicubic"},
            {"label": "Base", "variant": "base"},
            {"label": "Better", "variant": "better"},
            {"label": "Same", "variant": "same"},
        ],
    }
)


def image_psnr(shift: float, seed: int, variant: int = 0) -> np.ndarray:
    """Per-image PSNR: images differ by several dB; each job adds its own 0.002 dB noise."""
    spread = 25 + 6 * np.random.default_rng(0).random(len(IMAGES))
    noise = np.random.default_rng([variant, seed]).normal(0, 0.002, len(IMAGES))
    return spread + shift + noise


def job(values: np.ndarray) -> tuple[JobResult, list[dict]]:
    rows = [
        {"set": "div2k", "scale": "2", "image": name, "psnr": float(v), "ssim": 0.9}
        for name, v in zip(IMAGES, values, strict=True)
    ]
    metrics = {"div2k/x2": {"psnr": float(np.mean(values)), "bicubic_psnr": 24.0}}
    return JobResult("finished", metrics), rows


def seeded_sweep(shifts: dict[str, float], seeds=(0, 1, 2)):
    results, per_image = {}, {}
    for index, (variant, shift) in enumerate(shifts.items()):
        for seed in seeds:
            name = f"{variant}_seed-{seed}"
            results[name], per_image[name] = job(image_psnr(shift, seed, index))
    return results, per_image


@pytest.fixture(scope="module")
def table():
    results, per_image = seeded_sweep({"base": 0.0, "better": 0.05, "same": 0.0})
    return build_table(LAYOUT, results, (), per_image=per_image)


def row(table, variant):
    (found,) = [r for r in table.rows if r.spec.variant == variant]
    return found


def test_seeded_jobs_are_one_row_with_mean_std_and_n(table):
    assert split_seed("better_seed-2") == ("better", 2) and split_seed("better") == ("better", None)
    assert split_seed("seed-2") == ("job", 2)  # a grid of seeds only: its one job, "job"
    assert [r.spec.label for r in table.rows] == ["Bicubic", "Base", "Better", "Same"]
    better = row(table, "better")
    assert better.seeds == (0, 1, 2) and better.cells[0].n == 3
    means = [image_psnr(0.05, seed, 1).mean() for seed in (0, 1, 2)]
    assert better.cells[0].ours["psnr"] == pytest.approx(np.mean(means))
    assert better.cells[0].std["psnr"] == pytest.approx(np.std(means, ddof=1))


def test_each_row_has_its_delta_psnr_interval_against_the_reference(table):
    assert row(table, "base").is_reference and row(table, "base").cells[0].delta is None
    better, same = row(table, "better").cells[0], row(table, "same").cells[0]
    assert better.delta.mean == pytest.approx(0.05, abs=0.002)
    assert better.delta.low > 0.04 and better.significant
    assert same.delta.low < 0 < same.delta.high and not same.significant


def test_best_is_bold_only_when_it_wins_by_more_than_the_noise(table):
    assert table.best_rule == "noise"
    assert row(table, "better").cells[0].best == {"psnr"}
    assert not row(table, "base").cells[0].best and not row(table, "same").cells[0].best
    # Two rows within the noise of each other: nobody wins.
    results, per_image = seeded_sweep({"base": 0.0, "same": 0.0})
    tie = build_table(LAYOUT, results, (), per_image=per_image)
    assert not any(c.best for r in tie.rows for c in r.cells)
    lines = render_markdown(tie, "clean").splitlines()
    assert not [line for line in lines if line.startswith(("| Base", "| Same")) and "**" in line]
    assert "excludes 0" in render_markdown(tie)  # the rule is in the legend


def test_the_reference_can_be_chosen_per_report(table):
    results, per_image = seeded_sweep({"base": 0.0, "better": 0.05, "same": 0.0})
    other = build_table(LAYOUT, results, (), per_image=per_image, reference="better")
    assert row(other, "base").cells[0].delta.mean == pytest.approx(-0.05, abs=0.002)
    with pytest.raises(ValueError, match="not a variant"):
        build_table(LAYOUT, results, (), per_image=per_image, reference="nope")


def test_clean_mode_shows_only_our_numbers_with_std_n_and_marks(table):
    markdown = render_markdown(table, "clean")
    better = row(table, "better").cells[0]
    expected = f"**{better.ours['psnr']:.2f}** ± {better.std['psnr']:.2f}†"
    assert f"| Better (n = 3) | {expected} |" in markdown
    assert "| Base (n = 3) (reference) |" in markdown
    assert "Δ" not in markdown.split("\n\n", 2)[2]  # no paper comparison in the cells
    latex = render_latex(table, "clean")
    assert "\\textbf{" in latex and "$\\pm$" in latex and "$^{\\dagger}$" in latex
    assert latex.isascii() and "\\label{tab:table-9-made-up-clean}" in latex


def test_paper_mode_lists_the_intervals_against_the_reference(table):
    markdown = render_markdown(table)
    assert "ΔPSNR (dB) against Base" in markdown
    delta = row(table, "better").cells[0].delta
    assert f"| Better | {delta.mean:+.3f} [{delta.low:+.3f}, {delta.high:+.3f}]† |" in markdown


def legend(markdown: str) -> str:
    return next(line for line in markdown.splitlines() if line.startswith("Each cell"))


def test_the_paper_table_says_its_cells_are_means_over_the_seeds(table):
    assert "Ours: mean over n = 3 seeds (± std in table_clean.md)." in legend(
        render_markdown(table)
    )
    assert "mean over n = 3 seeds ($\\pm$ std in table\\_clean.tex)" in render_latex(table)
    results, per_image = seeded_sweep({"base": 0.0, "better": 0.05}, seeds=(0,))
    one_seed = render_markdown(build_table(LAYOUT, results, (), per_image=per_image))
    assert "mean over" not in legend(one_seed)


def few_images_table(images: int, layout=LAYOUT):
    """Better than the base by 0.5 ± 0.1 dB on each of ``images`` images (one seed)."""
    noise = np.random.default_rng(images).normal(0, 0.1, images)
    spread = 25 + 6 * np.random.default_rng(0).random(images)
    results, per_image = {}, {}
    for variant, values in (("base", spread), ("better", spread + 0.5 + noise)):
        results[variant], rows = job(np.resize(values, len(IMAGES)))
        per_image[variant] = rows[:images]
    return build_table(layout, results, (), per_image=per_image)


def test_fewer_than_ten_paired_images_give_no_mark_and_say_the_interval_means_nothing():
    table = few_images_table(9)
    better = row(table, "better").cells[0]
    assert better.delta.excludes_zero and better.delta.images == 9  # yet no claim made:
    assert not better.significant and not better.best
    markdown = render_markdown(table)
    intervals = markdown.split("#### ΔPSNR")[1]
    assert f"| Better | {better.delta.mean:+.3f} (9 images: no CI) |" in intervals
    assert "div2k: 9 paired images, fewer than 10: its intervals are not meaningful" in intervals
    (clean,) = [line for line in render_markdown(table, "clean").splitlines() if "| Better" in line]
    assert clean == "| Better | 28.42 |"  # no mark, no bold
    # Without a reference row the bold rule still rests on the images, and the legend says so.
    unreferenced = few_images_table(9, dataclasses.replace(LAYOUT, reference=None))
    assert not row(unreferenced, "better").cells[0].best
    assert "No † and no bold in div2k (9 images)" in legend(render_markdown(unreferenced))


def test_ten_paired_images_are_enough_for_a_mark():
    table = few_images_table(10)
    better = row(table, "better").cells[0]
    assert better.delta.images == 10 and better.significant and better.best == {"psnr"}
    d = better.delta
    assert f"| Better | {d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}]† |" in render_markdown(table)
    assert "not meaningful" not in render_markdown(table)


def test_the_long_csv_has_a_line_per_job_set_scale_and_seed(table):
    lines = list(csv.DictReader(io.StringIO(render_long_csv(table))))
    jobs = [(line["variant"], line["seed"]) for line in lines]
    assert jobs == [(v, str(s)) for v in ("base", "better", "same") for s in (0, 1, 2)]
    assert {(line["set"], line["scale"]) for line in lines} == {("div2k", "2")}
    first = lines[0]
    assert float(first["psnr"]) == pytest.approx(image_psnr(0.0, 0).mean(), abs=1e-6)
    wide = {r["variant"]: r for r in csv.DictReader(io.StringIO(render_csv(table)))}
    assert wide["better"]["div2k/x2/n"] == "3" and float(wide["better"]["div2k/x2/dpsnr_low"]) > 0
    assert wide["base"]["reference"] == "yes"


def test_a_debug_run_says_so_in_every_format():
    results, per_image = seeded_sweep({"base": 0.0}, seeds=(0,))
    table = build_table(LAYOUT, results, (), per_image=per_image, debug="tiny")
    for text in (render_markdown(table), render_markdown(table, "clean"), render_latex(table)):
        assert "DEBUG RUN (debug=tiny)" in text and "meaningless" in text
    assert {line["debug"] for line in csv.DictReader(io.StringIO(render_long_csv(table)))} == {
        "tiny"
    }
    assert csv.DictReader(io.StringIO(render_csv(table))).__next__()["debug"] == "tiny"
    real = build_table(LAYOUT, results, (), per_image=per_image)
    assert "DEBUG" not in render_markdown(real) + render_latex(real)


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("pdflatex"), reason="pdflatex is not installed")
def test_the_clean_latex_of_a_seeded_debug_table_compiles(tmp_path):
    results, per_image = seeded_sweep({"base": 0.0, "better": 0.05, "same": 0.0})
    table = build_table(LAYOUT, results, (), per_image=per_image, debug="tiny")
    (tmp_path / "t.tex").write_text(render_latex(table, "clean"))
    (tmp_path / "p.tex").write_text(render_latex(table))
    (tmp_path / "main.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
        "\\begin{document}\n\\input{t.tex}\n\\input{p.tex}\n\\end{document}\n"
    )
    result = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    if shutil.which("pdftotext"):  # poppler-utils present: what the reader sees
        text = subprocess.run(["pdftotext", "main.pdf", "-"], cwd=tmp_path, capture_output=True)
        assert "n > 1" in text.stdout.decode() and "¿" not in text.stdout.decode()
