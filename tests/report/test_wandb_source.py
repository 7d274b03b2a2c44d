"""``sweep.py report --wandb``: the same table from W&B's API (a fake one: no server here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ipe_lightning.report.command import report_from_wandb
from ipe_lightning.results import write_per_image
from ipe_lightning.sweep.cli import main

GROUP = "table4_2024-05-01_12-00-00"


@dataclass
class FakeRun:
    name: str
    state: str
    created_at: str
    summary_metrics: dict[str, Any] = field(default_factory=dict)
    id: str = "run"
    job_type: str = "train"
    config: dict[str, Any] = field(default_factory=dict)  # what wandb.Api() runs' .config give
    files: dict[str, str] = field(default_factory=dict)  # the run's files: path → text

    def file(self, name: str) -> FakeFile:
        """``wandb.apis.public.Run.file``: a file of the run, to download."""
        return FakeFile(name, self.files[name])


@dataclass
class FakeFile:
    name: str
    text: str

    def download(self, root: str = ".", replace: bool = False, exist_ok: bool = False):
        """As ``wandb.apis.public.File.download``: written under ``root``, returned open."""
        path = Path(root) / self.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text)
        return open(path)


def summary(psnr_x2: float) -> dict[str, Any]:
    values = {"trainer/global_step": 6, "examples/div2k/x2": {"_type": "images/separated"}}
    for scale, offset in [(2, 0.0), (3, -3.7), (4, -5.7), (6, -8.0), (18, -12.5), (30, -14.2)]:
        values[f"test/div2k/x{scale}/psnr"] = psnr_x2 + offset
        values[f"test/div2k/x{scale}/bicubic_psnr"] = 31.0 + offset
        values[f"test/div2k/x{scale}/ssim"] = 0.9
    return values


class FakeApi:
    """What ``wandb.Api()`` offers the report: ``runs(path, filters=...)``."""

    def __init__(self, runs: list[FakeRun]) -> None:
        self._runs = runs
        self.calls: list[tuple[str, dict]] = []

    def runs(self, path: str, filters: dict | None = None) -> list[FakeRun]:
        self.calls.append((path, filters or {}))
        return [run for run in self._runs if (filters or {}).get("group") == GROUP]


def test_the_wandb_report_rebuilds_the_table_from_the_groups_runs(tmp_path):
    api = FakeApi(
        [
            # Requeued: the first run crashed, the resumed one finished. The latest finished wins.
            FakeRun("table4_ipe_liif_l10", "crashed", "2024-05-01T12:00", {}, "a"),
            FakeRun("table4_ipe_liif_l10", "finished", "2024-05-02T08:00", summary(34.80), "b"),
            FakeRun("table4_ipe_liif_l4", "finished", "2024-05-01T12:01", summary(34.60), "c"),
            # Our jobs call wandb.finish() also when they fail: finished without test metrics.
            FakeRun("table4_liif_pe", "finished", "2024-05-01T12:02", {"trainer/global_step": 3}),
            FakeRun("table4_liif", "running", "2024-05-01T12:03", {"trainer/global_step": 1}),
        ]
    )
    table, out = report_from_wandb(api, "me/ipe-lightning", GROUP, out=str(tmp_path))
    assert api.calls == [("me/ipe-lightning", {"group": GROUP})]
    assert out == tmp_path
    status = {r.spec.variant: r.status for r in table.rows if r.spec.kind == "job"}
    assert status == {
        "table4_liif": "running",
        "table4_liif_pe": "failed",
        "table4_ipe_liif_l4": "finished",
        "table4_ipe_liif_l10": "finished",
        "table4_ipe_liif_l16": "missing",  # the sweep (from the group's name) expects it
        "table4_ipe_liif_cell": "missing",
        "table4_ipe_liif_noskip": "missing",
    }
    markdown = (tmp_path / "table.md").read_text()
    assert "### Table 4: ablation" in markdown  # the layout of conf/sweep/table4.yaml
    assert "| L = 10 (ours, default) | **34.80** (34.72, Δ +0.08) |" in markdown
    assert "| Bicubic | 31.00 (31.01, Δ -0.01) |" in markdown
    failed = "`table4_liif_pe` (LIIF w/ PE (L = 10)): **failed**: W&B run run (finished)"
    assert f"{failed}: no test metrics" in markdown
    assert (tmp_path / "table.tex").is_file() and (tmp_path / "psnr_vs_scale.png").is_file()


def test_what_a_job_hands_wandb_is_what_the_report_reads_and_eval_runs_are_left_out(tmp_path):
    from types import SimpleNamespace

    from ipe_lightning.report.wandb_source import group_from_wandb
    from ipe_lightning.runtime.loggers import summarise_test

    record = {
        "run_name": "table4_liif",
        "metrics": {"div2k/x2": {"psnr": 34.5, "bicubic_psnr": 31.0}},
    }
    # The test metrics as Lightning logs them, then our summary on top.
    logged = {"test/div2k/x2/psnr": 34.5, "test/div2k/x2/bicubic_psnr": 31.0, "val/psnr": 30.2}
    run = SimpleNamespace(summary=dict(logged), log=lambda values: None, log_artifact=None)
    summarise_test(run, record, tmp_path)
    assert run.summary["test/div2k/x2/gain_over_bicubic"] == pytest.approx(3.5)
    api = FakeApi(
        [
            FakeRun("table4_liif", "finished", "2024-05-01T12:00", run.summary, "train"),
            # mode=test of the same checkpoint on other sets, later: not the job's result
            FakeRun(
                "table4_liif",
                "finished",
                "2024-05-03T09:00",
                {"test/set5/x2/psnr": 38.0, "test/set5/x2/bicubic_psnr": 33.7},
                "eval",
                job_type="eval",
            ),
        ]
    )
    found = group_from_wandb(api, "me/ipe-lightning", GROUP).results
    assert found["table4_liif"].metrics == {"div2k/x2": {"psnr": 34.5, "bicubic_psnr": 31.0}}
    assert "W&B run train" in found["table4_liif"].note


def debug_config(choice: str | None) -> dict[str, Any]:
    """A run's config as ``tasks.build_trainer`` logs it (``{"config": <resolved config>}``): the
    ``debug=`` choice is in it only as the example panels' ``debug`` (conf/callbacks)."""
    return {"config": {"seed": 0, "callbacks": {"examples": {"debug": choice}}}}


def test_a_wandb_report_of_a_debug_sweep_says_so_in_every_table(tmp_path):
    runs = [
        FakeRun(
            "table4_ipe_liif_l10", "finished", "1", summary(15.6), "a", config=debug_config("tiny")
        ),
        FakeRun("table4_liif", "finished", "2", summary(10.9), "b", config=debug_config("tiny")),
    ]
    table, _ = report_from_wandb(FakeApi(runs), "me/p", GROUP, out=str(tmp_path))
    assert table.debug == "tiny"
    for name in ("table.md", "table_clean.md", "table.tex", "table_clean.tex"):
        assert "DEBUG RUN (debug=tiny)" in (tmp_path / name).read_text(), name
    real = [FakeRun("table4_liif", "finished", "2", summary(34.5), "c", config=debug_config(None))]
    table, _ = report_from_wandb(FakeApi(real), "me/p", GROUP, out=str(tmp_path / "real"))
    assert table.debug is None and "DEBUG" not in (tmp_path / "real" / "table.md").read_text()


IMAGES = [f"{801 + i:04d}" for i in range(12)]


def logged_run(name: str, shift: float, run_dir: Path, run_id: str) -> FakeRun:
    """A finished run as a job leaves it in W&B: ``summarise_test`` logs its ``per_image.csv``
    as the table ``test/per_image``, which W&B keeps as a file of the run, named in the summary
    (``{"_type": "table-file", "path": ...}``, as an offline run writes it)."""
    import wandb

    from ipe_lightning.runtime.loggers import summarise_test

    rows = [
        {
            "set": "div2k",
            "scale": scale,
            "image": image,
            "psnr": 30.0 - 2 * scale + index % 5 + shift,
            "ssim": 0.9,
            "bicubic_psnr": 29.0 - 2 * scale,
            "bicubic_ssim": 0.8,
        }
        for scale in (2, 3, 4, 6, 18, 30)
        for index, image in enumerate(IMAGES)
    ]
    write_per_image(run_dir, rows)
    logged: dict[str, Any] = {}
    means = summary(30.0 + shift)
    for key in ("psnr", "ssim", "bicubic_psnr"):  # the summary holds the means of its rows
        for scale in {row["scale"] for row in rows}:
            values = [row[key] for row in rows if row["scale"] == scale]
            means[f"test/div2k/x{scale}/{key}"] = sum(values) / len(values)
    run = SimpleNamespace(summary=means, log=logged.update, log_artifact=None)
    summarise_test(run, {"run_name": name}, run_dir)
    table = logged["test/per_image"]
    assert isinstance(table, wandb.Table)
    path = f"media/table/test/per_image_0_{run_id}.table.json"
    run.summary["test/per_image"] = {"_type": "table-file", "path": path, "nrows": len(rows)}
    files = {path: json.dumps(table._to_table_json())}
    return FakeRun(name, "finished", run_id, run.summary, run_id, files=files)


def test_per_image_tables_in_wandb_give_the_intervals_and_the_reference_is_honoured(tmp_path):
    runs = [
        logged_run("table4_ipe_liif_l10", 0.0, tmp_path / "l10", "a"),
        logged_run("table4_ipe_liif_l4", 0.5, tmp_path / "l4", "b"),
        logged_run("table4_liif", -1.0, tmp_path / "liif", "c"),
    ]
    table, _ = report_from_wandb(FakeApi(runs), "me/p", GROUP, out=str(tmp_path / "r"))
    assert table.best_rule == "noise"
    markdown = (tmp_path / "r" / "table.md").read_text()
    assert "#### ΔPSNR (dB) against L = 10 (ours, default)" in markdown
    assert "| L = 4 | +0.500 [+0.500, +0.500]† |" in markdown
    assert "| LIIF (paper: Table 1) | -1.000 [-1.000, -1.000]† |" in markdown
    other, _ = report_from_wandb(
        FakeApi(runs), "me/p", GROUP, out=str(tmp_path / "o"), reference="table4_liif"
    )
    assert other.reference == "table4_liif"
    assert "| L = 4 | +1.500 [+1.500, +1.500]† |" in (tmp_path / "o" / "table.md").read_text()


def test_without_per_image_tables_the_wandb_report_says_so_and_refuses_a_reference(
    tmp_path, monkeypatch, capsys
):
    runs = [
        FakeRun("table4_ipe_liif_l10", "finished", "1", summary(34.8), "a"),
        FakeRun("table4_liif", "finished", "2", summary(34.5), "b"),
    ]
    report_from_wandb(FakeApi(runs), "me/p", GROUP, out=str(tmp_path))
    markdown = (tmp_path / "table.md").read_text()
    assert "no per-image results: no confidence intervals" in markdown
    import wandb

    monkeypatch.setattr(wandb, "Api", lambda: FakeApi(runs))
    arguments = ["report", "--wandb", "me/p", "--group", GROUP, "--out", str(tmp_path / "r")]
    assert main([*arguments, "--reference", "table4_liif"]) == 2
    error = capsys.readouterr().err
    assert "--reference" in error and "no per-image results" in error
    assert not (tmp_path / "r").exists()


def test_seeds_given_on_the_command_line_are_found_in_wandb_and_folded(tmp_path):
    """The sweep file has no seeds (``sweep.py table4 --seeds 0 1`` gave them): its runs
    ``<job>_seed-<n>`` are that job's seeds, not a missing job and rows of their own."""
    runs = [
        FakeRun("table4_liif_seed-0", "finished", "1", summary(34.4), "a"),
        FakeRun("table4_liif_seed-1", "finished", "2", summary(34.6), "b"),
    ]
    table, _ = report_from_wandb(FakeApi(runs), "me/p", GROUP, out=str(tmp_path))
    (liif,) = [r for r in table.rows if r.spec.variant == "table4_liif"]
    assert liif.status == "finished" and liif.seeds == (0, 1)
    assert liif.cells[0].ours["psnr"] == pytest.approx(34.5) and liif.cells[0].n == 2
    assert (
        "| LIIF (paper: Table 1) (n = 2) | **34.50** ± 0.14 |"
        in (tmp_path / "table_clean.md").read_text()
    )


def test_without_a_sweep_directory_the_layout_is_read_from_the_sweep_file(tmp_path):
    """``--sweep NAME``: the table's rows and layout come from the sweep file as plain YAML
    (the report reads no Hydra), each row expected, those without a run missing."""
    from ipe_lightning.report.command import sweep_file_layout
    from ipe_lightning.sweep.definitions import load_sweep
    from ipe_lightning.sweep_files import REPO_CONF_DIR

    layout, seeds = sweep_file_layout("table4", REPO_CONF_DIR)
    assert layout == load_sweep("table4").layout and seeds == ()
    runs = [FakeRun("table4_liif", "finished", "1", summary(34.5), "a")]
    table, _ = report_from_wandb(FakeApi(runs), "me/p", GROUP, sweep="table4", out=str(tmp_path))
    statuses = {row.spec.variant: row.status for row in table.rows if row.spec.kind == "job"}
    assert statuses["table4_liif"] == "finished" and len(statuses) == 7
    assert sum(status == "missing" for status in statuses.values()) == 6


def test_a_sweep_files_seeds_are_expected_runs(tmp_path):
    sweep_file = tmp_path / "mine.yaml"
    sweep_file.write_text(
        "params: {experiment: table4_liif}\nseeds: [0, 1]\n"
        "table: {rows: [{label: LIIF, variant: table4_liif}],"
        " columns: [{set: div2k, scales: [2]}]}\n"
    )
    runs = [FakeRun("table4_liif_seed-0", "finished", "1", summary(34.5), "a")]
    table, _ = report_from_wandb(
        FakeApi(runs), "me/p", GROUP, sweep=str(sweep_file), out=str(tmp_path / "r")
    )
    (row,) = [row for row in table.rows if row.spec.kind == "job"]
    assert [(job.name, job.result.status) for job in row.jobs] == [
        ("table4_liif_seed-0", "finished"),
        ("table4_liif_seed-1", "missing"),
    ]
