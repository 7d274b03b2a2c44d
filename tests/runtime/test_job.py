"""A job's record: the first failure among the ranks is the cause, a setting that does not
resolve cannot stop its own failure record, and whatever ends a job leaves ``metrics.json``."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from ipe_lightning.runtime.checkpoints import INTERRUPTED_EXIT, Interrupted
from ipe_lightning.runtime.ddp import RankError
from ipe_lightning.runtime.job import Job, failure_fields, readable, recorded_failure


def failed(rank: str, time: float, error: str) -> RankError:
    return RankError(rank, "launch-1", time, error, f"traceback of {rank}")


def test_a_lone_failure_is_the_records_error_without_a_rank_prefix():
    fields = failure_fields(failed("rank 0", 5.0, "ValueError: x"), [])
    assert fields == {"error": "ValueError: x", "traceback": "traceback of rank 0"}


def test_the_earliest_failure_among_the_ranks_is_the_cause_and_the_rest_are_secondary():
    """Rank 0 timed out waiting for rank 1, which had died first: the record names rank 1."""
    own = failed("rank 0", 9.0, "DistStoreError: Timed out")
    others = [failed("rank 2", 7.0, "RuntimeError: broken pipe"), failed("rank 1", 3.0, "no ckpt")]
    fields = failure_fields(own, others)
    assert fields["error"] == "rank 1: no ckpt"
    assert fields["traceback"] == "traceback of rank 1"
    assert fields["secondary_errors"] == [
        "rank 2: RuntimeError: broken pipe",
        "rank 0: DistStoreError: Timed out",
    ]


def test_readable_gives_the_default_for_what_is_absent_or_does_not_resolve():
    cfg = OmegaConf.create({"mode": "train", "tags": ["a", "${mode}"], "bad": "${no_such_key}"})
    assert readable(cfg, "mode", "") == "train"
    assert readable(cfg, "tags", None) == ["a", "train"]  # plain and resolved
    assert type(readable(cfg, "tags", None)) is list
    assert readable(cfg, "bad", "fallback") == "fallback"
    assert readable(cfg, "model.name", "") == ""


@pytest.fixture
def job(tmp_path, monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    cfg = OmegaConf.create({"mode": "train", "seed": 0, "paths": {"output_dir": str(tmp_path)}})
    return Job(cfg)


def read(job: Job) -> dict:
    with open(f"{job.cfg.paths.output_dir}/metrics.json") as handle:
        return json.load(handle)


def test_an_exception_leaves_a_failed_record_and_is_raised_again(job):
    with pytest.raises(KeyError), recorded_failure(job):
        raise KeyError("no_such_set")
    written = read(job)
    assert written["status"] == "failed"
    assert "no_such_set" in written["error"] and "KeyError" in written["traceback"]
    assert written["global_step"] == 0 and written["checkpoints"] == {}  # no trainer yet


def test_ctrl_c_leaves_an_interrupted_record_and_exits_130(job):
    with pytest.raises(SystemExit) as exit_, recorded_failure(job):
        raise Interrupted
    assert exit_.value.code == INTERRUPTED_EXIT == 130
    assert read(job)["status"] == "interrupted"


def test_a_job_that_ends_normally_writes_nothing_here(job, tmp_path):
    with recorded_failure(job):
        pass
    assert not (tmp_path / "metrics.json").exists()  # the finished record is the task's


def test_a_failure_once_the_trainer_exists_records_its_step_and_checkpoints(job):
    from types import SimpleNamespace

    saver = SimpleNamespace(best_model_path="", last_model_path="/run/checkpoints/last.ckpt")
    trainer = SimpleNamespace(global_step=7, checkpoint_callbacks=[saver])
    with pytest.raises(KeyError), recorded_failure(job, trainer):
        raise KeyError("late")
    written = read(job)
    assert written["status"] == "failed" and written["global_step"] == 7
    assert written["checkpoints"] == {"best": None, "last": "/run/checkpoints/last.ckpt"}


def test_the_records_model_is_the_name_the_module_keeps_in_its_checkpoints(tmp_path):
    from ipe_lightning.runtime.job import MODEL_NAME_KEY, write_record

    cfg = OmegaConf.create(
        {
            "model": {"name": "config-name"},
            "module": {"model_name": "${model.name}"},
            "paths": {"output_dir": str(tmp_path)},
        }
    )
    assert write_record(Job(cfg), "finished")["model"] == "config-name"
    OmegaConf.update(cfg, MODEL_NAME_KEY, "the-modules-name")
    assert write_record(Job(cfg), "finished")["model"] == "the-modules-name"


def test_a_test_jobs_record_names_the_checkpoint_it_evaluated(tmp_path):
    from ipe_lightning.runtime.job import write_record

    checkpoint = tmp_path / "training" / "checkpoints" / "last.ckpt"
    cfg = OmegaConf.create(
        {"mode": "test", "ckpt_path": str(checkpoint), "paths": {"output_dir": str(tmp_path)}}
    )
    assert write_record(Job(cfg), "failed")["checkpoints"] == {"evaluated": str(checkpoint)}
    cfg.mode = "train"  # a training tests the weights it trained: no checkpoint evaluated
    assert write_record(Job(cfg), "failed")["checkpoints"] == {}


def test_a_test_jobs_record_names_its_checkpoints_model_and_a_default_run_name_follows(tmp_path):
    from ipe_lightning.runtime.job import write_record

    cfg = OmegaConf.create(
        {
            "mode": "test",
            "model": {"name": "ipe_liif"},
            "module": {"model_name": "${model.name}"},
            "run_name": "${model.name}",
            "paths": {"output_dir": str(tmp_path)},
        }
    )
    record = write_record(Job(cfg, model="metasr"), "finished")
    assert (record["model"], record["run_name"]) == ("metasr", "metasr")
    cfg.run_name = "table1_metasr"  # a name given to the run stays its name
    record = write_record(Job(cfg, model="metasr"), "finished")
    assert (record["model"], record["run_name"]) == ("metasr", "table1_metasr")
