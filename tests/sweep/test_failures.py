"""A sweep whose jobs fail shows each failed job with its one-line error (console summary,
``table.md``, ``sweep.json``) and exits 1; a job that failed before it could record its failure
gets its record from Hydra's ``JobReturn``, in its own directory (never one another process
holds)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from hydra.core.utils import JobReturn, JobStatus

from ipe_lightning.results import read_record
from ipe_lightning.sweep.cli import main
from ipe_lightning.sweep.failures import failed_returns, record_launch_failures
from tests.support.runs import REPO

MISSING = "DatasetNotFoundError: data.root not found: looked for the folder /does/not/exist."


def repository_outputs() -> dict[str, int]:
    """Every file under the repository's ``multirun/`` (the default sweep and store root)."""
    root = REPO / "multirun"
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")} if root.exists() else {}


def test_a_sweep_with_missing_data_shows_every_failure_and_exits_1(tmp_path, capsys):
    sweep_dir = tmp_path / "s"
    arguments = ["table4", "debug=tiny", "data.root=/does/not/exist", "--sweep-dir", f"{sweep_dir}"]
    before = repository_outputs()
    assert main([*arguments, "--no-preflight"]) == 1  # the run store at its default root
    assert repository_outputs() == before  # tests run outside the repository (conftest.py)
    out = capsys.readouterr().out
    summary = out[out.index("jobs finished; incomplete:") :]
    assert summary.count(f": failed {MISSING}") == 7, summary
    assert "started, no checkpoint yet" not in out
    table = (sweep_dir / "table.md").read_text()
    assert table.count(f"**failed**: {MISSING}") == 7
    failed = json.loads((sweep_dir / "sweep.json").read_text())["failed"]
    assert len(failed) == 7 and set(failed.values()) == {MISSING}
    record = read_record(sweep_dir / "table4_liif")
    assert record["status"] == "failed" and "Traceback" in record["traceback"]
    assert "Traceback" in (sweep_dir / "table4_liif" / "run.log").read_text()


def test_jobs_that_fail_before_recording_get_their_records_from_hydras_job_returns(
    tmp_path, monkeypatch
):
    import ipe_lightning.tasks

    def fails_unrecorded(cfg):  # as a job that dies before tasks.run records anything
        raise KeyError(f"lost {cfg.run_name}")

    monkeypatch.setattr(ipe_lightning.tasks, "run", fails_unrecorded)
    sweep_file = tmp_path / "two.yaml"
    sweep_file.write_text("title: two jobs\nparams:\n  experiment: table4_liif,table4_liif_pe\n")
    sweep_dir = tmp_path / "s"
    arguments = [str(sweep_file), "debug=tiny", "data.root=/nowhere", "--sweep-dir", f"{sweep_dir}"]
    assert main([*arguments, "--no-preflight"]) == 1  # Hydra's basic launcher, in-process
    for name in ("table4_liif", "table4_liif_pe"):
        record = read_record(sweep_dir / name)
        assert record["status"] == "failed" and record["error"] == f"KeyError: 'lost {name}'"
        assert f"experiment={name}" in record["overrides"]  # a resumed sweep compares them
    assert not (sweep_dir / "?").exists()
    failed = json.loads((sweep_dir / "sweep.json").read_text())["failed"]
    assert failed == {n: f"KeyError: 'lost {n}'" for n in ("table4_liif", "table4_liif_pe")}


def test_a_record_the_job_wrote_itself_is_kept(tmp_path):
    from ipe_lightning.results import write_record

    write_record(tmp_path / "job", {"status": "failed", "error": "ValueError: its own"})
    record_launch_failures(tmp_path, {"job": RuntimeError("secondary")}, {"job": []})
    assert read_record(tmp_path / "job")["error"] == "ValueError: its own"


def test_a_launch_failure_is_not_written_into_a_run_directory_another_process_holds(tmp_path):
    from tests.runtime.test_lock import hold_in_another_process

    holder = hold_in_another_process(tmp_path / "job")
    try:
        busy = RuntimeError(f"run directory {tmp_path / 'job'} is in use by pid {holder.pid}")
        record_launch_failures(tmp_path, {"job": busy}, {"job": []})
    finally:
        holder.kill()
        holder.wait()
    assert read_record(tmp_path / "job") is None  # the holder's directory, the holder's record


def test_failures_of_jobs_without_a_name_are_each_told_and_written_nowhere(tmp_path, capsys):
    returns = []
    for error in (KeyError("a"), ValueError("b")):  # a launcher that keeps no Hydra config
        job_return = JobReturn(overrides=["experiment=x"])
        job_return.status, job_return.return_value = JobStatus.FAILED, error
        returns.append(job_return)
    ok = SimpleNamespace(status=JobStatus.COMPLETED)
    failures = failed_returns([*returns, ok])
    assert len(failures) == 2
    record_launch_failures(tmp_path, failures, {"x": ["experiment=x"]})
    assert list(tmp_path.iterdir()) == []
    err = capsys.readouterr().err
    assert "KeyError: 'a'" in err and "ValueError: b" in err
