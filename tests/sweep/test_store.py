"""The run store: which job directory trains each identity, and whether it finished."""

from __future__ import annotations

import json

from ipe_lightning.sweep.store import RunStore
from tests.sweep.test_steps import finished_training


def test_the_store_names_the_job_directory_of_each_training(tmp_path):
    store = RunStore(tmp_path / "store")
    store.register("abc", tmp_path / "sweep" / "job", {"seed": 0})
    entry = json.loads((tmp_path / "store" / "abc.json").read_text())
    assert entry == {
        "identity": "abc",
        "job_dir": str(tmp_path / "sweep" / "job"),
        "training": {"seed": 0},
    }
    assert store.find("abc").job_dir == tmp_path / "sweep" / "job"
    assert not store.find("abc").finished() and store.find("other") is None


def test_a_training_counts_as_finished_only_with_its_record_and_checkpoint(tmp_path):
    store = RunStore(tmp_path / "store")
    store.register("abc", tmp_path / "job", {})
    finished_training(tmp_path / "job")
    assert store.find("abc").finished()
    (tmp_path / "job" / "checkpoints" / "last.ckpt").unlink()
    assert not store.find("abc").finished()
