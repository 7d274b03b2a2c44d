"""A sweep's plan: every job's overrides and step, as one frozen value.

The plan is made once from the sweep file, the command line and what the sweep directory and the
run store hold (:func:`make_plan`); printing it is the dry run (``sweep.py <sweep> --dry-run``):
per job what its directory asks for, why, and its step (``sweep/steps.py``), then the overrides of
each job to launch and the summary line (``23 to train, 5 to evaluate only, 0 finished``).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipe_lightning.sweep.claims import defer_held
from ipe_lightning.sweep.definitions import SweepDefinition
from ipe_lightning.sweep.launch import compose_job
from ipe_lightning.sweep.resume import decide
from ipe_lightning.sweep.steps import (
    EVALUATION_DIR,
    LAUNCHED_STEPS,
    PlannedJob,
    Step,
    evaluation_overrides,
    plan_steps,
    plan_summary,
)
from ipe_lightning.sweep.store import RunStore, default_run_store
from ipe_lightning.sweep_files import (
    Manifest,
    SweepDefinitionError,
    read_job_state,
    read_manifest,
)
from ipe_lightning.table_layout import layout_to_dict

_SAFE_TAG = re.compile(r"^[\w.-]+$")


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep will do: its directory, W&B group, jobs (overrides and training identity)
    and each job's step, in grid order."""

    definition: SweepDefinition
    sweep_dir: Path
    group: str
    created: str  # the sweep directory's first launch (its timestamp)
    jobs: Mapping[str, PlannedJob]
    steps: tuple[Step, ...]
    hydra_overrides: tuple[str, ...] = ()  # the command line's hydra.* overrides
    task_overrides: tuple[str, ...] = ()  # the command line's other overrides
    command: tuple[str, ...] = ()  # sweep.py's arguments, for the manifest

    @property
    def store(self) -> RunStore:
        chosen = next(iter(self.jobs.values())).run_store
        return RunStore(chosen or default_run_store(self.sweep_dir))

    @property
    def overrides(self) -> dict[str, list[str]]:
        """Each job's full override list (name → overrides)."""
        return {name: list(job.overrides) for name, job in self.jobs.items()}

    def with_steps(self, steps: Sequence[Step]) -> SweepPlan:
        return dataclasses.replace(self, steps=tuple(steps))

    def of(self, step_names: Sequence[str]) -> list[Step]:
        return [s for s in self.steps if s.step in step_names]

    def job_overrides(self, step: Step) -> list[str]:
        """The step's overrides: the job's, and for an evaluation of a training what turns
        them into it."""
        overrides = list(self.jobs[step.name].overrides)
        if step.step == "reuse+evaluate":
            overrides += evaluation_overrides(step)
        return overrides

    def launch_list(self, steps: Sequence[Step]) -> list[list[str]]:
        """Each step's overrides and directory (a finished job's added evaluation runs beside
        its results, and is merged into them after)."""
        return [[*self.job_overrides(s), f"hydra.sweep.subdir={s.name}{subdir(s)}"] for s in steps]

    def master_overrides(self) -> list[str]:
        """What every launched job shares: the sweep directory, the command line's hydra.*
        overrides, and the sweep's and the command line's overrides."""
        return [
            f"hydra.sweep.dir={hydra_value(str(self.sweep_dir))}",
            *self.hydra_overrides,
            *self.definition.extra_overrides(self.task_overrides),
            *self.task_overrides,
        ]

    def manifest(self) -> Manifest:
        definition = self.definition
        return Manifest(
            sweep=definition.name,
            definition=str(definition.path),
            title=definition.title,
            created=self.created,
            group=self.group,
            jobs=[{"name": name, "overrides": o} for name, o in self.overrides.items()],
            layout=layout_to_dict(definition.layout) if definition.layout else None,
            command=list(self.command),
        )

    def table_text(self) -> str:
        """Per job: what its directory asks for, why, and its step."""
        width = max(len(s.name) for s in self.steps)
        lines = [f"[sweep] {self.sweep_dir}"]
        lines += [
            f"[sweep]   {s.name:<{width}}  {s.action:<8}  {s.reason}  [{s.step}]"
            for s in self.steps
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        """The dry run: the table, each job to launch with its overrides, the summary."""
        lines = [self.table_text()]
        lines += [f"[sweep] {s.name}: {' '.join(self.job_overrides(s))}" for s in self.launched]
        lines.append(f"[sweep] {plan_summary(self.steps)}")
        return "\n".join(lines)

    @property
    def launched(self) -> list[Step]:
        return self.of(LAUNCHED_STEPS)


def subdir(step: Step) -> str:
    return f"/{EVALUATION_DIR}" if step.missing is not None else ""


def make_plan(
    hydra: Any,
    definition: SweepDefinition,
    overrides: Sequence[str],
    sweep_dir: str | None = None,
    command: Sequence[str] = (),
) -> SweepPlan:
    """The plan of ``definition`` with the command line's ``overrides`` in ``sweep_dir``
    (default ``multirun/<sweep>/<timestamp>``); every job's config is composed once, so a bad
    override fails here (Hydra's and OmegaConf's errors, :class:`SweepDefinitionError`)."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    where = Path(sweep_dir or f"multirun/{definition.name}/{stamp}").expanduser().resolve()
    manifest = read_manifest(where)
    if manifest is not None and manifest.sweep != definition.name:
        raise SweepDefinitionError(
            f"{where} holds the sweep {manifest.sweep!r}, not {definition.name!r}"
        )
    group = manifest.group if manifest else f"{definition.name}_{stamp}"
    task_overrides = [o for o in overrides if not is_hydra_override(o)]
    jobs = plan_jobs(hydra, definition, task_overrides, group)
    plan = SweepPlan(
        definition=definition,
        sweep_dir=where,
        group=group,
        created=manifest.created if manifest else stamp,
        jobs=jobs,
        steps=(),
        hydra_overrides=tuple(o for o in overrides if is_hydra_override(o)),
        task_overrides=tuple(task_overrides),
        command=tuple(command),
    )
    return plan.with_steps(job_steps(plan))


def plan_jobs(
    hydra: Any, definition: SweepDefinition, command_line: Sequence[str], group: str
) -> dict[str, PlannedJob]:
    """Every job's :class:`PlannedJob`: its full override list and its training identity.

    Order: the grid's, the sweep file's, the command line's, then what the sweep sets per job:
    ``run_name`` (= the job name), ``tags`` (the job's own + sweep name + job name) and, when the
    job logs to W&B, ``logger.wandb.group``.
    """
    extra = definition.extra_overrides(command_line)
    planned = {}
    for job in definition.jobs(config_loader=getattr(hydra, "config_loader", None)):
        base = [*job.overrides, *extra, *command_line, f"run_name={job.name}"]
        cfg = compose_job(hydra, base)
        overrides = [
            *base,
            f"tags={tag_list([*(cfg.get('tags') or []), definition.name, job.name])}",
        ]
        if "wandb" in (cfg.get("logger") or {}):
            overrides.append(f"logger.wandb.group={group}")
        planned[job.name] = PlannedJob.of(overrides, cfg)
    return planned


def job_steps(plan: SweepPlan) -> list[Step]:
    """Each job's step, from its directory, the other live processes and the run store."""
    sweep_dir = plan.sweep_dir
    decisions = [
        decide(name, read_job_state(sweep_dir / name), job.overrides)
        for name, job in plan.jobs.items()
    ]
    decisions = defer_held(sweep_dir, decisions)
    identities = {n: j.identity for n, j in plan.jobs.items()}
    wanted = {n: j.evaluations for n, j in plan.jobs.items()}
    return plan_steps(decisions, identities, sweep_dir, plan.store, wanted)


def is_hydra_override(override: str) -> bool:
    key = override.split("=", 1)[0].lstrip("+~")
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def tag_list(tags: Sequence[str]) -> str:
    unique = list(dict.fromkeys(str(t) for t in tags))
    return "[" + ",".join(t if _SAFE_TAG.match(t) else repr(t) for t in unique) + "]"


def hydra_value(text: str) -> str:
    """``text`` as an override value: quoted unless Hydra reads it as it is (paths with spaces)."""
    if re.fullmatch(r"[\w./:+-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
