"""``metrics.json``: what the writer stamps, the reader gets back, whatever version wrote it."""

from __future__ import annotations

import json

import pytest

from ipe_lightning.results import (
    RECORD_VERSION,
    JobResult,
    RecordVersionError,
    read_record,
    write_record,
)

RECORD = {
    "status": "finished",
    "overrides": ["seed=1"],
    "metrics": {"div2k/x2": {"psnr": 34.7, "bicubic_psnr": 31.0}},
}


def test_the_reader_gets_back_what_the_writer_wrote_with_its_version(tmp_path):
    written = write_record(tmp_path, RECORD)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == written == {"version": RECORD_VERSION, **RECORD}
    assert read_record(tmp_path) == written


def test_a_record_without_a_version_is_read_as_the_pre_versioned_form(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(RECORD))  # as written before versions
    assert read_record(tmp_path) == {**RECORD, "version": RECORD_VERSION}


@pytest.mark.parametrize("version", [RECORD_VERSION + 1, "1", -1, True])
def test_a_record_of_an_unknown_version_is_refused(tmp_path, version):
    (tmp_path / "metrics.json").write_text(json.dumps({**RECORD, "version": version}))
    with pytest.raises(RecordVersionError):
        read_record(tmp_path)


@pytest.mark.parametrize("content", [None, "{not json", "[1, 2]"])
def test_no_record_or_a_record_that_is_not_a_json_object_reads_as_none(tmp_path, content):
    if content is not None:
        (tmp_path / "metrics.json").write_text(content)
    assert read_record(tmp_path) is None


def test_a_finished_record_without_test_metrics_is_a_failed_job():
    result = JobResult.from_record({"status": "finished", "metrics": {}})
    assert (result.status, result.note) == ("failed", "finished without test metrics")
    failed = JobResult.from_record({"status": "failed", "error": "OSError: disk full"})
    assert (failed.status, failed.note) == ("failed", "OSError: disk full")
