"""``sweep.py``: launch a sweep, resume it, report on it.

    python sweep.py <sweep> [overrides...] [sweep_dir=DIR] [--dry-run]
    python sweep.py report <sweep_dir> [--wandb ENTITY/PROJECT --group GROUP] [--sweep NAME]
    python sweep.py list                     # the sweeps and their jobs

``<sweep>`` is a name in ``conf/sweep/`` (``table1`` ... ``table4``) or the path of your own sweep
file. Overrides apply to every job (``data.root=...``, ``debug=tiny``, ``launcher=slurm``,
``trainer=ddp trainer.devices=4``, ``hydra.launcher.partition=gpu``). The sweep directory
defaults to ``multirun/<sweep>/<timestamp>``; the same command with ``sweep_dir=<that dir>``
resumes it: finished jobs are skipped, interrupted ones resume from ``last.ckpt``, failed ones
run again (``ipe_lightning/sweeps/resume.py``). After the jobs, the report is written into the
sweep directory. Exit status: 0 when every job finished, 1 when one did not, 2 for a usage error
or a sweep directory whose finished jobs were made with other overrides.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ipe_lightning.results import JobResult
from ipe_lightning.sweeps.definitions import (
    REPO_CONF_DIR,
    SweepDefinition,
    SweepDefinitionError,
    available_sweeps,
    load_sweep,
)
from ipe_lightning.sweeps.layout import default_layout, layout_to_dict
from ipe_lightning.sweeps.report import (
    REPORT_FILES,
    Manifest,
    read_manifest,
    report_sweep_dir,
    summary,
    write_manifest,
    write_report,
)
from ipe_lightning.sweeps.resume import Decision, decide, read_job_state
from ipe_lightning.sweeps.table import Table

USAGE = __doc__.split("\n\n")[1]
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
        elif argument.startswith("-"):
            raise SweepDefinitionError(f"unknown option {argument}\n{USAGE}")
        else:
            overrides.append(argument)
    return options, overrides


def tag_list(tags: Sequence[str]) -> str:
    unique = list(dict.fromkeys(str(t) for t in tags))
    return "[" + ",".join(t if _SAFE_TAG.match(t) else repr(t) for t in unique) + "]"


def plan_overrides(
    hydra: object, definition: SweepDefinition, command_line: Sequence[str], group: str
) -> dict[str, list[str]]:
    """Every job's full override list (composed once each, so a bad override fails early).

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
    return planned


def print_plan(sweep_dir: Path, decisions: Sequence[Decision]) -> None:
    print(f"[sweep] {sweep_dir}")
    width = max(len(d.name) for d in decisions)
    for d in decisions:
        print(f"[sweep]   {d.name:<{width}}  {d.action:<8}  {d.reason}")


def sweep_command(name: str, arguments: Sequence[str], conf_dir: Path) -> int:
    """Plan every job against what the sweep directory holds, launch those with work left,
    then write the report (module doc)."""
    from ipe_lightning.sweeps.launch import hydra_session

    options, overrides = split_arguments(arguments)
    definition = load_sweep(name, conf_dir)
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
    with hydra_session(conf_dir) as hydra:
        planned = plan_overrides(hydra, definition, task_overrides, group)
        decisions = [
            decide(job, read_job_state(sweep_dir / job), overrides)
            for job, overrides in planned.items()
        ]
        print_plan(sweep_dir, decisions)
        conflicts = [d for d in decisions if d.action == "conflict"]
        if conflicts:
            print(
                f"[sweep] refusing to launch: {len(conflicts)} job(s) in {sweep_dir} were made "
                "with other overrides or by newer code (a finished result is never overwritten). "
                "Use another sweep_dir, the original overrides, or delete those job directories.",
                file=sys.stderr,
            )
            return 2
        if options.get("dry_run"):
            for decision in decisions:
                if decision.action != "skip":
                    print(f"[sweep] {decision.name}: {' '.join(planned[decision.name])}")
            return 0
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
        pending = [d.name for d in decisions if d.action != "skip"]
        if pending:
            master = [
                f"hydra.sweep.dir={hydra_value(str(sweep_dir))}",
                *hydra_overrides,
                *definition.extra_overrides(task_overrides),
                *task_overrides,
            ]
            jobs = [[*planned[job], f"hydra.sweep.subdir={job}"] for job in pending]
            exit_code = launch_and_wait(hydra, master, jobs)
    table = report_sweep_dir(sweep_dir)
    print(f"[sweep] {summary(table)}")
    print(f"[sweep] report: {', '.join(str(sweep_dir / f) for f in REPORT_FILES)}")
    if table.incomplete and not exit_code:
        exit_code = 1
    return exit_code


def launch_and_wait(hydra: object, master: list[str], jobs: list[list[str]]) -> int:
    """Run the jobs; 0, or the status a stopped sweep exits with. A job that fails does not
    stop the others (the report shows it); a job stopped by SIGTERM (preemption, time-out of an
    interactive allocation) stops the in-process sweep, as it would stop ``run.py``."""
    from ipe_lightning.sweeps.launch import launch_jobs

    try:
        launch_jobs(hydra, master, jobs)
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


# --------------------------------------------------------------------------------------------
# Report


def report_command(arguments: Sequence[str], conf_dir: Path) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep.py report",
        description="Build table.{md,csv,tex} and psnr_vs_scale.png from what has finished.",
    )
    parser.add_argument("sweep_dir", nargs="?", help="a directory made by `sweep.py <sweep>`")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read W&B runs instead")
    parser.add_argument("--group", help="the sweep's W&B group (<sweep>_<timestamp>)")
    parser.add_argument("--sweep", help="the sweep definition (default: from the manifest/group)")
    parser.add_argument("--out", help="where to write the report (default: the sweep directory)")
    options = parser.parse_args(arguments)
    if not options.wandb:
        if not options.sweep_dir:
            parser.error("give a sweep directory, or --wandb ENTITY/PROJECT --group GROUP")
        try:
            table = report_sweep_dir(options.sweep_dir)
        except FileNotFoundError as error:
            print(f"sweep.py report: {error}", file=sys.stderr)
            return 2
        out = Path(options.sweep_dir)
    else:
        if not options.group:
            parser.error("--wandb needs --group (the sweep's W&B group)")
        import wandb

        table, out = report_from_wandb(
            wandb.Api(),
            options.wandb,
            options.group,
            options.sweep_dir,
            options.sweep,
            options.out,
            conf_dir,
        )
    print(f"[sweep] {summary(table)}")
    print(f"[sweep] report: {', '.join(str(out / f) for f in REPORT_FILES)}")
    return 1 if table.incomplete else 0


def report_from_wandb(
    api: object,
    path: str,
    group: str,
    sweep_dir: str | None = None,
    sweep: str | None = None,
    out: str | None = None,
    conf_dir: Path = REPO_CONF_DIR,
) -> tuple[Table, Path]:
    """The report of a W&B group. The layout and the expected jobs come from the sweep
    directory's manifest when given, else from the sweep definition (``--sweep``, or the group's
    ``<sweep>_`` prefix), else from the runs found."""
    from ipe_lightning.sweeps.wandb_source import results_from_wandb

    found = results_from_wandb(api, path, group)
    manifest = read_manifest(sweep_dir) if sweep_dir else None
    definition = None
    if manifest is None:
        name = sweep or _sweep_from_group(group, conf_dir)
        definition = load_sweep(name, conf_dir) if name else None
    if manifest is not None:
        names = manifest.job_names
    elif definition is not None:
        names = [job.name for job in definition.jobs()]
    else:
        names = list(found)
    results = {n: found.get(n, JobResult("missing", note=f"no W&B run in {group}")) for n in names}
    results.update({n: r for n, r in found.items() if n not in results})
    if manifest is not None:
        layout = manifest.table_layout(results)
    elif definition is not None and definition.layout is not None:
        layout = definition.layout
    else:
        layout = default_layout(names, results, title=group)
    out_dir = Path(out or sweep_dir or Path("reports") / group)
    return write_report(out_dir, layout, results), out_dir


def _sweep_from_group(group: str, conf_dir: Path) -> str | None:
    """``table1_2024-05-01_12-00-00`` → ``table1`` (the longest sweep name that prefixes it)."""
    names = [n for n in available_sweeps(conf_dir) if group.startswith(n + "_")]
    return max(names, key=len) if names else None
