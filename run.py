"""Train, test or predict with one composed config.

python run.py                                   # the embedded default (bundled photos)
python run.py experiment=table1_edsr_baseline_ipe_liif data.root=/data
python run.py mode=test ckpt_path=run/checkpoints/last.ckpt eval=folder eval.root=/my/hr

Exit status: 0 done, 1 a failure of the code (with its traceback), 2 an error in what was asked
(an unknown option, a bad value, missing data or checkpoint: one message, no traceback; set
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
_job_started = False  # Hydra exits 1 both for a config that does not compose and a failed job


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    global _job_started
    _job_started = True
    from ipe_lightning.errors import find_user_error
    from ipe_lightning.report_console import print_record, print_wall_time
    from ipe_lightning.tasks import run

    try:
        record = run(cfg)
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise  # a bug: Hydra prints the traceback and exits 1
        print(f"run.py: {user_error}", file=sys.stderr)
        print("(HYDRA_FULL_ERROR=1 shows the traceback)", file=sys.stderr)
        raise SystemExit(USER_ERROR_EXIT) from None
    if record:
        print_record(record)
    print_wall_time(time.monotonic() - _STARTED)


if __name__ == "__main__":
    try:
        main()
    except SystemExit as stop:
        if stop.code == 1 and not _job_started:  # Hydra printed why the config does not compose
            raise SystemExit(USER_ERROR_EXIT) from None
        raise
