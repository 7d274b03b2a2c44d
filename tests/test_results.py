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


@pytest.mark.parametrize(
    ("content", "why"),
    [('{"status": "fini', "not JSON"), ("[1, 2]", "a JSON list, not an object")],
)
def test_a_record_that_is_there_but_cannot_be_read_says_why(tmp_path, content, why):
    from ipe_lightning.results import UnreadableRecordError, load_record

    assert load_record(tmp_path) is None  # none at all: nothing to say
    (tmp_path / "metrics.json").write_text(content)
    with pytest.raises(UnreadableRecordError, match=why):
        load_record(tmp_path)


def test_a_result_knows_how_many_images_of_its_set_it_measured():
    record = {
        **RECORD,
        "images": {"div2k/x2": 99},
        "skipped": {"div2k": {"/d/0842.png": "OSError: truncated"}},
    }
    result = JobResult.from_record(record)
    assert result.set_size("div2k/x2") == (99, 100)
    assert (
        JobResult.from_record({**RECORD, "images": {"div2k/x2": 100}}).set_size("div2k/x2") is None
    )


def _rows(values: dict[str, list[float]]) -> list[dict]:
    return [
        {"set": "div2k", "scale": loader.rpartition("/x")[2], "image": f"{i}", "psnr": v}
        for loader, scores in values.items()
        for i, v in enumerate(scores)
    ]


def test_per_image_rows_that_stand_for_their_record_raise_no_problem():
    from ipe_lightning.results import per_image_problems

    result = JobResult("finished", {"div2k/x2": {"psnr": 31.0}}, images={"div2k/x2": 3})
    assert per_image_problems(result, _rows({"div2k/x2": [30.0, 31.0, 32.0]})) == {}
    assert per_image_problems(result, []) == {}  # no per-image file: nothing to compare


@pytest.mark.parametrize(
    ("scores", "images", "why"),
    [
        ([30.0, math.nan, 32.0], 3, "no finite PSNR for 1 of 3 images (1)"),
        ([30.0, 32.0], 3, "2 rows in per_image.csv for 3 images measured"),
        ([30.0, 32.5], None, "per-image mean psnr 31.2500, metrics.json 31.0000"),
    ],
)
def test_per_image_rows_that_disagree_with_their_record_say_how(scores, images, why):
    from ipe_lightning.results import per_image_problems

    counts = {"div2k/x2": images} if images else {}
    metrics = {"div2k/x2": {"psnr": 31.0}, "div2k/x3": {"psnr": 29.0}}
    result = JobResult("finished", metrics, images=counts)
    problems = per_image_problems(result, _rows({"div2k/x2": scores, "div2k/x3": [29.0]}))
    assert problems == {"div2k/x2": why}
    missing = per_image_problems(result, _rows({"div2k/x3": [29.0]}))
    assert missing == {"div2k/x2": "no rows in per_image.csv"}
