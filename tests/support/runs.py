"""Run the real entry point on real configs, in-process (compose) or as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[2]
CONF_DIR = REPO / "conf"


def tiny_overrides(hr_dir: Path, cache_dir: Path, scales: str = "[2,3]") -> list[str]:
    """Train and test on a tiny HR folder with the `tiny` debug schedule."""
    return [
        "data=folder",
        f"data.train_dir={hr_dir}",
        f"data.val_dir={hr_dir}",
        f"data.cache_dir={cache_dir}",
        "eval=folder",
        f"eval.root={hr_dir}",
        f"eval.scales={scales}",
        "debug=tiny",
        "logger=csv",
    ]


def compose_config(overrides: list[str], output_dir: Path | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    if output_dir is not None:
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir)
    return cfg


def run_in_process(overrides: list[str], output_dir: Path) -> dict[str, Any]:
    from ipe_lightning.tasks import run

    return run(compose_config(overrides, output_dir))


def run_script(
    script: str, overrides: list[str], output_dir: Path | None, timeout: float = 300, **kwargs
) -> subprocess.CompletedProcess:
    args = [sys.executable, str(REPO / script), *overrides]
    if output_dir is not None:
        args.append(f"hydra.run.dir={output_dir}")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **kwargs.pop("env", {})}
    return subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env, **kwargs
    )


def read_record(output_dir: Path) -> dict[str, Any]:
    return json.loads((Path(output_dir) / "metrics.json").read_text())
