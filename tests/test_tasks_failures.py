"""A job that fails anywhere, from building its data module to its last test batch, leaves a
failed record with the error and its traceback, and logs both; settings that cannot work are
refused with a message naming the option."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipe_lightning.errors import UserError, find_user_error
from tests.support.runs import compose_config, read_record, run_in_process, tiny_overrides


@contextlib.contextmanager
def job_log(path: Path) -> Iterator[Path]:
    """As under Hydra's job logging: the package logger writes the job's log file."""
    log_file = logging.FileHandler(path)
    logging.getLogger("ipe_lightning").addHandler(log_file)
    try:
        yield path
    finally:
        logging.getLogger("ipe_lightning").removeHandler(log_file)
        log_file.close()


def test_missing_data_leaves_a_failed_record_with_its_traceback(tmp_path, capsys):
    overrides = ["experiment=table4_liif", "debug=tiny", "data.root=/does/not/exist"]
    with job_log(tmp_path / "run.log"), pytest.raises(FileNotFoundError) as raised:
        run_in_process(overrides, tmp_path / "run")
    assert find_user_error(raised.value) is raised.value  # an expected user error
    record = read_record(tmp_path / "run")
    assert record["status"] == "failed"
    assert record["error"].startswith("DatasetNotFoundError: data.root not found")
    assert "Traceback" in record["traceback"] and "build_datamodule" in record["traceback"]
    logged = (tmp_path / "run.log").read_text()
    assert "job failed: DatasetNotFoundError: data.root not found" in logged
    assert "Traceback" in logged and "build_datamodule" in logged
    assert "Traceback" not in capsys.readouterr().out  # the console gets the one line


def test_a_bad_model_part_leaves_a_failed_record_and_a_log_line_naming_the_option(
    tiny_hr_dir, tmp_path
):
    overrides = [
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"),
        "model.net.encoding.bandwidth=-3",
    ]
    with job_log(tmp_path / "run.log"), pytest.raises(Exception) as raised:
        run_in_process(overrides, tmp_path / "run")
    error = find_user_error(raised.value)
    assert isinstance(error, UserError)
    assert "model.net.encoding.bandwidth" in str(error) and "-3" in str(error)
    record = read_record(tmp_path / "run")
    assert record["status"] == "failed"
    # the cause, not Hydra's wrapper ("InstantiationException: Error in call to target ...")
    assert record["error"].startswith("SettingError: model.net.encoding.bandwidth")
    logged = (tmp_path / "run.log").read_text()
    assert "job failed: SettingError: model.net.encoding.bandwidth" in logged


@pytest.mark.parametrize(
    ("override", "raised", "named"),
    [
        ("seed=abc", UserError, "seed=abc"),  # before the data module reads it
        ("mode=evaluate", UserError, "mode='evaluate'"),
        ("model.name=${no_such_key}", Exception, "no_such_key"),  # the record reads it too
    ],
)
def test_a_setting_that_fails_before_any_building_still_leaves_a_record_and_a_log_line(
    tiny_hr_dir, tmp_path, override, raised, named
):
    overrides = [*tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"), override]
    with job_log(tmp_path / "run.log"), pytest.raises(raised, match=re.escape(named)):
        run_in_process(overrides, tmp_path / "run")
    record = read_record(tmp_path / "run")
    assert record["status"] == "failed" and named in record["error"]
    assert named in record["traceback"]  # its tail: the frames nearest the error
    logged = (tmp_path / "run.log").read_text()
    assert "job failed: " in logged and named in logged and "Traceback" in logged


def test_an_evaluation_scale_below_one_is_refused_naming_the_set_and_option(tiny_hr_dir, tmp_path):
    overrides = tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2,0.5]")
    with pytest.raises(UserError, match=r"eval\.scales") as raised:
        run_in_process(overrides, tmp_path / "run")
    assert "'folder'" in str(raised.value) and "0.5" in str(raised.value)
    assert read_record(tmp_path / "run")["status"] == "failed"


def test_more_ranks_than_test_images_is_refused_before_training(tmp_path, monkeypatch):
    import pytorch_lightning as pl

    def no_fit(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(pl.Trainer, "fit", no_fit)
    # the bundled held-out set has 2 images; 3 ranks would leave one without any
    overrides = ["trainer=ddp_cpu", "trainer.devices=3", "debug=smoke", "logger=none"]
    with pytest.raises(UserError, match=r"trainer\.devices") as raised:
        run_in_process(overrides, tmp_path / "run")
    assert "2 image" in str(raised.value) and "sample" in str(raised.value)
    assert read_record(tmp_path / "run")["status"] == "failed"


def test_a_missing_checkpoint_is_a_user_error(tmp_path):
    cfg = compose_config(["mode=test", f"ckpt_path={tmp_path}/none.ckpt"], tmp_path / "run")
    from ipe_lightning.tasks import run

    with pytest.raises(UserError, match=r"none\.ckpt"):
        run(cfg)


def test_a_rank_that_fails_leaves_its_error_to_rank_zero_whose_record_names_it_first(
    tmp_path, monkeypatch
):
    from ipe_lightning.runtime.rank import RANK_VARIABLES

    for name in (*RANK_VARIABLES, "SLURM_NTASKS", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    run_dir = tmp_path / "run"
    monkeypatch.setenv("NODE_RANK", "1")  # the second node of a job: its checkpoint is lost
    with pytest.raises(UserError, match=r"lost\.ckpt"):
        run_in_process(["mode=test", f"ckpt_path={tmp_path / 'lost.ckpt'}"], run_dir)
    assert not (run_dir / "metrics.json").exists()  # one writer: rank 0
    monkeypatch.setenv("NODE_RANK", "0")  # rank 0 fails after it (in the job: a timeout)
    with pytest.raises(UserError, match=r"later\.ckpt"):
        run_in_process(["mode=test", f"ckpt_path={tmp_path / 'later.ckpt'}"], run_dir)
    record = read_record(run_dir)
    assert record["status"] == "failed"
    assert record["error"].startswith("node 1") and "lost.ckpt" in record["error"]
    assert "lost.ckpt" in record["traceback"]
    (secondary,) = record["secondary_errors"]
    assert secondary.startswith("rank 0") and "later.ckpt" in secondary


def test_a_sweep_given_to_run_py_is_refused_naming_sweep_py(tmp_path):
    from ipe_lightning.errors import SettingError
    from ipe_lightning.tasks import check_settings

    with pytest.raises(SettingError, match=r"python sweep\.py table4 "):
        check_settings(compose_config(["+sweep=table4"], tmp_path))
    check_settings(compose_config([], tmp_path))  # a job: accepted
