"""Two writers on one sweep directory (real processes): the second sweep launches only the jobs
no live process holds, and says so."""

from __future__ import annotations

import pytest

from tests.runtime.test_lock import hold_in_another_process
from tests.support.runs import read_record, tiny_overrides
from tests.sweeps.support import run_sweep, write_sweep_file

pytestmark = pytest.mark.slow


def test_a_second_sweep_launches_only_the_jobs_no_live_process_holds(tiny_hr_dir, tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep_file = write_sweep_file(tmp_path / "seeds.yaml", "title: seeds\nparams:\n  seed: 1,2\n")
    arguments = [
        str(sweep_file),
        *tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"),
        f"sweep_dir={sweep_dir}",
    ]
    running = hold_in_another_process(sweep_dir / "seed-1", "run")  # e.g. the first sweep's job
    try:
        result = run_sweep(arguments, cwd=tmp_path)
    finally:
        running.kill()
        running.wait()
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    plan = next(line for line in result.stdout.splitlines() if "  seed-1 " in line)
    assert " held " in plan and f"pid {running.pid}" in plan
    assert "1 job(s) are run by other live processes and are not launched here: seed-1" in (
        result.stderr
    )
    assert not (sweep_dir / "seed-1" / "metrics.json").exists()
    assert read_record(sweep_dir / "seed-2")["status"] == "finished"
