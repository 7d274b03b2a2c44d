"""``sweep.py report``: the report of a sweep directory, or of a W&B group, and its console
summary (what finished, the clean table, the files), which a sweep also prints when it ends.

    python sweep.py report <sweep_dir> [--out DIR] [--reference VARIANT]
    python sweep.py report --wandb ENTITY/PROJECT --group GROUP [--sweep NAME] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from ipe_lightning.report.files import REPORT_FILES, report_sweep_dir, summary, write_report
from ipe_lightning.report.render import render_markdown
from ipe_lightning.report.table import Table
from ipe_lightning.results import JobResult
from ipe_lightning.sweep_files import (
    REPO_CONF_DIR,
    SweepDefinitionError,
    available_sweeps,
    find_sweep_file,
    parse_seeds,
    read_manifest,
    read_sweep_file,
    seeded_name,
    split_seed,
)
from ipe_lightning.table_layout import TableLayout, default_layout, layout_from_dict


def report_command(arguments: Sequence[str], conf_dir: Path = REPO_CONF_DIR) -> int:
    parser = argparse.ArgumentParser(
        prog="sweep.py report",
        description="Build table.{md,csv,tex} and psnr_vs_scale.png from what has finished.",
    )
    parser.add_argument("sweep_dir", nargs="?", help="a directory made by `sweep.py <sweep>`")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="read W&B runs instead")
    parser.add_argument("--group", help="the sweep's W&B group (<sweep>_<timestamp>)")
    parser.add_argument("--sweep", help="the sweep definition (default: from the manifest/group)")
    parser.add_argument("--out", help="where to write the report (default: the sweep directory)")
    parser.add_argument(
        "--reference", metavar="VARIANT", help="the row to compare with (default: the table's)"
    )
    options = parser.parse_args(arguments)
    if not options.wandb:
        if not options.sweep_dir:
            parser.error("give a sweep directory, or --wandb ENTITY/PROJECT --group GROUP")
        try:
            table = report_sweep_dir(options.sweep_dir, options.out, options.reference)
        except (FileNotFoundError, ValueError) as error:
            print(f"sweep.py report: {error}", file=sys.stderr)
            return 2
        out = Path(options.out or options.sweep_dir)
    else:
        if not options.group:
            parser.error("--wandb needs --group (the sweep's W&B group)")
        import wandb

        try:
            table, out = report_from_wandb(
                wandb.Api(),
                options.wandb,
                options.group,
                options.sweep_dir,
                options.sweep,
                options.out,
                conf_dir,
                reference=options.reference,
            )
        except ValueError as error:  # SweepDefinitionError too
            print(f"sweep.py report: {error}", file=sys.stderr)
            return 2
    print_report(table, out)
    return 1 if table.incomplete else 0


def print_report(table: Table, out: Path) -> None:
    """The report on the console, where a SLURM log keeps it: what finished, the clean table
    (our numbers, ± std, n, marks; its legend says what they mean), the report's files."""
    print(f"[sweep] {summary(table)}")
    print(f"[sweep] {out / 'table_clean.md'}:")
    print(render_markdown(table, "clean"), end="")
    print(f"[sweep] report: {', '.join(str(out / f) for f in REPORT_FILES)}")


def report_from_wandb(
    api: object,
    path: str,
    group: str,
    sweep_dir: str | None = None,
    sweep: str | None = None,
    out: str | None = None,
    conf_dir: Path = REPO_CONF_DIR,
    reference: str | None = None,
) -> tuple[Table, Path]:
    """The report of a W&B group. The layout and the expected jobs come from the sweep
    directory's manifest when given, else from the sweep file (``--sweep``, or the group's
    ``<sweep>_`` prefix: its table's rows, each once per seed of its ``seeds:``), else from the
    runs found. The runs' per-image tables give the intervals and their configs the ``debug=``
    mark (``wandb_source``); ``reference`` overrides the layout's (refused, ``ValueError``,
    when no run has per-image results)."""
    from ipe_lightning.report.wandb_source import group_from_wandb

    runs = group_from_wandb(api, path, group)
    found = runs.results
    manifest = read_manifest(sweep_dir) if sweep_dir else None
    layout, seeds = None, ()
    if manifest is None:
        name = sweep or _sweep_from_group(group, conf_dir)
        layout, seeds = sweep_file_layout(name, conf_dir) if name else (None, ())
    if manifest is not None:
        names = manifest.job_names
    elif layout is not None:
        rows = [seeded_name(v, seed) for v in layout.variants for seed in seeds] or layout.variants
        names = expected_jobs(rows, found)
    else:
        names = list(found)
    results = {n: found.get(n, JobResult("missing", note=f"no W&B run in {group}")) for n in names}
    results.update({n: r for n, r in found.items() if n not in results})
    if manifest is not None:
        layout = manifest.table_layout(results)
    elif layout is None:
        layout = default_layout(names, results, title=group)
    out_dir = Path(out or sweep_dir or Path("reports") / group)
    debug = runs.debug or (manifest.debug if manifest is not None else None)
    table = write_report(
        out_dir, layout, results, per_image=runs.per_image, reference=reference, debug=debug
    )
    return table, out_dir


def sweep_file_layout(name: str, conf_dir: Path) -> tuple[TableLayout | None, tuple[int, ...]]:
    """The table layout of a sweep file (``None`` without a ``table:``) and its ``seeds:``,
    read as plain YAML."""
    path = find_sweep_file(name, conf_dir)
    spec = read_sweep_file(path)
    seeds = parse_seeds(spec.get("seeds"), where=str(path))
    if not spec.get("table"):
        return None, seeds
    try:
        layout = layout_from_dict(spec["table"], title=str(spec.get("title") or path.stem))
    except (KeyError, TypeError, ValueError) as error:
        raise SweepDefinitionError(f"{path}: its table: {error}") from error
    return layout, seeds


def expected_jobs(names: Sequence[str], found: Iterable[str]) -> list[str]:
    """The jobs a W&B group should hold: the definition's, each replaced by its seeds when the
    runs are ``<job>_seed-<n>`` (seeds given on the command line are in no file but the
    manifest)."""
    seeded: dict[str, list[str]] = {}
    for name in found:
        job, seed = split_seed(name)
        if seed is not None:
            seeded.setdefault(job, []).append(name)
    return [n for name in names for n in (seeded.get(name) or [name])]


def _sweep_from_group(group: str, conf_dir: Path) -> str | None:
    """``table1_2024-05-01_12-00-00`` → ``table1`` (the longest sweep name that prefixes it)."""
    names = [n for n in available_sweeps(conf_dir) if group.startswith(n + "_")]
    return max(names, key=len) if names else None
