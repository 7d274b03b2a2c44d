"""Which jobs of a sweep to skip, resume or rerun, from what their directories hold.

A job's directory is ``<sweep_dir>/<job name>`` (deterministic, so a second launch finds it):

=============== ========================================================= ==============
state           on disk                                                   action
=============== ========================================================= ==============
``finished``    ``metrics.json`` with status finished                     ``skip``
``failed``      ``metrics.json`` with status failed                       ``rerun``
``preempted``   ``metrics.json`` with status preempted (SIGTERM)          ``resume``
``interrupted`` ``checkpoints/last.ckpt`` but no ``metrics.json`` (killed) ``resume``
``started``     the directory, but neither                                ``run``
``new``         nothing                                                   ``run``
``unreadable``  ``metrics.json`` of a newer record version                ``conflict``
=============== ========================================================= ==============

A job another live process runs (its run directory's lock or its claim is held,
``sweep/claims.py``) is ``held``: a second sweep on the same directory does not launch it.

``resume`` and ``rerun`` both launch the job again; ``run.py``'s ``resume=auto`` continues from
``last.ckpt`` when there is one (a failed job restarts from its last good checkpoint).

A job whose recorded overrides (``metrics.json``, else ``.hydra/overrides.yaml``) differ from the
planned ones is a ``conflict`` when it finished or left a checkpoint: the sweep refuses to launch
rather than overwrite a finished result or resume a checkpoint of another configuration. (A job
that failed before its first checkpoint just runs again, with the new overrides.) Overrides that
do not change what a job computes are not compared: :data:`EXECUTION_ONLY`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ipe_lightning.sweep_files import JobState

# Where and how a job runs or logs, not what it computes: a sweep started with `launcher=local
# logger=csv` may be resumed with `launcher=slurm logger=wandb`.
EXECUTION_ONLY = (
    "launcher",
    "logger",
    "tags",
    "hydra",
    "data.num_workers",
    "data.cache_dir",
    "paths",  # where runs and the run store are
    # set by the sweep itself when a job evaluates another job's training (sweep/steps.py)
    "mode",
    "ckpt_path",
)

# What a job directory holds (``sweep_files.read_job_state``) → what the sweep does with it.
ACTIONS = {
    "finished": "skip",
    "failed": "rerun",
    "preempted": "resume",
    "interrupted": "resume",
    "started": "run",
    "new": "run",
    "unreadable": "conflict",  # never overwrite what this code cannot read
}


@dataclass(frozen=True)
class Decision:
    name: str
    action: str  # skip | run | resume | rerun | conflict
    reason: str


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def compared_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """``key → value`` of the overrides that change what a job computes (last one wins)."""
    compared = {}
    for override in overrides:
        key = override_key(override)
        if any(key == prefix or key.startswith(prefix + ".") for prefix in EXECUTION_ONLY):
            continue
        if key.startswith("hydra/") or key.startswith("launcher/"):
            continue
        compared[key] = override.split("=", 1)[1] if "=" in override else ""
    return compared


def override_differences(recorded: Sequence[str], planned: Sequence[str]) -> list[str]:
    """What differs between two override lists, as ``key: recorded → planned`` lines."""
    before, after = compared_overrides(recorded), compared_overrides(planned)
    return [
        f"{key}: {before.get(key, '(unset)')} → {after.get(key, '(unset)')}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def decide(name: str, state: JobState, planned: Sequence[str]) -> Decision:
    differences = override_differences(state.overrides or (), planned)
    if state.overrides is not None and differences:
        changed = "; ".join(differences)
        if state.status == "finished":
            return Decision(name, "conflict", f"finished with other overrides: {changed}")
        if state.checkpoint:
            return Decision(
                name,
                "conflict",
                f"{state.status}, its last.ckpt made with other overrides: {changed} "
                "(delete its checkpoints/ to start it afresh)",
            )
        return Decision(name, "run", f"{state.status} before a checkpoint; overrides now {changed}")
    action = ACTIONS[state.status]
    reason = state.status + (f" ({state.note})" if state.note else "")
    return Decision(name, action, reason)
