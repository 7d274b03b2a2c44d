"""Scale-out and logging: DDP on CPU processes (gloo) and W&B without network or credentials."""

from __future__ import annotations

import math
import os

import pytest

from tests.support.runs import read_record, run_in_process, run_script, tiny_overrides


@pytest.mark.slow
def test_ddp_cpu_trains_in_one_directory_and_tests_like_one_process(tiny_hr_dir, tmp_path):
    base = tiny_overrides(tiny_hr_dir, tmp_path / "cache")
    trained = run_script("run.py", [*base, "trainer=ddp_cpu"], tmp_path / "ddp", timeout=600)
    assert trained.returncode == 0, trained.stderr[-4000:]
    record = read_record(tmp_path / "ddp")
    assert record["status"] == "finished" and record["global_step"] >= 2
    # Lightning relaunches run.py for rank 1 into the same Hydra run directory: no second one.
    assert sorted(p.name for p in (tmp_path).iterdir()) == ["cache", "ddp"]
    checkpoint = record["checkpoints"]["last"]
    results = {}
    for trainer in ["cpu", "ddp_cpu"]:
        tested = run_script(
            "run.py",
            [*base, f"trainer={trainer}", "mode=test", f"ckpt_path={checkpoint}"],
            tmp_path / f"test_{trainer}",
            timeout=600,
        )
        assert tested.returncode == 0, tested.stderr[-4000:]
        results[trainer] = read_record(tmp_path / f"test_{trainer}")["metrics"]
    assert results["cpu"].keys() == results["ddp_cpu"].keys() == {"folder/x2", "folder/x3"}
    for loader, values in results["cpu"].items():
        for name, value in values.items():
            assert math.isclose(results["ddp_cpu"][loader][name], value, abs_tol=1e-6), (
                loader,
                name,
            )


@pytest.mark.slow  # a few seconds of subprocesses; runs in make test-slow and CI
def test_wandb_without_credentials_logs_offline_one_run_per_job(tiny_hr_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc: no credentials
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    base = [*tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"), "logger=wandb"]
    run_ids = []
    for job in ["first", "second"]:
        record = run_in_process([*base, f"run_name={job}"], tmp_path / job)
        assert record["status"] == "finished"
        assert "WANDB_MODE" not in os.environ  # the offline switch did not leak into the process
        runs = list((tmp_path / job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, runs
        run_ids.append(runs[0].name.rsplit("-", 1)[-1])
    assert run_ids[0] != run_ids[1]  # the second job did not reuse the first job's run
    import wandb

    assert wandb.run is None


def test_test_images_are_split_between_ranks_without_duplicates(tiny_hr_dir, tmp_path):
    from types import SimpleNamespace

    from ipe_lightning.data import ImageFolders, SRDataModule

    spec = {"images": ImageFolders(test_dir=tiny_hr_dir), "scales": [2]}
    datamodule = SRDataModule(
        ImageFolders(train_dir=tiny_hr_dir, val_dir=tiny_hr_dir),
        inp_size=16,
        cache_dir=str(tmp_path),
        eval_sets={"folder": {**spec, "channel": "y", "shave": "scale"}},
    )
    names_per_rank = []
    for rank in range(2):
        datamodule.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        (loader,) = datamodule.test_dataloader()
        names_per_rank.append([batch["name"] for batch in loader])
    all_names = sorted(p.stem for p in tiny_hr_dir.glob("*.png"))
    assert sorted(names_per_rank[0] + names_per_rank[1]) == all_names  # each image exactly once
    assert len(names_per_rank[0]) == 2 and len(names_per_rank[1]) == 1
