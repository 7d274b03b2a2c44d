"""``sweep.py report --wandb``: the same table from W&B's API (a fake one: no server here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ipe_lightning.sweeps.cli import report_from_wandb

GROUP = "table4_2024-05-01_12-00-00"


@dataclass
class FakeRun:
    name: str
    state: str
    created_at: str
    summary_metrics: dict[str, Any] = field(default_factory=dict)
    id: str = "run"
    job_type: str = "train"


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

    from ipe_lightning.runtime.loggers import summarise_test
    from ipe_lightning.sweeps.wandb_source import results_from_wandb

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
    found = results_from_wandb(api, "me/ipe-lightning", GROUP)
    assert found["table4_liif"].metrics == {"div2k/x2": {"psnr": 34.5, "bicubic_psnr": 31.0}}
    assert "W&B run train" in found["table4_liif"].note
