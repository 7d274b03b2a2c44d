"""Jobs as functions of a config: a run without logger trains, and a job that fails before its
trainer exists still leaves a record saying why."""

from __future__ import annotations

import pytest
from hydra.errors import InstantiationException

from tests.support.runs import read_record, run_in_process, tiny_overrides


def test_a_run_without_logger_trains_and_tests(tiny_hr_dir, tmp_path):
    overrides = [*tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"), "logger=none"]
    record = run_in_process(overrides, tmp_path / "run")
    assert record["status"] == "finished" and record["global_step"] == 6
    assert set(record["metrics"]) == {"folder/x2"}
    assert not (tmp_path / "run" / "csv").exists()


def test_a_job_that_fails_building_its_trainer_records_the_error(tiny_hr_dir, tmp_path):
    overrides = [*tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"), "+trainer.no_such=1"]
    with pytest.raises(InstantiationException, match="no_such"):
        run_in_process(overrides, tmp_path / "run")
    record = read_record(tmp_path / "run")
    assert record["status"] == "failed" and "no_such" in record["error"]
    assert record["global_step"] == 0 and record["checkpoints"] == {}
