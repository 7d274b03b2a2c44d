"""Train, test or predict with one composed config.

python run.py                                   # the embedded default (bundled photos)
python run.py experiment=table1_edsr_baseline_ipe_liif data.root=/data
python run.py mode=test ckpt_path=run/checkpoints/last.ckpt eval=folder eval.root=/my/hr

Exit status: 0 done, 1 a failure of the code (with its traceback), 2 an error in what was asked
(an unknown option, a bad value, missing data or checkpoint) or a write the machine refuses (a
read-only run or cache directory, a full disk): one message, no traceback (set
``HYDRA_FULL_ERROR=1`` to see it), 130/143 interrupted or preempted after saving ``last.ckpt``.
"""

from __future__ import annotations

import time

_STARTED = time.monotonic()  # before torch and Lightning are imported

# First, before anything imports torch: keep freed tensor buffers in the heap (this process, its
# DataLoader workers and DDP ranks; ipe_lightning/allocator.py says why and how to switch it off).
from ipe_lightning.allocator import keep_freed_memory  # noqa: E402

keep_freed_memory()

import os  # noqa: E402
import sys  # noqa: E402

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

USER_ERROR_EXIT = 2
# Set by the user: every error keeps its traceback. Else run.py sets it while Hydra prepares the
# job, so that what fails there (a read-only run directory, its log file) reaches run.py rather
# than Hydra's report, and unsets it when the job starts (DDP ranks and workers inherit os.environ).
FULL_ERROR_ASKED = os.environ.get("HYDRA_FULL_ERROR") == "1"
_job_started = False  # Hydra exits 1 both for a config that does not compose and a failed job


def refuse(message: str) -> None:
    """Print ``message`` alone, as one ``run.py:`` message, and exit 2."""
    print(f"run.py: {message}", file=sys.stderr)
    raise SystemExit(USER_ERROR_EXIT)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    global _job_started
    _job_started = True
    if not FULL_ERROR_ASKED:
        os.environ.pop("HYDRA_FULL_ERROR", None)
    from ipe_lightning.errors import user_message
    from ipe_lightning.report_console import print_record, print_wall_time
    from ipe_lightning.tasks import run

    try:
        record = run(cfg)
    except Exception as error:
        message = None if FULL_ERROR_ASKED else user_message(error)
        if message is None:
            raise  # a bug: Hydra prints the traceback and exits 1
        refuse(message)
    if record:
        print_record(record)
    print_wall_time(time.monotonic() - _STARTED)


def before_the_job(error: Exception) -> None:
    """Tell what failed before the job started, where Hydra composes the config and prepares
    the run directory: a config that does not compose, a setting, a folder the machine refuses
    to write (exit 2, one message); anything else is a bug and keeps its traceback."""
    from ipe_lightning.errors import config_message, user_message

    message = config_message(error) or user_message(error)
    if message is None or FULL_ERROR_ASKED:
        raise error
    refuse(message)


if __name__ == "__main__":
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except SystemExit as stop:
        if stop.code == 1 and not _job_started:  # Hydra printed why the config does not compose
            raise SystemExit(USER_ERROR_EXIT) from None
        raise
    except Exception as error:  # raised before the job started: its own errors are told in main
        before_the_job(error)
