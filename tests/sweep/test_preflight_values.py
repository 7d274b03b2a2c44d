"""Preflight refuses a sweep job's value out of its range with run.py's own message, before any
data is looked at or any job is queued."""

from __future__ import annotations

import pytest

from ipe_lightning.sweep.launch import hydra_session
from ipe_lightning.sweep.preflight import preflight
from ipe_lightning.sweep_files import REPO_CONF_DIR


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("eval.scales=[2,0]", "SettingError: eval set 'div2k': eval.scales=[2, 0]: 0 is not a"),
        ("data.batch_size=0", "SettingError: data.batch_size=0: a whole number >= 1"),
        ("test.tile=-5", "SettingError: test.tile=-5: a whole number >= 1 or null"),
    ],
)
def test_a_value_out_of_range_fails_the_preflight_as_run_py_tells_it(override, named):
    job = ["experiment=table4_liif", "debug=tiny", "data.root=/does/not/exist", override]
    with hydra_session(REPO_CONF_DIR) as hydra:
        (problem,) = preflight(hydra, {"liif": job}).values()
    assert problem.startswith(named), problem  # the value, not the missing data behind it
