"""Paper-table sweeps: launch, resume, report (``ipe_lightning/sweeps/cli.py`` has the details).

python sweep.py table4 data.root=/data                         # Table 4's jobs, then the report
python sweep.py table4 data.root=/data sweep_dir=multirun/table4/2024-05-01_12-00-00   # resume
python sweep.py table1 data.root=/data launcher=slurm hydra.launcher.partition=gpu
python sweep.py report multirun/table4/2024-05-01_12-00-00     # the report, at any time
"""

from __future__ import annotations

import sys
from pathlib import Path

from ipe_lightning.sweeps.cli import main

if __name__ == "__main__":
    sys.exit(main(conf_dir=Path(__file__).resolve().parent / "conf"))
