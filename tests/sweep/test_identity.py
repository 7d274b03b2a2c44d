"""A training is named by what changes its weights, and by nothing else."""

from __future__ import annotations

import pytest

from ipe_lightning.sweep.identity import training_identity
from ipe_lightning.sweep.launch import compose_job, hydra_session
from ipe_lightning.sweep_files import REPO_CONF_DIR

BASE = ["experiment=table1_edsr_baseline_liif", "debug=tiny", "data.root=/data"]


@pytest.fixture(scope="module")
def identity():
    with hydra_session(REPO_CONF_DIR) as hydra:
        yield lambda *overrides: training_identity(compose_job(hydra, [*BASE, *overrides]))


def test_evaluation_logging_and_naming_do_not_change_the_identity(identity):
    same = identity()
    for overrides in [
        ["eval=benchmarks"],
        ["eval.scales=[2,3]"],
        ["logger=none"],
        ["run_name=other", "tags=[x]"],
        ["test.max_queries=100"],
        ["data.num_workers=5", "data.cache_dir=/elsewhere"],
        ["launcher=submitit_local"],
        ["~callbacks.examples"],
    ]:
        assert identity(*overrides) == same, overrides


def test_what_changes_the_weights_changes_the_identity(identity):
    same = identity()
    for overrides in [
        ["seed=1"],
        ["optimizer.lr=0.001"],
        ["trainer.max_epochs=3"],
        ["+trainer.accumulate_grad_batches=2"],
        ["data.scale_max=8"],
        ["data.degrade=matlab"],
        ["data.batch_size=4"],
        ["model=ipe_liif"],
        ["model/encoder=rdn"],
        ["data.root=/other"],
        ["+callbacks.ema._target_=my.callbacks.EMA"],  # not known to only observe
    ]:
        assert identity(*overrides) != same, overrides


def test_the_identity_is_stable_across_processes(identity):
    # a fixed value: a change of the recipe (or of the configs) shows up here, not silently as a
    # store that no longer finds its trainings
    assert len(identity()) == 16 and identity() == identity()
