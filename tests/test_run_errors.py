"""run.py: an error in what was asked is one message and exit status 2, without a traceback
(``HYDRA_FULL_ERROR=1`` still shows it); a config that does not compose exits 2 too."""

from __future__ import annotations

import pytest

from tests.support.runs import run_script


def test_missing_data_is_one_message_and_exit_2(tmp_path):
    done = run_script("run.py", ["experiment=table4_liif", "data.root=/does/not/exist"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert "run.py: data.root not found: looked for the folder /does/not/exist" in done.stderr
    console = done.stdout + done.stderr
    assert "Traceback" not in console
    assert console.count("data.root not found") == 1, console  # told once on the console
    assert "job failed: DatasetNotFoundError" in (tmp_path / "run.log").read_text()


@pytest.mark.slow  # a few seconds of subprocesses; runs in make test-slow and CI
def test_hydra_full_error_still_shows_the_traceback(tmp_path):
    done = run_script(
        "run.py",
        ["experiment=table4_liif", "data.root=/does/not/exist"],
        tmp_path,
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "DatasetNotFoundError" in done.stderr


@pytest.mark.parametrize(
    ("override", "named"),
    [("no_such_option=1", "no_such_option"), ("model=no_such_model", "no_such_model")],
)
def test_a_config_that_does_not_compose_exits_2(tmp_path, override, named):
    done = run_script("run.py", [override], tmp_path)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow  # a few seconds of subprocesses; runs in make test-slow and CI
def test_a_missing_checkpoint_exits_2_naming_it(tmp_path):
    done = run_script("run.py", ["mode=test", f"ckpt_path={tmp_path}/none.ckpt"], tmp_path / "r")
    assert done.returncode == 2, done.stderr
    assert "none.ckpt" in done.stderr and "Traceback" not in done.stderr
