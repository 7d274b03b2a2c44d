"""The run store lies beside the sweeps it serves, whatever the working directory."""

from __future__ import annotations

from pathlib import Path

from ipe_lightning.sweep.store import default_run_store


def test_a_sweep_dir_elsewhere_keeps_its_store_beside_it_not_in_the_working_directory(
    tmp_path, monkeypatch
):
    work = tmp_path / "repo"
    work.mkdir()
    monkeypatch.chdir(work)
    assert default_run_store(tmp_path / "sweeps" / "t4") == tmp_path / "sweeps" / "runs"
    assert not (work / "multirun").exists()


def test_sweeps_in_their_default_place_share_multirun_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep_dir = Path("multirun") / "table4" / "2026-12-07_10-00-00"
    assert default_run_store(sweep_dir) == tmp_path / "multirun" / "runs"
