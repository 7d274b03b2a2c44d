"""The console table of a run's results: titled by the run's name, columns that say what they
hold, printed to the console and the job's log (also outside a Hydra job)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from ipe_lightning.report_console import (
    format_duration,
    format_record,
    print_record,
    print_wall_time,
)

RECORD = {
    "model": "ipe_liif",
    "run_name": "table4_ipe_liif_l4",
    "metrics": {
        "div2k/x2": {"psnr": 34.61, "ssim": 0.9412, "bicubic_psnr": 31.01, "bicubic_ssim": 0.9},
    },
}


def test_the_columns_say_which_numbers_are_bicubic():
    header, row = format_record(RECORD).splitlines()
    assert header.split() == [
        "set/scale",
        "PSNR",
        "bicubic",
        "PSNR",
        "gain",
        "SSIM",
        "bicubic",
        "SSIM",
    ]
    assert "bicubic PSNR" in header and "bicubic SSIM" in header
    assert row.split() == ["div2k/x2", "34.61", "31.01", "+3.60", "0.9412", "0.9000"]


def test_the_table_is_titled_by_the_run_name_not_the_model(caplog):
    # The five Table 4 variants share the model ipe_liif; each must be told apart.
    with caplog.at_level(logging.INFO, logger="ipe_lightning"):
        print_record(RECORD)
    assert "table4_ipe_liif_l4: test results (PSNR in dB)" in caplog.text
    assert "ipe_liif: test results" not in caplog.text
    assert caplog.records[0].name.startswith("ipe_lightning")


def test_outside_a_hydra_job_the_table_still_reaches_the_console():
    # Nothing configures logging here: Python's last resort would drop INFO messages.
    script = (
        "import json, sys\n"
        "from ipe_lightning.report_console import print_record\n"
        "print_record(json.loads(sys.argv[1]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(RECORD)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "table4_ipe_liif_l4: test results (PSNR in dB)" in done.stdout
    assert "div2k/x2" in done.stdout and done.stderr == ""


def test_durations_read_as_minutes_and_seconds():
    assert format_duration(7.26) == "7.3 s"
    assert format_duration(452.4) == "7 min 32 s"
    assert format_duration(60) == "1 min 00 s"
    assert format_duration(3 * 3600 + 125) == "3 h 02 min"


def test_the_wall_time_is_the_runs_last_message(caplog):
    with caplog.at_level(logging.INFO, logger="ipe_lightning"):
        print_wall_time(481.0)
    assert caplog.messages[-1] == "run.py finished in 8 min 01 s (wall time, start-up included)"
