"""``metrics.json``: what the writer stamps, the reader gets back, whatever version wrote it."""

from __future__ import annotations

import json
import math
import os
import stat

import pytest

from ipe_lightning.results import (
    RECORD_VERSION,
    JobResult,
    RecordVersionError,
    read_record,
    write_json_atomic,
    write_per_image,
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


def _refuse(constant: str):
    raise ValueError(f"bare {constant} in JSON")


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664)])
def test_records_and_manifests_get_the_permissions_the_umask_gives(tmp_path, mask, expected):
    saved = os.umask(mask)
    try:
        write_record(tmp_path, RECORD)
        write_json_atomic(tmp_path / "sweep.json", {"name": "table4"})
        write_per_image(tmp_path, [])
    finally:
        os.umask(saved)
    for name in ("metrics.json", "sweep.json", "per_image.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "metrics.json",
        "per_image.csv",
        "sweep.json",
    ]


def test_a_record_holds_no_bare_infinity_and_says_what_its_nulls_were(tmp_path):
    record = {
        **RECORD,
        "metrics": {"div2k/x1": {"psnr": 48.0, "bicubic_psnr": math.inf, "ssim": math.nan}},
    }
    written = write_record(tmp_path, record)
    on_disk = json.loads((tmp_path / "metrics.json").read_text(), parse_constant=_refuse)
    assert on_disk["metrics"]["div2k/x1"] == {"psnr": 48.0, "bicubic_psnr": None, "ssim": None}
    assert on_disk["non_finite"] == [
        {"at": ["metrics", "div2k/x1", "bicubic_psnr"], "value": "Infinity"},
        {"at": ["metrics", "div2k/x1", "ssim"], "value": "NaN"},
    ]
    back = read_record(tmp_path)
    assert (
        back["metrics"]["div2k/x1"]["bicubic_psnr"]
        == math.inf
        == written["metrics"]["div2k/x1"]["bicubic_psnr"]
    )
    assert math.isnan(back["metrics"]["div2k/x1"]["ssim"]) and "non_finite" not in back
    write_json_atomic(tmp_path / "sweep.json", {"values": [1.0, -math.inf]})
    assert json.loads((tmp_path / "sweep.json").read_text(), parse_constant=_refuse) == {
        "values": [1.0, None]
    }


def test_the_wandb_job_types_are_the_loggers():
    """The report leaves out evaluation runs by the job type the W&B logger gives them."""
    from ipe_lightning.results import EVAL_JOB_TYPE, TRAIN_JOB_TYPE
    from ipe_lightning.runtime import loggers

    assert (loggers.TRAIN_JOB_TYPE, loggers.EVAL_JOB_TYPE) == (TRAIN_JOB_TYPE, EVAL_JOB_TYPE)
    assert TRAIN_JOB_TYPE != EVAL_JOB_TYPE


def test_every_picture_of_a_debug_run_says_so():
    from ipe_lightning.results import debug_note

    assert debug_note("tiny") == "DEBUG RUN (debug=tiny): the numbers mean nothing"
