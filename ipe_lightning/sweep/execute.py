"""Carry out a sweep's plan: claim its jobs, launch the trainings, then the evaluations that need
them, and say what failed.

Under the sweep directory's lock the plan's steps are made again (another sweep may have claimed
jobs since), the manifest ``sweep.json`` is written, the jobs to launch are claimed
(``sweep/claims.py``) and the trainings registered in the run store (``sweep/store.py``). The
claims are held until the jobs are done.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ipe_lightning.sweep.claims import Claims, planning_lock
from ipe_lightning.sweep.failures import failed_returns
from ipe_lightning.sweep.plan import SweepPlan, job_steps
from ipe_lightning.sweep.steps import TRAINING_STEPS, Step, merge_evaluation, plan_summary
from ipe_lightning.sweep.store import Training
from ipe_lightning.sweep_files import write_manifest


@dataclass(frozen=True)
class Outcome:
    """What a sweep's launch left: its exit status (0, or that of a job that did not finish or
    a stopped launch) and the exceptions of the jobs that failed (job name → exception)."""

    exit_code: int
    failures: dict[str, BaseException] = field(default_factory=dict)


def execute(hydra: Any, plan: SweepPlan) -> Outcome:
    """Launch the plan's trainings, then its evaluations (module doc)."""
    with Claims(plan.sweep_dir) as claims:
        with planning_lock(plan.sweep_dir):
            plan = plan.with_steps(job_steps(plan))  # again: another sweep may have claimed
            write_manifest(plan.sweep_dir, plan.manifest())
            launched, held = claims.take(s.name for s in plan.launched)
            for step in plan.of(TRAINING_STEPS):
                if step.name in launched:
                    job = plan.jobs[step.name]
                    plan.store.register(step.identity, plan.sweep_dir / step.name, job.training)
        for reason in held.values():  # claimed by a sweep that planned while this one waited
            print(f"[sweep] not launching: {reason}", file=sys.stderr)
        print(f"[sweep] {plan_summary(plan.steps)}")
        failures: dict[str, BaseException] = {}
        trainings = [s for s in plan.of(TRAINING_STEPS) if s.name in launched]
        exit_code = launch_and_wait(hydra, plan, trainings, failures) if trainings else 0
        evaluations = [s for s in plan.of(["reuse+evaluate"]) if s.name in launched]
        code = evaluate(hydra, plan, evaluations, failures)
    return Outcome(exit_code or code, failures)


def evaluate(
    hydra: Any, plan: SweepPlan, steps: Sequence[Step], failures: dict[str, BaseException]
) -> int:
    """Launch the evaluations whose training finished (some are this sweep's own), then merge
    a finished job's added evaluation into its results; 0, or 1 when one did not finish."""
    ready = []
    for step in steps:
        if Training(step.identity, step.source).finished():
            ready.append(step)
        else:
            print(f"[sweep] not evaluating {step.name}: {step.source} did not finish")
    if not ready:
        return 0
    exit_code = launch_and_wait(hydra, plan, ready, failures)
    for step in ready:
        added = step.missing is not None
        overrides = plan.overrides[step.name]
        if added and not merge_evaluation(plan.sweep_dir / step.name, overrides):
            print(f"[sweep] {step.name}: its added evaluation did not finish")
            exit_code = exit_code or 1
    return exit_code


def launch_and_wait(
    hydra: Any, plan: SweepPlan, steps: Sequence[Step], failures: dict[str, BaseException]
) -> int:
    """Run the steps' jobs; 0, or the status a stopped sweep exits with. A job that fails does
    not stop the others (the report shows it; ``failures`` gets its exception from its Hydra
    ``JobReturn``); a job stopped by SIGTERM (preemption, time-out of an interactive
    allocation) stops the in-process sweep, as it would stop ``run.py``."""
    from ipe_lightning.sweep.launch import launch_jobs

    try:
        returns = launch_jobs(hydra, plan.master_overrides(), plan.launch_list(steps))
        failures.update(failed_returns(returns))
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) and stop.code else 1
    except Exception as error:  # e.g. submitit could not collect a job killed from outside
        print(f"[sweep] launcher error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0
