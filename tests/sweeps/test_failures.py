"""A sweep whose jobs fail shows each failed job with its one-line error (console summary,
``table.md``, ``sweep.json``) and exits 1; a job that failed before it could record its failure
gets its record from Hydra's ``JobReturn``."""

from __future__ import annotations

import json
from types import SimpleNamespace

from hydra.core.utils import JobReturn, JobStatus

from ipe_lightning.results import read_record
from ipe_lightning.sweeps.cli import main
from ipe_lightning.sweeps.failures import failed_returns, record_launch_failures

MISSING = "DatasetNotFoundError: data.root not found: looked for the folder /does/not/exist."


def test_a_sweep_with_missing_data_shows_every_failure_and_exits_1(tmp_path, capsys):
    sweep_dir = tmp_path / "s"
    arguments = ["table4", "debug=tiny", "data.root=/does/not/exist", f"sweep_dir={sweep_dir}"]
    assert main([*arguments, "preflight=false"]) == 1
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


def failed_return(name: str, error: BaseException) -> JobReturn:
    job_return = JobReturn(overrides=["experiment=x", f"hydra.sweep.subdir={name}"])
    job_return.status, job_return.return_value = JobStatus.FAILED, error
    return job_return


def test_a_job_that_failed_before_recording_gets_its_record_from_the_job_return(tmp_path):
    ok = JobReturn(overrides=["hydra.sweep.subdir=fine"])
    ok.status, ok.return_value = JobStatus.COMPLETED, {}
    failures = failed_returns([ok, failed_return("broken", KeyError("paths"))])
    assert list(failures) == ["broken"]
    record_launch_failures(tmp_path, failures, {"broken": ["experiment=x"]})
    record = read_record(tmp_path / "broken")
    assert record["status"] == "failed" and record["error"] == "KeyError: 'paths'"
    assert record["overrides"] == ["experiment=x"]  # a resumed sweep compares them
    assert not (tmp_path / "fine").exists()


def test_a_record_the_job_wrote_itself_is_kept(tmp_path):
    from ipe_lightning.results import write_record

    write_record(tmp_path / "job", {"status": "failed", "error": "ValueError: its own"})
    record_launch_failures(tmp_path, {"job": RuntimeError("secondary")}, {})
    assert read_record(tmp_path / "job")["error"] == "ValueError: its own"


def test_job_return_without_subdir_is_still_counted():
    job_return = failed_return("x", ValueError("v"))
    job_return.overrides = []
    assert list(failed_returns([job_return, SimpleNamespace(status=JobStatus.COMPLETED)])) == ["?"]
