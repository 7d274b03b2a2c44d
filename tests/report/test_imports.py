"""The report tool reads result files only: importing any of it loads no Hydra, OmegaConf,
Lightning or torch (a laptop without the training stack can report on a sweep)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("hydra", "omegaconf", "pytorch_lightning", "lightning", "torch")


def loaded_by(modules: list[str]) -> list[str]:
    """Which of :data:`HEAVY` a fresh interpreter has loaded after importing ``modules``."""
    code = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in modules)
        + f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_no_report_module_imports_hydra_omegaconf_lightning_or_torch():
    modules = sorted(
        "ipe_lightning.report." + path.stem
        for path in (REPO / "ipe_lightning" / "report").glob("*.py")
        if path.stem != "__init__"
    )
    assert "ipe_lightning.report.command" in modules and len(modules) >= 9
    assert loaded_by(modules) == []


def test_the_check_sees_a_heavy_import():
    loaded = loaded_by(["ipe_lightning.sweep.launch", "ipe_lightning.figure.figure"])
    assert {"hydra", "omegaconf", "torch"} <= set(loaded)
