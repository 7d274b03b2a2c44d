"""A second sweep on one sweep directory leaves alone the jobs another live process has."""

from __future__ import annotations

from ipe_lightning.sweep.claims import CLAIMS_DIR, Claims, defer_held
from ipe_lightning.sweep.resume import Decision
from tests.runtime.test_lock import hold_in_another_process


def test_jobs_whose_run_directory_or_claim_is_held_are_not_launched(tmp_path):
    decisions = [
        Decision("training", "resume", "interrupted"),
        Decision("queued", "run", "new"),
        Decision("free", "rerun", "failed"),
        Decision("done", "skip", "finished"),
    ]
    running = hold_in_another_process(tmp_path / "training", "run")
    queued = hold_in_another_process(tmp_path / CLAIMS_DIR, "queued")
    try:
        deferred = {d.name: d for d in defer_held(tmp_path, decisions)}
        with Claims(tmp_path) as claims:
            claimed, held = claims.take(["queued", "free"])
    finally:
        for process in (running, queued):
            process.kill()
            process.wait()
    assert deferred["training"].action == "held"
    assert f"pid {running.pid}" in deferred["training"].reason
    assert deferred["queued"].action == "held" and f"pid {queued.pid}" in deferred["queued"].reason
    assert deferred["free"].action == "rerun" and deferred["done"].action == "skip"
    assert claimed == ["free"] and f"pid {queued.pid}" in held["queued"]


def test_claims_are_released_when_the_sweep_is_done_with_its_jobs(tmp_path):
    with Claims(tmp_path) as claims:
        assert claims.take(["a"]) == (["a"], {})
    assert defer_held(tmp_path, [Decision("a", "run", "new")])[0].action == "run"
