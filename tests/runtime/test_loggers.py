"""A job's end restores ``WANDB_*`` variables and finishes its W&B run, without needing wandb
when the job never used it (a GPU image without wandb ran the embedded default to its end)."""

from __future__ import annotations

import builtins
import logging
import os
import sys
import types

import pytest

from ipe_lightning.runtime.loggers import isolated_wandb_run


@pytest.fixture
def wandb_unimportable(monkeypatch):
    """As if wandb were not installed: absent from sys.modules and failing to import."""
    monkeypatch.delitem(sys.modules, "wandb", raising=False)
    real_import = builtins.__import__

    def guarded_import(name, *args, **kwargs):
        if name == "wandb" or name.startswith("wandb."):
            raise ModuleNotFoundError("No module named 'wandb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", guarded_import)


def test_a_job_that_never_used_wandb_ends_cleanly_without_it(wandb_unimportable, monkeypatch):
    monkeypatch.setenv("WANDB_PROJECT", "kept")
    with isolated_wandb_run():
        os.environ["WANDB_MODE"] = "offline"  # what WandbLogger(offline=True) leaves behind
        os.environ["WANDB_PROJECT"] = "changed"
    assert "WANDB_MODE" not in os.environ
    assert os.environ["WANDB_PROJECT"] == "kept"


def test_an_active_run_is_finished_even_when_the_job_fails(monkeypatch):
    finished = []
    fake = types.SimpleNamespace(run=object(), finish=lambda: finished.append(True))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    with pytest.raises(RuntimeError, match="job failed"), isolated_wandb_run():
        raise RuntimeError("job failed")
    assert finished == [True]


def test_no_run_means_nothing_to_finish(monkeypatch):
    fake = types.SimpleNamespace(run=None, finish=lambda: pytest.fail("finish without a run"))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    with isolated_wandb_run():
        pass


# ---------------------------------------------------------------- W&B summaries


class FakeWandbRun:
    """What our code hands a W&B run (offline runs write no summary file to read back)."""

    def __init__(self, directory: str = "/runs/job/wandb/offline-run-20260101_000000-abc/files"):
        self.dir = directory
        self.summary: dict = {}
        self.defined: list[tuple[str, dict]] = []
        self.logged: list[dict] = []
        self.artifacts: list = []

    def define_metric(self, name, **options):
        self.defined.append((name, options))

    def log(self, values):
        self.logged.append(values)

    def log_artifact(self, artifact):
        self.artifacts.append(artifact)


RECORD = {
    "status": "finished",
    "model": "ipe_liif",
    "run_name": "table4_ipe_liif_l4",
    "metrics": {
        "div2k/x2": {"psnr": 34.6, "ssim": 0.94, "bicubic_psnr": 31.0, "bicubic_ssim": 0.9},
        "div2k/x4": {"psnr": 28.9, "ssim": 0.80, "bicubic_psnr": 26.6, "bicubic_ssim": 0.7},
    },
}


def wandb_spec(tmp_path, **options):
    from omegaconf import OmegaConf

    spec = {
        "_target_": "pytorch_lightning.loggers.WandbLogger",
        "project": "ipe-lightning",
        "group": None,
        "name": "table4_ipe_liif_l4",
        "save_dir": str(tmp_path),
        "offline": True,
        **options,
    }
    return OmegaConf.create({"wandb": spec})


@pytest.fixture
def fake_experiment(monkeypatch):
    from pytorch_lightning.loggers import WandbLogger

    run = FakeWandbRun()
    monkeypatch.setattr(WandbLogger, "experiment", property(lambda self: run))
    return run


def test_the_best_validation_psnr_is_the_summary_and_offline_says_what_to_sync(
    tmp_path, fake_experiment, caplog
):
    from ipe_lightning.runtime.loggers import build_loggers

    with caplog.at_level(logging.INFO, logger="ipe_lightning"):
        (logger,) = build_loggers(wandb_spec(tmp_path), {"job_type": "train"})
    assert fake_experiment.defined == [
        ("val/psnr", {"summary": "max", "step_metric": "trainer/global_step"})
    ]
    assert logger._wandb_init["job_type"] == "train"
    # The directory `wandb sync` takes, not a glob to guess.
    assert "wandb sync /runs/job/wandb/offline-run-20260101_000000-abc`" in caplog.text


def test_a_test_run_is_an_eval_job_in_its_training_runs_group(tmp_path, fake_experiment):
    from omegaconf import OmegaConf

    from ipe_lightning.runtime.loggers import build_loggers, wandb_job

    train_dir = tmp_path / "table4" / "table4_ipe_liif_l4"
    (train_dir / ".hydra").mkdir(parents=True)
    # .hydra/config.yaml holds interpolations only Hydra resolves; the group is plain.
    (train_dir / ".hydra" / "config.yaml").write_text(
        "paths:\n  output_dir: ${hydra:runtime.output_dir}\n"
        "logger:\n  wandb:\n    group: table4_2026-12-01_10-00-00\n"
    )
    ckpt = train_dir / "checkpoints" / "last.ckpt"
    cfg = OmegaConf.create({"mode": "test", "ckpt_path": str(ckpt), "logger": wandb_spec(tmp_path)})
    settings = wandb_job(cfg)
    assert settings == {"job_type": "eval", "group": "table4_2026-12-01_10-00-00"}
    (logger,) = build_loggers(cfg.logger, settings)
    assert logger._wandb_init["group"] == "table4_2026-12-01_10-00-00"
    assert logger._wandb_init["job_type"] == "eval"
    # A group on the command line wins; a checkpoint from elsewhere has no group to join.
    (explicit,) = build_loggers(wandb_spec(tmp_path, group="mine"), settings)
    assert explicit._wandb_init["group"] == "mine"
    elsewhere = OmegaConf.create({"mode": "test", "ckpt_path": str(tmp_path / "x.pth")})
    assert wandb_job(elsewhere) == {"job_type": "eval"}
    assert wandb_job(OmegaConf.create({"mode": "train"})) == {"job_type": "train"}


def test_the_test_summary_has_the_gains_the_per_image_table_and_the_record(tmp_path):
    import wandb

    from ipe_lightning import results
    from ipe_lightning.runtime.loggers import summarise_test

    rows = [
        {
            "set": "div2k",
            "scale": 2,
            "image": f"{i:04d}",
            "psnr": 34.0 + i,
            "ssim": 0.9,
            "bicubic_psnr": 31.0,
            "bicubic_ssim": 0.8,
        }
        for i in range(3)
    ]
    results.write_per_image(tmp_path, rows)
    results.write_record(tmp_path, RECORD)
    run = FakeWandbRun()
    summarise_test(run, RECORD, tmp_path)
    assert run.summary == pytest.approx(
        {"test/div2k/x2/gain_over_bicubic": 3.6, "test/div2k/x4/gain_over_bicubic": 2.3}
    )
    ((key, table),) = [item for entry in run.logged for item in entry.items()]
    assert key == "test/per_image" and isinstance(table, wandb.Table)
    assert table.columns == list(results.PER_IMAGE_FIELDS)
    assert [row[2] for row in table.data] == ["0000", "0001", "0002"]
    assert [row[3] for row in table.data] == [34.0, 35.0, 36.0]
    (artifact,) = run.artifacts
    assert artifact.type == "results" and artifact.name == "table4_ipe_liif_l4-metrics"
    assert set(artifact.manifest.entries) == {"metrics.json"}


def test_without_per_image_results_the_summary_still_has_the_gains(tmp_path):
    from ipe_lightning.runtime.loggers import summarise_test

    run = FakeWandbRun()
    summarise_test(run, RECORD, tmp_path)  # no per_image.csv, no metrics.json
    assert set(run.summary) == {
        "test/div2k/x2/gain_over_bicubic",
        "test/div2k/x4/gain_over_bicubic",
    }
    assert run.logged == [] and run.artifacts == []


@pytest.mark.slow
def test_train_then_test_hand_wandb_their_summaries_and_the_test_joins_the_group(
    tiny_hr_dir, tmp_path, monkeypatch
):
    from pytorch_lightning.loggers import WandbLogger

    from ipe_lightning.runtime import loggers
    from tests.support.runs import run_in_process, tiny_overrides

    runs: list[tuple[dict, FakeWandbRun]] = []

    def experiment(self):  # one fake run per logger, with what wandb.init would be given
        if not hasattr(self, "_fake_run"):
            self._fake_run = FakeWandbRun(str(tmp_path / "wandb" / "offline-run-x" / "files"))
            self._fake_run.config = types.SimpleNamespace(update=lambda *a, **k: None)
            runs.append((dict(self._wandb_init), self._fake_run))
        return self._fake_run

    monkeypatch.setattr(WandbLogger, "experiment", property(experiment))
    summarised = []
    monkeypatch.setattr(
        loggers, "summarise_test", lambda run, record, run_dir: summarised.append((run, record))
    )
    base = [*tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"), "logger=wandb"]
    train_dir = tmp_path / "train"
    record = run_in_process([*base, "logger.wandb.group=g1", "run_name=v1"], train_dir)
    (train_init, train_run), *_ = runs
    assert train_init["job_type"] == "train" and train_init["group"] == "g1"
    assert (
        "val/psnr",
        {"summary": "max", "step_metric": "trainer/global_step"},
    ) in train_run.defined
    assert summarised == [(train_run, record)]

    # What Hydra writes in a real run: the training run's config, read by the eval run.
    (train_dir / ".hydra").mkdir()
    (train_dir / ".hydra" / "config.yaml").write_text("logger:\n  wandb:\n    group: g1\n")
    ckpt = train_dir / "checkpoints" / "last.ckpt"
    tested = run_in_process([*base, "mode=test", f"ckpt_path={ckpt}"], tmp_path / "eval")
    eval_init, eval_run = runs[-1]
    assert eval_init["job_type"] == "eval" and eval_init["group"] == "g1"
    assert summarised[-1] == (eval_run, tested)


def csv_rows(path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


CSV_LOGGER = "ipe_lightning.runtime.loggers.ResumableCSVLogger"  # conf/logger/csv.yaml's


def test_a_resumed_csv_log_keeps_the_earlier_rows_before_the_step_it_resumes_at(tmp_path):
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from ipe_lightning.runtime.loggers import KeepEarlierRows, build_loggers

    spec = {"_target_": CSV_LOGGER, "name": "csv", "version": ""}
    logger_cfg = OmegaConf.create({"csv": {**spec, "save_dir": str(tmp_path)}})
    metrics = tmp_path / "csv" / "metrics.csv"
    metrics.parent.mkdir()
    killed = "".join(f"{step},{step / 10}\n" for step in range(8))  # killed after step 7
    metrics.write_text("step,train/loss\n" + killed + "8")  # its last row cut short
    (logger,) = build_loggers(logger_cfg)
    logger.log_hyperparams({"config": {}})
    assert metrics.read_text().startswith("step,train/loss\n0,0.0\n")  # until rows are saved
    KeepEarlierRows().on_train_start(SimpleNamespace(loggers=[logger], global_step=6), None)
    for step in range(6, 9):  # the checkpoint's step 6 onwards, logged again
        logger.log_metrics({"train/loss": step + 0.5}, step=step)
    logger.log_metrics({"val/psnr": 30.0}, step=8)
    logger.save()
    rows = [(row["step"], row["train/loss"], row["val/psnr"]) for row in csv_rows(metrics)]
    assert rows == [
        *[(str(step), str(step / 10), "") for step in range(6)],
        *[(str(step), str(step + 0.5), "") for step in range(6, 9)],
        ("8", "", "30.0"),
    ]


def test_a_csv_log_without_a_resumed_training_keeps_every_earlier_row(tmp_path):
    from omegaconf import OmegaConf

    from ipe_lightning.runtime.loggers import build_loggers

    spec = {"_target_": CSV_LOGGER, "name": "csv", "version": ""}
    logger_cfg = OmegaConf.create({"csv": {**spec, "save_dir": str(tmp_path)}})
    metrics = tmp_path / "csv" / "metrics.csv"
    metrics.parent.mkdir()
    metrics.write_text("step,train/loss\n0,0.5\n1,0.25\n")  # a training; now its test
    (logger,) = build_loggers(logger_cfg)
    logger.log_metrics({"test/psnr": 30.0}, step=2)
    logger.save()
    assert [row["step"] for row in csv_rows(metrics)] == ["0", "1", "2"]
