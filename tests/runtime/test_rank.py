"""One answer to "am I global rank 0?": any launcher's rank variable other than 0, or Lightning's
rank other than 0, is another rank; a lone process is rank 0."""

from __future__ import annotations

import pytest
from lightning_fabric.utilities.rank_zero import rank_zero_only

from ipe_lightning.runtime.rank import RANK_VARIABLES, is_rank_zero


@pytest.fixture
def lone_process(monkeypatch):
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(rank_zero_only, "rank", 0, raising=False)


def test_a_lone_process_is_rank_zero(lone_process):
    assert is_rank_zero()


@pytest.mark.parametrize("name", RANK_VARIABLES)
def test_any_rank_variable_other_than_zero_is_another_rank(lone_process, monkeypatch, name):
    monkeypatch.setenv(name, "0")
    assert is_rank_zero()
    monkeypatch.setenv(name, "")
    assert is_rank_zero()
    monkeypatch.setenv(name, "1")
    assert not is_rank_zero()


def test_the_second_node_of_a_job_is_not_rank_zero_though_its_local_rank_is(
    lone_process, monkeypatch
):
    monkeypatch.setenv("NODE_RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert not is_rank_zero()


def test_lightnings_global_rank_counts_where_no_variable_is_set(lone_process, monkeypatch):
    monkeypatch.setattr(rank_zero_only, "rank", 2)  # a process Lightning started itself
    assert not is_rank_zero()


def test_the_lock_the_loggers_and_the_record_ask_the_same_question():
    from ipe_lightning.runtime import job, lock, loggers

    assert lock.is_rank_zero is loggers.is_rank_zero is job.is_rank_zero is is_rank_zero
