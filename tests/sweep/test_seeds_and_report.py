"""Seeds as jobs of their own (from the sweep file or the command line), and the report of a
sweep directory: per-image results read, seeds folded, --out and --reference honoured, a debug
run marked."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ipe_lightning.results import write_json_atomic, write_per_image
from ipe_lightning.sweep.cli import main
from ipe_lightning.sweep.definitions import SweepDefinitionError, definition_from_dict
from ipe_lightning.sweep_files import Manifest, write_manifest
from tests.sweep.test_cli import planned_overrides

GRID = {"title": "mine", "params": {"model.net.bandwidth": "4,6"}}


def test_seeds_in_the_sweep_file_make_one_job_per_row_and_seed():
    definition = definition_from_dict({**GRID, "seeds": [0, 1]}, name="mine", path=Path("m"))
    jobs = definition.jobs()
    assert [job.name for job in jobs] == [
        "bandwidth-4_seed-0",
        "bandwidth-4_seed-1",
        "bandwidth-6_seed-0",
        "bandwidth-6_seed-1",
    ]
    assert jobs[1].overrides == ("model.net.bandwidth=4", "seed=1")
    with pytest.raises(SweepDefinitionError, match="repeat"):
        definition_from_dict({**GRID, "seeds": [1, 1]}, name="mine", path=Path("m"))


def test_a_swept_seed_in_the_grid_is_the_same_as_seeds():
    swept = {"title": "mine", "params": {"seed": "0,1", "model.net.bandwidth": "4,6"}}
    definition = definition_from_dict(swept, name="mine", path=Path("m"))
    listed = definition_from_dict({**GRID, "seeds": [0, 1]}, name="mine", path=Path("m"))
    assert definition.seeds == (0, 1) and definition.jobs() == listed.jobs()
    ranged = {**GRID, "params": {**GRID["params"], "seed": "range(0,2)"}}
    assert definition_from_dict(ranged, name="mine", path=Path("m")).jobs() == listed.jobs()
    with pytest.raises(SweepDefinitionError, match="seeds: "):
        definition_from_dict({**swept, "seeds": [2]}, name="mine", path=Path("m"))


def test_the_issues_seed_grid_is_one_row_with_its_mean_and_spread(tmp_path, capsys):
    """The issue's repro: ``seed: "0,1"`` as the whole grid gave rows ``seed-0`` and ``seed-1``."""
    definition = definition_from_dict(
        {"title": "two seeds", "params": {"seed": "0,1"}}, name="two", path=Path("two.yaml")
    )
    jobs = definition.jobs()
    assert [(j.name, j.overrides) for j in jobs] == [
        ("seed-0", ("seed=0",)),
        ("seed-1", ("seed=1",)),
    ]
    sweep_dir = tmp_path / "sweep"
    listed = [{"name": j.name, "overrides": list(j.overrides)} for j in jobs]
    write_manifest(sweep_dir, Manifest("two", "", "two seeds", "", "g", listed))
    write_job(sweep_dir, "seed-0", [13.59] * 12)
    write_job(sweep_dir, "seed-1", [17.11] * 12)
    assert main(["report", str(sweep_dir)]) == 0
    clean = (sweep_dir / "table_clean.md").read_text()
    assert "| job (n = 2) | 15.35 ± 2.49 |" in clean and "seed-1" not in clean  # no rival: no bold


def test_seeds_on_the_command_line_make_each_seed_a_job(tmp_path, capsys):
    code = main(["table4", "--seeds", "0", "1", "2", "--sweep-dir", f"{tmp_path}/s", "--dry-run"])
    assert code == 0
    jobs = planned_overrides(capsys.readouterr().out)
    assert len(jobs) == 7 * 3
    assert "seed=2" in jobs["table4_ipe_liif_l10_seed-2"]
    assert "run_name=table4_ipe_liif_l10_seed-2" in jobs["table4_ipe_liif_l10_seed-2"]


def write_job(sweep_dir: Path, name: str, psnr: list[float]) -> None:
    rows = [
        {
            "set": "folder",
            "scale": "2",
            "image": f"im{i}",
            "psnr": value,
            "ssim": 0.9,
            "bicubic_psnr": 20.0,
            "bicubic_ssim": 0.8,
        }
        for i, value in enumerate(psnr)
    ]
    mean = sum(psnr) / len(psnr)
    metrics = {"folder/x2": {"psnr": mean, "ssim": 0.9, "bicubic_psnr": 20.0, "bicubic_ssim": 0.8}}
    overrides = ["debug=tiny", f"seed={name[-1]}"]
    record = {"status": "finished", "overrides": overrides, "metrics": metrics}
    write_json_atomic(sweep_dir / name / "metrics.json", record)
    write_per_image(sweep_dir / name, rows)


@pytest.fixture
def sweep_dir(tmp_path) -> Path:
    sweep_dir = tmp_path / "sweep"
    names = ["a_seed-0", "a_seed-1", "b_seed-0", "b_seed-1"]
    jobs = [{"name": n, "overrides": ["debug=tiny", f"seed={n[-1]}"]} for n in names]
    manifest = Manifest(sweep="mine", definition="", title="mine", created="", group="g", jobs=jobs)
    write_manifest(sweep_dir, manifest)
    base = [25.0, 28.0, 31.0, 27.0, 33.0, 26.0] * 2  # 12 images: enough for an interval
    for seed in (0, 1):
        write_job(sweep_dir, f"a_seed-{seed}", [v + 0.01 * seed for v in base])
        write_job(sweep_dir, f"b_seed-{seed}", [v + 0.5 + 0.01 * seed for v in base])
    return sweep_dir


def test_report_out_writes_elsewhere_and_leaves_the_sweep_dir_alone(sweep_dir, tmp_path, capsys):
    before = sorted(p.name for p in sweep_dir.iterdir())
    out = tmp_path / "elsewhere"
    assert main(["report", str(sweep_dir), "--out", str(out), "--reference", "a"]) == 0
    assert sorted(p.name for p in sweep_dir.iterdir()) == before
    assert {"table.md", "table_clean.md", "table_long.csv", "table_clean.tex"} <= {
        p.name for p in out.iterdir()
    }
    printed = capsys.readouterr().out
    assert str(out / "table.md") in printed and "all 4 jobs finished" in printed  # seeds count
    clean = (out / "table_clean.md").read_text()
    assert "| a (n = 2) (reference) | 28.34 ± 0.01 |" in clean
    assert "| b (n = 2) | **28.84** ± 0.01† |" in clean  # +0.5 dB on every image: significant
    markdown = (out / "table.md").read_text()
    assert "| b | +0.500 [+0.500, +0.500]† |" in markdown


def test_every_table_of_a_debug_sweep_says_so(sweep_dir):
    assert main(["report", str(sweep_dir)]) == 0
    for name in ("table.md", "table_clean.md", "table.tex", "table_clean.tex"):
        assert "DEBUG RUN (debug=tiny)" in (sweep_dir / name).read_text(), name
    for name in ("table.csv", "table_long.csv"):
        with open(sweep_dir / name) as handle:
            assert {row["debug"] for row in csv.DictReader(handle)} == {"tiny"}, name
    assert json.loads((sweep_dir / "sweep.json").read_text())["sweep"] == "mine"


def test_an_unknown_reference_is_a_usage_error(sweep_dir, capsys):
    assert main(["report", str(sweep_dir), "--reference", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_the_report_command_prints_the_clean_table(sweep_dir, capsys):
    assert main(["report", str(sweep_dir), "--reference", "a"]) == 0
    printed = capsys.readouterr().out
    assert "DEBUG RUN (debug=tiny)" in printed
    assert "| a (n = 2) (reference) | 28.34 ± 0.01 |" in printed
    assert "| b (n = 2) | **28.84** ± 0.01† |" in printed
