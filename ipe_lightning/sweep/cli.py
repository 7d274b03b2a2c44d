"""``sweep.py``: launch a sweep, resume it, report on it, draw its figure.

    python sweep.py <sweep> [overrides...] [--sweep-dir DIR] [--seeds 0 1 2] [--dry-run]
                            [--no-preflight]
    python sweep.py report <sweep_dir> [--out DIR] [--reference VARIANT]
    python sweep.py report --wandb ENTITY/PROJECT --group GROUP [--sweep NAME] [--out DIR]
    python sweep.py list                     # the sweeps and their jobs
    python sweep.py figure <sweep_dir> [--image NAME] [--crop TOP LEFT SIDE] [--scales 4 12 30]
                                       [--set NAME] [--variants ROW ...] [--out DIR]

sweep.py's own options are ``--options``; the ``key=value`` arguments are Hydra overrides of the
jobs. ``<sweep>`` is a name in ``conf/sweep/`` (``table1`` ... ``table4``, ``paper`` for all four)
or the path of your own sweep file. Overrides apply to every job (``data.root=...``,
``debug=tiny``, ``launcher=slurm``, ``trainer=ddp trainer.devices=4``,
``hydra.launcher.partition=gpu``). The sweep directory defaults to
``multirun/<sweep>/<timestamp>``; the same command with ``--sweep-dir <that dir>`` resumes it:
finished jobs are skipped, interrupted ones resume from ``last.ckpt``, failed ones run again
(``sweep/resume.py``). After the jobs, the report is written into the sweep directory. Exit
status: 0 when every job finished, 1 when one did not, 2 for a usage error or a sweep directory
whose finished jobs were made with other overrides.

Train once, evaluate everywhere (``sweep/steps.py``): jobs that train the same model
(``sweep/identity.py``) train it once; the others evaluate its ``last.ckpt`` (``mode=test``),
also across sweeps through the run store (``paths.run_store``, by default ``runs/`` beside the
sweeps). A finished job whose overrides changed only what it evaluates (``eval.scales=[...]``,
``eval=...``) evaluates only the sets and scales it lacks, merged into its ``metrics.json``. The
plan (``sweep/plan.py``, printed whole by ``--dry-run``) gives each job's step (train / resume /
reuse+evaluate / skip / held) and a summary line (``29 to train, 7 to evaluate only, 0
finished``). One writer per sweep directory: jobs that another live process runs or launched
(``sweep/claims.py``) are ``held``, not launched again.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from ipe_lightning.report.command import print_report, report_command
from ipe_lightning.report.files import report_sweep_dir
from ipe_lightning.report.table import Table
from ipe_lightning.sweep.claims import planning_lock
from ipe_lightning.sweep.execute import Outcome
from ipe_lightning.sweep.failures import note_failures, record_launch_failures
from ipe_lightning.sweep.plan import SweepPlan
from ipe_lightning.sweep_files import (
    REPO_CONF_DIR,
    SweepDefinitionError,
    available_sweeps,
    parse_seeds,
)

# The spellings of sweep.py's own options before they were ``--options``: refused, named.
RENAMED = {
    "sweep_dir": "--sweep-dir DIR",
    "seeds": "--seeds 0 1 2",
    "preflight": "--no-preflight",
}
_WHOLE = re.compile(r"-?\d+")


def main(argv: Sequence[str] | None = None, conf_dir: Path = REPO_CONF_DIR) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    try:
        if args[0] == "list":
            print(list_sweeps(conf_dir))
            return 0
        if args[0] == "report":
            return report_command(args[1:], conf_dir)
        if args[0] == "figure":
            from ipe_lightning.figure.command import figure_command

            return figure_command(args[1:], conf_dir)
        return sweep_command(args, conf_dir)
    except SystemExit as stop:  # argparse: --help (0) or a usage error (2)
        return stop.code if isinstance(stop.code, int) else 2


def list_sweeps(conf_dir: Path) -> str:
    """Each sweep of ``conf_dir`` with its title, then its jobs (one line each, grid order)."""
    from ipe_lightning.sweep.definitions import load_sweep

    lines = []
    for name in available_sweeps(conf_dir):
        definition = load_sweep(name, conf_dir)
        jobs = definition.jobs()
        lines.append(f"{name} ({len(jobs)} jobs): {definition.title}")
        lines += [f"  {job.name}" for job in jobs]
    return "\n".join(lines)


def sweep_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweep.py", description="Launch or resume a sweep, then write its report."
    )
    parser.add_argument("sweep", help="a name in conf/sweep/ or the path of a sweep file")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of every job (key=value)")
    parser.add_argument("--sweep-dir", help="the sweep directory (resumes it if it exists)")
    parser.add_argument(
        "--seeds", action="append", type=int, metavar="SEED", help="every job once per seed"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, launch nothing")
    parser.add_argument(
        "--no-preflight",
        dest="preflight",
        action="store_false",
        help="skip the check of every job's config and data before launching",
    )
    return parser


def parse_sweep_arguments(arguments: Sequence[str]) -> argparse.Namespace:
    """The sweep's options and overrides; an option spelled as an override is refused (exit 2)
    with the option's name."""
    parser = sweep_parser()
    options = parser.parse_intermixed_args(one_seed_each(arguments))
    for override in options.overrides:
        key = override.split("=", 1)[0]
        if key in RENAMED:
            parser.error(f"{key}= is an option of sweep.py, not an override: {RENAMED[key]}")
    return options


def one_seed_each(arguments: Sequence[str]) -> list[str]:
    """``--seeds 0 1 2 data.root=/x`` → ``--seeds=0 --seeds=1 --seeds=2 data.root=/x``: the
    seeds end where the overrides begin."""
    rewritten: list[str] = []
    count = None  # seeds after the last --seeds, while they go on
    for argument in [*arguments, ""]:
        if argument == "--seeds":
            count = 0
        elif count is not None and _WHOLE.fullmatch(argument):
            rewritten.append(f"--seeds={argument}")
            count += 1
        else:
            rewritten += ["--seeds"] if count == 0 else []  # argparse: expected one argument
            rewritten += [argument] if argument else []
            count = None
    return rewritten


def sweep_command(arguments: Sequence[str], conf_dir: Path) -> int:
    """plan → execute → report (module doc)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ipe_lightning.sweep.definitions import load_sweep
    from ipe_lightning.sweep.execute import execute
    from ipe_lightning.sweep.launch import hydra_session
    from ipe_lightning.sweep.plan import make_plan
    from ipe_lightning.sweep.preflight import passes_preflight

    options = parse_sweep_arguments(arguments)
    try:
        definition = load_sweep(options.sweep, conf_dir)
        if options.seeds:
            seeds = parse_seeds(options.seeds, where="--seeds")
            definition = dataclasses.replace(definition, seeds=seeds)
        with hydra_session(conf_dir) as hydra:
            plan = make_plan(hydra, definition, options.overrides, options.sweep_dir, arguments)
            if not show_plan(plan, options.dry_run):
                return 2
            if options.dry_run:
                return 0
            launch = {s.name: plan.job_overrides(s) for s in plan.launched}
            if options.preflight and not passes_preflight(hydra, launch):
                return 2
            outcome = execute(hydra, plan)
    except (SweepDefinitionError, HydraException, OmegaConfBaseException) as error:
        print(f"sweep.py: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    table = report(plan, outcome)
    return outcome.exit_code or (1 if table.incomplete else 0)


def show_plan(plan: SweepPlan, dry_run: bool) -> bool:
    """Print the plan (whole for a dry run) and the jobs other processes run; ``False``, with
    the refusal, when jobs of the sweep directory were made otherwise."""
    held = [s.name for s in plan.steps if s.step == "held"]
    if held:
        print(
            f"[sweep] {len(held)} job(s) are run by other live processes and are not launched "
            f"here: {', '.join(held)}. Their results join the report when they finish.",
            file=sys.stderr,
        )
    conflicts = [s for s in plan.steps if s.step == "conflict"]
    if conflicts:
        print(plan.table_text())
        print(
            f"[sweep] refusing to launch: {len(conflicts)} job(s) in {plan.sweep_dir} were "
            "made with other overrides or by newer code (a finished result is never "
            "overwritten). Use another --sweep-dir, the original overrides, or delete those "
            "job directories.",
            file=sys.stderr,
        )
        return False
    print(plan if dry_run else plan.table_text())
    return True


def report(plan: SweepPlan, outcome: Outcome) -> Table:
    """The sweep's report, written into its directory (one writer at a time) with the failures
    of its jobs, and printed."""
    with planning_lock(plan.sweep_dir):
        record_launch_failures(plan.sweep_dir, outcome.failures, plan.overrides)
        table = report_sweep_dir(plan.sweep_dir)
        note_failures(plan.sweep_dir)
    print_report(table, plan.sweep_dir)
    return table
