"""Preflight: before anything is queued, every job's config composes, its settings pass the
job's own checks (``tasks.check_settings``: mode, seed, and every value's range by
:mod:`ipe_lightning.settings`, as run.py checks them), its model parts build and its data roots
and paired LR files exist, so a typo fails in seconds on the submitting host, not after a queue
wait. Each problem is told by its cause (``errors.one_line``), which names the option.

The data is checked by the data module's own ``check`` with header scans only (``cache`` off for
the check: no decoding, nothing written). Jobs with the same data are checked once. Clusters whose
data is mounted only on the compute nodes skip it: ``sweep.py <sweep> --no-preflight``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra.utils import instantiate
from omegaconf import OmegaConf

from ipe_lightning.errors import one_line
from ipe_lightning.sweep.launch import compose_job
from ipe_lightning.tasks import check_settings


def check_job(hydra: Any, overrides: Sequence[str], checked: dict[str, str | None]) -> str | None:
    """Why the job with ``overrides`` cannot start (one line, told by its cause rather than by
    Hydra's ``InstantiationException``), or ``None``."""
    try:
        cfg = compose_job(hydra, overrides)
        check_settings(cfg)  # mode, seed, every value in its range
        instantiate(cfg.model.net)  # bad parts and values (an encoding's bandwidth, ...)
        if cfg.mode == "predict":
            return None
        stage = "test" if cfg.mode == "test" else None
        key = f"{stage}\n{OmegaConf.to_yaml(cfg.data, resolve=True)}"
        if key not in checked:
            checked[key] = None
            try:
                instantiate(cfg.data).check_headers(stage)  # decoding is the job's
            except Exception as error:
                checked[key] = one_line(error)
        return checked[key]
    except Exception as error:
        return one_line(error)


def preflight(hydra: Any, jobs: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """``job name → problem`` for each job of ``jobs`` (name → overrides) that cannot start."""
    checked: dict[str, str | None] = {}
    problems = {name: check_job(hydra, overrides, checked) for name, overrides in jobs.items()}
    return {name: problem for name, problem in problems.items() if problem}


def passes_preflight(hydra: Any, jobs: Mapping[str, Sequence[str]]) -> bool:
    """Run :func:`preflight` and print each problem; ``True`` when every job can start."""
    import sys

    if not jobs:
        return True
    print(
        f"[sweep] preflight: checking {len(jobs)} job(s), image files by their headers "
        "(skip it with --no-preflight)"
    )
    problems = preflight(hydra, jobs)
    for name, problem in problems.items():
        print(f"[sweep] preflight: {name}: {problem}", file=sys.stderr)
    if problems:
        print(
            f"[sweep] preflight: {len(problems)} of {len(jobs)} job(s) cannot start; nothing "
            "launched (data mounted only on the compute nodes? --no-preflight)",
            file=sys.stderr,
        )
    return not problems
