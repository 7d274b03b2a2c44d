"""A job's end restores ``WANDB_*`` variables and finishes its W&B run, without needing wandb
when the job never used it (a GPU image without wandb ran the embedded default to its end)."""

from __future__ import annotations

import builtins
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
