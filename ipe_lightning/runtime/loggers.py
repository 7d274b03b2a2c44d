"""Loggers from config, with W&B that never prompts and never leaks state between jobs."""

from __future__ import annotations

import contextlib
import netrc
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

WANDB_HOST = "api.wandb.ai"


def wandb_credentials_available() -> bool:
    """An API key in the environment or in ~/.netrc (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators(WANDB_HOST) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_reachable(timeout: float = 3.0) -> bool:
    host = os.environ.get("WANDB_BASE_URL", f"https://{WANDB_HOST}").split("://")[-1].split("/")[0]
    try:
        with socket.create_connection((host.split(":")[0], 443), timeout=timeout):
            return True
    except OSError:
        return False


def wandb_should_run_offline() -> str | None:
    """Why W&B must log offline, or ``None`` when it can log online."""
    if os.environ.get("WANDB_MODE") in {"offline", "dryrun"}:
        return "WANDB_MODE is offline"
    if not wandb_credentials_available():
        return "no W&B credentials (WANDB_API_KEY or `wandb login`)"
    if not wandb_reachable():
        return f"{WANDB_HOST} is not reachable"
    return None


def build_loggers(logger_cfg: DictConfig | None) -> list[Any]:
    """Instantiate every logger of the ``logger`` group; W&B goes offline when it must."""
    loggers = []
    for spec in (logger_cfg or {}).values():
        if spec is None:
            continue
        overrides: dict[str, Any] = {}
        if "WandbLogger" in str(spec.get("_target_", "")):
            reason = wandb_should_run_offline() if not spec.get("offline") else "offline=true"
            if reason:
                print(f"[ipe-lightning] W&B logs offline ({reason}); sync later with `wandb sync`.")
                overrides["offline"] = True
            Path(spec.save_dir).mkdir(parents=True, exist_ok=True)
            import wandb

            overrides["settings"] = wandb.Settings(silent=True)  # no banners, never a prompt
        loggers.append(instantiate(spec, **overrides, _convert_="all"))
    return loggers


@contextlib.contextmanager
def isolated_wandb_run() -> Iterator[None]:
    """Finish the W&B run and restore ``WANDB_*`` variables when a job ends, even on error.

    ``WandbLogger`` reuses an active run and its ``offline=True`` sets ``WANDB_MODE`` in the
    process, so consecutive jobs of one multirun would otherwise share a run or stay offline.
    """
    saved = {key: value for key, value in os.environ.items() if key.startswith("WANDB_")}
    try:
        yield
    finally:
        try:
            wandb = sys.modules.get("wandb")  # never imported: no run to finish
            if wandb is not None and getattr(wandb, "run", None) is not None:
                wandb.finish()
        finally:
            for key in [k for k in os.environ if k.startswith("WANDB_")]:
                if key not in saved:
                    del os.environ[key]
            os.environ.update(saved)
