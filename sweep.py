"""Paper-table sweeps: launch, resume, report (``ipe_lightning/sweep/cli.py`` has the details).

python sweep.py table4 data.root=/data                         # Table 4's jobs, then the report
python sweep.py table4 data.root=/data --sweep-dir multirun/table4/2024-05-01_12-00-00  # resume
python sweep.py table1 data.root=/data launcher=slurm hydra.launcher.partition=gpu
python sweep.py report multirun/table4/2024-05-01_12-00-00     # the report, at any time
"""

from __future__ import annotations

# Before torch is imported: in-process jobs keep their freed tensor buffers (allocator.py).
from ipe_lightning.allocator import keep_freed_memory

keep_freed_memory()

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from ipe_lightning.sweep.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(conf_dir=Path(__file__).resolve().parent / "conf"))
