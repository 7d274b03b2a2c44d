"""Train once, evaluate everywhere: each job of a sweep as a training or an evaluation.

From the per-job decisions of ``sweep/resume.py`` (what the job's own directory holds) and the
jobs' training identities (``sweep/identity.py``), each job gets one step:

=================== ==========================================================================
``train``           the first job of its identity with no finished training anywhere: it trains
``resume``          it trains on from its own ``last.ckpt``
``reuse+evaluate``  its training is another job's (earlier in this sweep, or in the run store,
                    ``sweep/store.py``): ``mode=test`` with that job's ``last.ckpt``, once the
                    training finished
``skip``            finished
``held``            another live process runs it, or runs its training: not launched
``conflict``        its directory was made with other overrides (the sweep refuses to launch)
=================== ==========================================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ipe_lightning.results import read_record, write_record
from ipe_lightning.runtime.lock import Holder
from ipe_lightning.scales import scale_tag
from ipe_lightning.sweep.identity import training_config, training_identity
from ipe_lightning.sweep.resume import Decision
from ipe_lightning.sweep.store import RunStore, Training

TRAINING_STEPS = ("train", "resume")
LAUNCHED_STEPS = (*TRAINING_STEPS, "reuse+evaluate")


@dataclass(frozen=True)
class PlannedJob:
    """A job of a sweep as planned: its overrides and what identifies its training."""

    overrides: tuple[str, ...]
    identity: str
    training: dict[str, Any]
    run_store: str
    evaluations: dict[str, list[Any]] = field(default_factory=dict)  # set -> scales it asks for

    @classmethod
    def of(cls, overrides: Sequence[str], cfg: DictConfig) -> PlannedJob:
        sets = OmegaConf.select(cfg, "eval.sets") or {}
        return cls(
            overrides=tuple(overrides),
            identity=training_identity(cfg),
            training=training_config(cfg),
            run_store=str(OmegaConf.select(cfg, "paths.run_store") or ""),  # "": beside the sweep
            evaluations={
                name: list(OmegaConf.to_container(spec, resolve=True).get("scales") or [])
                for name, spec in sets.items()
                if spec
            },
        )


@dataclass(frozen=True)
class Step:
    name: str
    step: str  # train | resume | reuse+evaluate | skip | held | conflict
    identity: str
    source: Path | None = None  # reuse+evaluate: the job directory whose last.ckpt it evaluates
    reason: str = ""
    action: str = ""  # what the job's own directory asks for (sweep/resume.py)
    # reuse+evaluate of a finished job: the sets and scales it has not evaluated yet
    missing: dict[str, list[Any]] | None = None


def plan_steps(
    decisions: Sequence[Decision],
    identities: Mapping[str, str],
    sweep_dir: Path,
    store: RunStore | None,
    wanted: Mapping[str, Mapping[str, list[Any]]] | None = None,
) -> list[Step]:
    """One step per decision, in grid order (module doc): the first job of an identity trains,
    the later ones evaluate its checkpoint. A finished job whose overrides changed only what it
    evaluates (``wanted``: job -> set -> scales) evaluates what it lacks."""
    trained_here: dict[str, Path] = {}  # identity -> the job directory of this sweep training it
    steps = []
    for decision in decisions:
        identity, a = identities[decision.name], decision.action
        job_dir = Path(sweep_dir) / decision.name
        source = evaluated_training(job_dir, identity) if a == "conflict" else None
        if source is not None and wanted is not None:
            missing = missing_evaluations(wanted.get(decision.name, {}), job_dir)
            if not any(missing.values()):
                reason = "finished; every set and scale it asks for is evaluated"
                steps.append(Step(decision.name, "skip", identity, None, reason, "skip"))
            else:
                reason = f"finished, its training unchanged: evaluates {format_sets(missing)}"
                steps.append(
                    Step(
                        decision.name,
                        "reuse+evaluate",
                        identity,
                        source,
                        reason,
                        "evaluate",
                        missing,
                    )
                )
            continue
        if decision.action in ("skip", "held", "conflict"):
            steps.append(Step(decision.name, decision.action, identity, None, decision.reason, a))
            if decision.action == "skip" and Training(identity, job_dir).finished():
                trained_here.setdefault(identity, job_dir)
            continue
        if decision.action == "resume":
            trained_here.setdefault(identity, job_dir)
            steps.append(Step(decision.name, "resume", identity, None, decision.reason, a))
            continue
        source = trained_here.get(identity)
        stored = store.find(identity) if store is not None and source is None else None
        if stored is not None and stored.job_dir != job_dir:
            if stored.finished():
                source = stored.job_dir
            elif holder := stored.holder():
                who = holder.describe() if isinstance(holder, Holder) else "another process"
                reason = f"its training {stored.job_dir} is run by {who}"
                steps.append(Step(decision.name, "held", identity, None, reason, a))
                continue
        if source is not None:
            reason = f"evaluates {source.name}'s training ({source})"
            steps.append(Step(decision.name, "reuse+evaluate", identity, source, reason, a))
            continue
        trained_here[identity] = job_dir
        steps.append(Step(decision.name, "train", identity, None, decision.reason, a))
    return steps


def plan_summary(steps: Sequence[Step]) -> str:
    """``23 to train, 5 to evaluate only, 0 finished`` (and the held ones, if any)."""
    count = {
        name: sum(s.step == name for s in steps) for name in ("reuse+evaluate", "skip", "held")
    }
    trainings = sum(s.step in TRAINING_STEPS for s in steps)
    evaluations, finished = count["reuse+evaluate"], count["skip"]
    text = f"{trainings} to train, {evaluations} to evaluate only, {finished} finished"
    if count["held"]:
        text += f", {count['held']} run elsewhere"
    return text


def evaluation_overrides(step: Step) -> list[str]:
    """What turns a job's overrides into the evaluation of its source's training (of only the
    sets and scales it lacks, for a finished job)."""
    assert step.source is not None
    overrides = ["mode=test", f"ckpt_path={Training(step.identity, step.source).checkpoint}"]
    for name, scales in (step.missing or {}).items():
        if scales:
            overrides.append(f"eval.sets.{name}.scales=[{','.join(map(json.dumps, scales))}]")
        else:
            overrides.append(f"~eval.sets.{name}")
    return overrides


def evaluated_training(job_dir: Path, identity: str) -> Path | None:
    """The finished training a finished job evaluated (its own, or the one whose ``last.ckpt``
    it tested) if the job's recorded config trains ``identity``, else ``None``."""
    try:
        record = read_record(job_dir)
        recorded = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
        same = training_identity(recorded) == identity
    except Exception:  # unreadable or unresolvable: not ours to reuse (the conflict stands)
        return None
    if not same or not record or record.get("status") != "finished":
        return None
    source = job_dir
    if record.get("mode") == "test" and recorded.get("ckpt_path"):
        source = Path(str(recorded.ckpt_path)).parent.parent  # <job>/checkpoints/last.ckpt
    return source if Training(identity, source).finished() else None


def missing_evaluations(wanted: Mapping[str, list[Any]], job_dir: Path) -> dict[str, list[Any]]:
    """Per set, the scales of ``wanted`` that the job's ``metrics.json`` does not hold."""
    done = set((read_record(job_dir) or {}).get("metrics") or {})
    return {
        name: [s for s in scales if f"{name}/{scale_tag(s)}" not in done]
        for name, scales in wanted.items()
    }


def format_sets(missing: Mapping[str, list[Any]]) -> str:
    return ", ".join(
        f"{name} {' '.join(scale_tag(s) for s in scales)}"
        for name, scales in missing.items()
        if scales
    )


EVALUATION_DIR = "evaluation"  # <job>/evaluation: where a finished job's added evaluation runs


def merge_evaluation(job_dir: Path, overrides: Sequence[str]) -> bool:
    """Fold a finished ``<job>/evaluation`` into the job's ``metrics.json`` (its metrics added,
    its overrides now ``overrides``); ``False`` if that evaluation did not finish."""
    added = read_record(job_dir / EVALUATION_DIR)
    record = read_record(job_dir)
    if not added or added.get("status") != "finished" or not record:
        return False
    record["metrics"] = {**(record.get("metrics") or {}), **(added.get("metrics") or {})}
    record["overrides"] = list(overrides)
    write_record(job_dir, record)
    return True
