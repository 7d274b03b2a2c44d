"""Sweep definitions (``conf/sweep/<name>.yaml``): a grid of jobs and the table they fill.

A sweep file holds

``title``            the table's caption
``params``           the grid, in the syntax of Hydra's sweeper params (``key: a,b,c``,
                     ``range(...)``, ``glob(...)``): one job per combination, in order. A swept
                     ``seed`` (``seed: 0,1``) is taken out of the grid as the sweep's ``seeds``
``overrides``        overrides every job gets (before the command line's own)
``debug_overrides``  per ``debug=<name>`` choice, overrides added when the command line picks it
                     (tiny images cannot hold every paper setting; each sweep file says why)
``seeds``            a list of seeds (``[0, 1, 2]``): every job of the grid once per seed, as
                     ``<job>_seed-<n>`` with ``seed=<n>``; the report folds them back into one row
                     (mean ± std, n). ``sweep.py <sweep> --seeds 0 1 2`` sets it from the command
                     line. With seeds, ``params`` may be empty: one job (``job``), once per seed
                     (``seed-<n>``)
``table``            the paper layout (:func:`ipe_lightning.table_layout.layout_from_dict`);
                     without it the report lists every job against what it measured

A job's **name** (its directory in the sweep, its W&B run name, its table row) is the value of
``experiment`` when the grid sweeps experiment presets, else ``<key leaf>-<value>`` per swept key
(``bandwidth-4_encoding-ipe``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipe_lightning.sweep_files import (
    REPO_CONF_DIR,
    SINGLE_JOB,
    SweepDefinitionError,
    find_sweep_file,
    parse_seeds,
    read_sweep_file,
    seeded_name,
)
from ipe_lightning.table_layout import TableLayout, layout_from_dict

_EXPERIMENT_KEYS = ("experiment", "+experiment", "++experiment")
_UNSAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class Job:
    """One job of a sweep: its name and the overrides that make it (the grid's only)."""

    name: str
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class SweepDefinition:
    name: str
    path: Path
    title: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    debug_overrides: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    layout: TableLayout | None = None
    seeds: tuple[int, ...] = ()

    def jobs(self, config_loader: Any = None) -> list[Job]:
        return with_seeds(expand_grid(self.params, config_loader=config_loader), self.seeds)

    def extra_overrides(self, command_line: Sequence[str]) -> tuple[str, ...]:
        """The sweep-wide overrides, plus those for the ``debug=<name>`` the command line picks."""
        chosen = [o.split("=", 1)[1] for o in command_line if o.split("=", 1)[0] == "debug"]
        extra = tuple(self.overrides)
        for name in chosen[-1:]:
            extra += tuple(self.debug_overrides.get(name, ()))
        return extra


def load_sweep(name_or_path: str, conf_dir: Path = REPO_CONF_DIR) -> SweepDefinition:
    path = find_sweep_file(name_or_path, conf_dir)
    spec = read_sweep_file(path)
    return definition_from_dict(spec, name=path.stem, path=path)


def definition_from_dict(spec: Mapping[str, Any], *, name: str, path: Path) -> SweepDefinition:
    unknown = set(spec) - {"title", "params", "overrides", "debug_overrides", "table", "seeds"}
    if unknown:
        raise SweepDefinitionError(f"{path}: unknown keys {sorted(unknown)}")
    params = {str(k): _param_text(v) for k, v in (spec.get("params") or {}).items()}
    params, grid_seeds = seeds_from_grid(params, where=str(path))
    seeds = parse_seeds(spec.get("seeds"), where=str(path))
    if grid_seeds and seeds:
        raise SweepDefinitionError(
            f"{path}: seeds given twice, as `seeds: {list(seeds)}` and as the grid's `seed`; "
            "keep one (`seeds:`)"
        )
    seeds = seeds or grid_seeds
    if not params and not seeds:
        raise SweepDefinitionError(f"{path}: `params` (the grid) is empty")
    title = str(spec.get("title") or name)
    table = spec.get("table")
    layout = layout_from_dict(table, title=title) if table else None
    definition = SweepDefinition(
        name=name,
        path=path,
        title=title,
        params=params,
        overrides=tuple(str(o) for o in spec.get("overrides") or ()),
        debug_overrides={
            str(k): tuple(str(o) for o in v or ())
            for k, v in (spec.get("debug_overrides") or {}).items()
        },
        layout=layout,
        seeds=seeds,
    )
    if layout is not None:
        names = {job.name for job in expand_grid(params)}  # rows are variants, not seeds
        unknown_rows = [v for v in layout.variants if v not in names]
        if unknown_rows:
            raise SweepDefinitionError(
                f"{path}: table rows name variants the grid does not make: {unknown_rows}; "
                f"the grid makes {sorted(names)}"
            )
    return definition


def seeds_from_grid(
    params: Mapping[str, str], where: str
) -> tuple[dict[str, str], tuple[int, ...]]:
    """The grid without a swept ``seed`` key, and that key's values as seeds.

    A seed is a repetition of a row, not a setting of its own: as a grid key it made each seed a
    row (``seed-0 13.59``, ``seed-1 **17.11**``: the luckier one bolded, no mean, no spread).
    Taken as seeds it makes the same jobs with the same overrides, only named so that the report
    folds them (mean ± std, n); a refusal would make users rewrite a file whose meaning is
    clear, and the grid of seeds alone keeps its job names (``seed-<n>``), so its sweep
    directories resume. A single ``seed: 3`` is no sweep: it stays a fixed override.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    grid, seeds = {}, ()
    for key, value in params.items():
        if key.lstrip("+") == "seed":
            (override,) = OverridesParser.create().parse_overrides([f"{key}={value}"])
            if override.is_sweep_override():
                seeds = parse_seeds(list(override.sweep_iterator()), where=f"{where}: {key}")
                continue
        grid[key] = value
    return grid, seeds


def with_seeds(jobs: Sequence[Job], seeds: Sequence[int]) -> list[Job]:
    """Each job once per seed, named ``<job>_seed-<n>`` (``seed-<n>`` when the grid is one job
    that sweeps nothing, ``sweep_files.seeded_name``) and overriding ``seed``; ``jobs`` as they are
    without seeds. Each is a job of its own (its directory, its resume decision)."""
    if not seeds:
        return list(jobs)
    return [
        Job(name=seeded_name(job.name, seed), overrides=(*job.overrides, f"seed={seed}"))
        for job in jobs
        for seed in seeds
    ]


def _param_text(value: Any) -> str:
    """A params value as Hydra sweep text: YAML lists become ``a,b,c``."""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def expand_grid(params: Mapping[str, str], config_loader: Any = None) -> list[Job]:
    """Every combination of ``params`` (Hydra's basic sweeper semantics), named (module doc)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create(config_loader=config_loader)
    parsed = parser.parse_overrides([f"{key}={value}" for key, value in params.items()])
    (combinations,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    swept = {o.get_key_element() for o in parsed if o.is_sweep_override()}
    names = job_names([[e for e in combo if e.split("=", 1)[0] in swept] for combo in combinations])
    return [Job(name=n, overrides=tuple(c)) for n, c in zip(names, combinations, strict=True)]


def job_names(swept: Sequence[Sequence[str]]) -> list[str]:
    """Names from each job's swept ``key=value`` elements (module doc); unique, path-safe.
    Keys are shortened to their last part unless two swept keys share it."""

    def name(elements: Sequence[str], full_keys: bool) -> str:
        parts = []
        for element in elements:
            key, value = element.split("=", 1)
            if key in _EXPERIMENT_KEYS:
                parts.append(value)
                continue
            key = key.lstrip("+~").replace("/", ".")
            parts.append(f"{key if full_keys else key.rsplit('.', 1)[-1]}-{value}")
        return _UNSAFE.sub("-", "_".join(parts)).strip("-") or SINGLE_JOB

    keys = {e.split("=", 1)[0].lstrip("+~").replace("/", ".") for job in swept for e in job}
    leaves = [key.rsplit(".", 1)[-1] for key in keys]
    full_keys = len(set(leaves)) < len(leaves)  # e.g. data.scale_max and eval.scale_max
    names = [name(elements, full_keys) for elements in swept]
    if len(set(names)) < len(names):
        raise SweepDefinitionError(f"the grid gives jobs with the same name: {names}")
    return names
