"""Trainings recorded in a run store keep their identity when the configs are reorganised."""

from __future__ import annotations

import json
from pathlib import Path

from ipe_lightning.sweep.identity import training_identity
from ipe_lightning.sweep.launch import compose_job, hydra_session
from ipe_lightning.sweep_files import REPO_CONF_DIR

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_every_experiment_keeps_the_identity_its_training_was_recorded_under():
    # Identities computed from the configs as they were before the decoder became a part and the
    # data module was built by SRDataModule.from_config: the run store must still find those
    # trainings (tests/fixtures/training_identities.json, paper settings, data.root=/data).
    recorded = json.loads((FIXTURES / "training_identities.json").read_text())
    with hydra_session(REPO_CONF_DIR) as hydra:
        now = {
            name: training_identity(compose_job(hydra, [f"experiment={name}", "data.root=/data"]))
            for name in recorded
        }
    assert now == recorded
