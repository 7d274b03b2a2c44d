"""The job's ``run.log`` holds what its console showed: the results table (titled by the run's
name, without Lightning's own test table), the resume message and the progress, as plain lines
when stdout is not a terminal."""

from __future__ import annotations

import pytest

from tests.support.runs import run_script, tiny_overrides

pytestmark = pytest.mark.slow  # two real run.py processes


def test_run_log_has_the_results_the_resume_and_plain_progress(tiny_hr_dir, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"),
        "run_name=my_variant",
        "callbacks.progress_bar.every_s=0",  # a line per step
    ]
    first = run_script("run.py", overrides, run_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    log = (run_dir / "run.log").read_text()
    # Our table, titled by run name (not the model, ipe_liif), in the log as on the console.
    for text in (log, first.stdout):
        assert "my_variant: test results (PSNR in dB)" in text
        assert "bicubic PSNR" in text and "folder/x2" in text
    assert "ipe_liif: test results" not in first.stdout
    # Lightning's own test table is off.
    assert "Test metric" not in first.stdout and "┃" not in first.stdout
    # Not a terminal: plain progress lines (debug=tiny: 2 epochs x 3 steps), no carriage returns.
    assert "[train] step 6/6 (100%)" in first.stdout and "[train] step 6/6 (100%)" in log
    assert "[val] step 3 val/psnr" in log
    assert "\r" not in first.stdout + first.stderr
    # Bare on the console, time-stamped in the file.
    assert "\nmy_variant: test results" in first.stdout
    assert "[ipe_lightning.runtime.progress][INFO] - [train] step 1/6" in log

    again = run_script("run.py", overrides, run_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = f"resuming from {run_dir / 'checkpoints' / 'last.ckpt'}"
    assert resumed in again.stdout and resumed in (run_dir / "run.log").read_text()
