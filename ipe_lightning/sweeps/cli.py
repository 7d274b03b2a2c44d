"""``sweep.py``: launch a sweep, resume it, report on it.

    python sweep.py <sweep> [overrides...] [sweep_dir=DIR] [seeds=[0,1,2]] [--dry-run]
    python sweep.py report <sweep_dir> [--out DIR] [--reference VARIANT]
    python sweep.py report --wandb ENTITY/PROJECT --group GROUP [--sweep NAME] [--out DIR]
    python sweep.py list                     # the sweeps and their jobs
    python sweep.py figure <sweep_dir> [image=NAME crop=[top,left,side] scales=[4,12,30]]

``<sweep>`` is a name in ``conf/sweep/`` (``table1`` ... ``table4``, ``paper`` for all four) or the
path of your own sweep file. Overrides apply to every job (``data.root=...``, ``debug=tiny``,
``launcher=slurm``, ``trainer=ddp trainer.devices=4``, ``hydra.launcher.partition=gpu``). The sweep
directory defaults to ``multirun/<sweep>/<timestamp>``; the same command with ``sweep_dir=<that
dir>`` resumes it: finished jobs are skipped, interrupted ones resume from ``last.ckpt``, failed
ones run again (``ipe_lightning/sweeps/resume.py``). After the jobs, the report is written into the
sweep directory. Exit status: 0 when every job finished, 1 when one did not, 2 for a usage error or
a sweep directory whose finished jobs were made with other overrides.

Train once, evaluate everywhere (``ipe_lightning/sweeps/plan.py``): jobs that train the same model
(``sweeps/identity.py``) train it once; the others evaluate its ``last.ckpt`` (``mode=test``),
also across sweeps through the run store (``paths.run_store``, default ``multirun/runs``). A
finished job whose overrides changed only what it evaluates (``eval.scales=[...]``, ``eval=...``)
evaluates only the sets and scales it lacks, merged into its ``metrics.json``. The plan prints
each job's step (train / resume / reuse+evaluate / skip / held) and a summary line
(``23 to train, 5 to evaluate only, 0 finished``). One writer per sweep directory: jobs that
another live process runs or launched (``sweeps/claims.py``) are ``held``, not launched again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ipe_lightning.runtime.lock import DirectoryInUse
from ipe_lightning.sweeps.claims import Claims, defer_held, sweep_lock
from ipe_lightning.sweeps.definitions import (
    REPO_CONF_DIR,
    SweepDefinition,
    SweepDefinitionError,
    available_sweeps,
    load_sweep,
    parse_seeds,
)
from ipe_lightning.sweeps.failures import failed_returns, note_failures, record_launch_failures
from ipe_lightning.sweeps.layout import layout_to_dict
from ipe_lightning.sweeps.plan import (
    EVALUATION_DIR,
    LAUNCHED_STEPS,
    TRAINING_STEPS,
    PlannedJob,
    Step,
    evaluation_overrides,
    merge_evaluation,
    plan_steps,
    plan_summary,
)
from ipe_lightning.sweeps.preflight import passes_preflight
from ipe_lightning.sweeps.report import (
    Manifest,
    read_manifest,
    report_sweep_dir,
    write_manifest,
)
from ipe_lightning.sweeps.report_command import print_report, report_command
from ipe_lightning.sweeps.resume import decide, read_job_state
from ipe_lightning.sweeps.store import RunStore, Training

USAGE = __doc__.split("\n\n")[1]
SWEEP_LOCK_WAIT_S = 120  # another sweep plans on the same directory for at most about this long
_SAFE_TAG = re.compile(r"^[\w.-]+$")


def main(argv: Sequence[str] | None = None, conf_dir: Path = REPO_CONF_DIR) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    if args[0] == "list":
        print(list_sweeps(conf_dir))
        return 0
    if args[0] == "report":
        return report_command(args[1:], conf_dir)
    if args[0] == "figure":
        from ipe_lightning.sweeps.figure import figure_command

        return figure_command(args[1:], conf_dir)
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return sweep_command(args[0], args[1:], conf_dir)
    except (SweepDefinitionError, HydraException, OmegaConfBaseException) as error:
        print(f"sweep.py: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


def list_sweeps(conf_dir: Path) -> str:
    """Each sweep of ``conf_dir`` with its title, then its jobs (one line each, grid order)."""
    lines = []
    for name in available_sweeps(conf_dir):
        definition = load_sweep(name, conf_dir)
        jobs = definition.jobs()
        lines.append(f"{name} ({len(jobs)} jobs): {definition.title}")
        lines += [f"  {job.name}" for job in jobs]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Launch


def is_hydra_override(override: str) -> bool:
    key = override.split("=", 1)[0].lstrip("+~")
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def split_arguments(arguments: Sequence[str]) -> tuple[dict[str, str | bool], list[str]]:
    """sweep.py's own options (``sweep_dir=``, ``--dry-run``) apart from the overrides."""
    options: dict[str, str | bool] = {}
    overrides = []
    for argument in arguments:
        if argument.startswith("sweep_dir="):
            options["sweep_dir"] = argument.split("=", 1)[1]
        elif argument == "--dry-run":
            options["dry_run"] = True
        elif argument.startswith("preflight="):  # sweeps/preflight.py
            value = argument.split("=", 1)[1].lower()
            if value not in ("true", "false"):
                raise SweepDefinitionError(f"preflight= takes true or false, got {value!r}")
            options["preflight"] = value == "true"
        elif argument.startswith("seeds="):  # each job once per seed (definitions.py)
            options["seeds"] = argument.split("=", 1)[1]
        elif argument.startswith("-"):
            raise SweepDefinitionError(f"unknown option {argument}\n{USAGE}")
        else:
            overrides.append(argument)
    return options, overrides


def tag_list(tags: Sequence[str]) -> str:
    unique = list(dict.fromkeys(str(t) for t in tags))
    return "[" + ",".join(t if _SAFE_TAG.match(t) else repr(t) for t in unique) + "]"


def plan_overrides(
    hydra: object,
    definition: SweepDefinition,
    command_line: Sequence[str],
    group: str,
    details: dict[str, PlannedJob] | None = None,
) -> dict[str, list[str]]:
    """Every job's full override list (composed once each, so a bad override fails early);
    ``details`` gets each job's :class:`PlannedJob` (its training identity).

    Order: the grid's, the sweep file's, the command line's, then what the sweep sets per job:
    ``run_name`` (= the job name), ``tags`` (the job's own + sweep name + job name) and, when the
    job logs to W&B, ``logger.wandb.group``.
    """
    from ipe_lightning.sweeps.launch import compose_job

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
        planned[job.name] = overrides
        if details is not None:
            details[job.name] = PlannedJob.of(overrides, cfg)
    return planned


def print_plan(sweep_dir: Path, steps: Sequence[Step]) -> None:
    """Per job: what its directory asks for, why, and its step (train / resume /
    reuse+evaluate / skip / held / conflict, ``sweeps/plan.py``)."""
    print(f"[sweep] {sweep_dir}")
    width = max(len(s.name) for s in steps)
    for s in steps:
        print(f"[sweep]   {s.name:<{width}}  {s.action:<8}  {s.reason}  [{s.step}]")


def sweep_command(name: str, arguments: Sequence[str], conf_dir: Path) -> int:
    """Plan every job against what the sweep directory holds, launch those with work left,
    then write the report (module doc)."""
    from ipe_lightning.sweeps.launch import hydra_session

    options, overrides = split_arguments(arguments)
    definition = load_sweep(name, conf_dir)
    if "seeds" in options:
        definition = dataclasses.replace(definition, seeds=parse_seeds(options["seeds"]))
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    sweep_dir = Path(str(options.get("sweep_dir") or f"multirun/{definition.name}/{stamp}"))
    sweep_dir = sweep_dir.expanduser().resolve()
    manifest = read_manifest(sweep_dir)
    if manifest is not None and manifest.sweep != definition.name:
        raise SweepDefinitionError(
            f"{sweep_dir} holds the sweep {manifest.sweep!r}, not {definition.name!r}"
        )
    group = manifest.group if manifest else f"{definition.name}_{stamp}"
    hydra_overrides = [o for o in overrides if is_hydra_override(o)]
    task_overrides = [o for o in overrides if not is_hydra_override(o)]

    exit_code = 0
    dry_run = bool(options.get("dry_run"))
    with hydra_session(conf_dir) as hydra, Claims(sweep_dir) as claims:
        jobs: dict[str, PlannedJob] = {}
        planned = plan_overrides(hydra, definition, task_overrides, group, jobs)
        store = RunStore(next(iter(jobs.values())).run_store)
        steps = plan_sweep(sweep_dir, jobs, store)
        print_plan(sweep_dir, steps)
        report_held(steps)
        conflicts = [s for s in steps if s.step == "conflict"]
        if conflicts:
            print(
                f"[sweep] refusing to launch: {len(conflicts)} job(s) in {sweep_dir} were "
                "made with other overrides or by newer code (a finished result is never "
                "overwritten). Use another sweep_dir, the original overrides, or delete those "
                "job directories.",
                file=sys.stderr,
            )
            return 2
        if dry_run:
            for step in steps:
                if step.step in LAUNCHED_STEPS:
                    print(f"[sweep] {step.name}: {' '.join(job_overrides(jobs, step))}")
            print(f"[sweep] {plan_summary(steps)}")
            return 0
        to_launch = {s.name: job_overrides(jobs, s) for s in steps if s.step in LAUNCHED_STEPS}
        if options.get("preflight", True) and not passes_preflight(hydra, to_launch):
            return 2
        with planning_lock(sweep_dir):
            steps = plan_sweep(sweep_dir, jobs, store)  # again: another sweep may have claimed
            write_manifest(
                sweep_dir,
                Manifest(
                    sweep=definition.name,
                    definition=str(definition.path),
                    title=definition.title,
                    created=manifest.created if manifest else stamp,
                    group=group,
                    jobs=[{"name": job, "overrides": o} for job, o in planned.items()],
                    layout=_layout_dict(definition),
                    command=[name, *arguments],
                ),
            )
            launched, held = claims.take(s.name for s in steps if s.step in LAUNCHED_STEPS)
            for step in steps:
                if step.step in TRAINING_STEPS and step.name in launched:
                    store.register(step.identity, sweep_dir / step.name, jobs[step.name].training)
        for reason in held.values():  # claimed by a sweep that planned while this one waited
            print(f"[sweep] not launching: {reason}", file=sys.stderr)
        print(f"[sweep] {plan_summary(steps)}")
        master = [
            f"hydra.sweep.dir={hydra_value(str(sweep_dir))}",
            *hydra_overrides,
            *definition.extra_overrides(task_overrides),
            *task_overrides,
        ]
        trainings = [s for s in steps if s.name in launched and s.step in TRAINING_STEPS]
        failures: dict[str, BaseException] = {}
        if trainings:
            exit_code = launch_and_wait(hydra, master, launch_list(jobs, trainings), failures)
        # Evaluations after the trainings they need (some are this sweep's own).
        evaluations = []
        for step in steps:
            if step.name in launched and step.step == "reuse+evaluate":
                if Training(step.identity, step.source).finished():
                    evaluations.append(step)
                else:
                    print(f"[sweep] not evaluating {step.name}: {step.source} did not finish")
        if evaluations:
            code = launch_and_wait(hydra, master, launch_list(jobs, evaluations), failures)
            exit_code = exit_code or code
            for step in evaluations:
                added = step.missing is not None
                if added and not merge_evaluation(sweep_dir / step.name, planned[step.name]):
                    print(f"[sweep] {step.name}: its added evaluation did not finish")
                    exit_code = exit_code or 1
    with planning_lock(sweep_dir):  # one report writer at a time
        record_launch_failures(sweep_dir, failures, planned)
        table = report_sweep_dir(sweep_dir)
        note_failures(sweep_dir)
    print_report(table, sweep_dir)
    if table.incomplete and not exit_code:
        exit_code = 1
    return exit_code


def plan_sweep(sweep_dir: Path, jobs: dict[str, PlannedJob], store: RunStore) -> list[Step]:
    """Each job's step, from its directory, the other live processes and the run store."""
    decisions = [
        decide(name, read_job_state(sweep_dir / name), job.overrides) for name, job in jobs.items()
    ]
    decisions = defer_held(sweep_dir, decisions)
    identities = {n: j.identity for n, j in jobs.items()}
    wanted = {n: j.evaluations for n, j in jobs.items()}
    return plan_steps(decisions, identities, sweep_dir, store, wanted)


def job_overrides(jobs: dict[str, PlannedJob], step: Step) -> list[str]:
    overrides = list(jobs[step.name].overrides)
    return overrides + evaluation_overrides(step) if step.step == "reuse+evaluate" else overrides


def launch_list(jobs: dict[str, PlannedJob], steps: Sequence[Step]) -> list[list[str]]:
    """Each step's overrides and directory (a finished job's added evaluation runs beside its
    results, and is merged into them after)."""
    return [[*job_overrides(jobs, s), f"hydra.sweep.subdir={s.name}{subdir(s)}"] for s in steps]


def subdir(step: Step) -> str:
    return f"/{EVALUATION_DIR}" if step.missing is not None else ""


@contextlib.contextmanager
def planning_lock(sweep_dir: Path) -> Iterator[None]:
    """The sweep directory's lock; another sweep planning on it is waited for, and named."""
    lock = sweep_lock(sweep_dir)
    try:
        lock.acquire()
    except DirectoryInUse as busy:
        print(f"[sweep] waiting up to {SWEEP_LOCK_WAIT_S} s: {busy}", file=sys.stderr)
        lock.acquire(timeout=SWEEP_LOCK_WAIT_S)
    try:
        yield
    finally:
        lock.release()


def report_held(steps: Sequence[Step]) -> None:
    held = [s.name for s in steps if s.step == "held"]
    if held:
        print(
            f"[sweep] {len(held)} job(s) are run by other live processes and are not launched "
            f"here: {', '.join(held)}. Their results join the report when they finish.",
            file=sys.stderr,
        )


def launch_and_wait(
    hydra: object,
    master: list[str],
    jobs: list[list[str]],
    failures: dict[str, BaseException] | None = None,
) -> int:
    """Run the jobs; 0, or the status a stopped sweep exits with. A job that fails does not
    stop the others (the report shows it; ``failures`` gets its exception from its Hydra
    ``JobReturn``); a job stopped by SIGTERM (preemption, time-out of an interactive
    allocation) stops the in-process sweep, as it would stop ``run.py``."""
    from ipe_lightning.sweeps.launch import launch_jobs

    try:
        returns = launch_jobs(hydra, master, jobs)
        if failures is not None:
            failures.update(failed_returns(returns))
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) and stop.code else 1
    except Exception as error:  # e.g. submitit could not collect a job killed from outside
        print(f"[sweep] launcher error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


def hydra_value(text: str) -> str:
    """``text`` as an override value: quoted unless Hydra reads it as it is (paths with spaces)."""
    if re.fullmatch(r"[\w./:+-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _layout_dict(definition: SweepDefinition) -> dict | None:
    return layout_to_dict(definition.layout) if definition.layout else None
