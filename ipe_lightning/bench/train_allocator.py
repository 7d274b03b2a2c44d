"""The allocator half of ``bench train``: the fast training step in fresh processes with the
tuning of :mod:`ipe_lightning.allocator` on and off (``IPE_LIGHTNING_MALLOC_TUNING=0``),
alternating, and what the kernel counted (minor page faults, system and user seconds) beside
steps/s. Faults and system time hold on a busy machine; steps/s does not.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from ipe_lightning import allocator
from ipe_lightning.bench._measure import in_fresh_process, process_usage, set_threads

SETTINGS = ("on", "off")  # the allocator tuning


def allocator_process(
    model: str,
    batch_size: int,
    lr_side: int,
    warmup: int,
    steps: int,
    precision: str,
    threads: int | None,
) -> dict[str, Any]:
    """Run in a fresh process (``in_fresh_process``): the fast step on the CPU, ``warmup`` untimed
    then ``steps`` timed, and what the kernel counted for the timed ones."""
    from ipe_lightning.bench.train import prepared_step  # train.py imports this module

    set_threads(threads)
    device = torch.device("cpu")
    step = prepared_step(model, "fast", batch_size, lr_side, device, precision)
    for _ in range(warmup):
        step()
    faults_each_step = []
    before, start = process_usage(), time.perf_counter()
    for _ in range(steps):
        faults = process_usage()["minor_faults"]
        step()
        faults_each_step.append(process_usage()["minor_faults"] - faults)
    wall_s, after = time.perf_counter() - start, process_usage()
    counted = {
        k: after[k] - before[k] for k in ("minor_faults", "major_faults", "user_s", "system_s")
    }
    return {
        "allocator": allocator.keep_freed_memory().state,
        "steps": steps,
        **{k: round(v, 3) for k, v in counted.items()},
        "minor_faults_each_step": faults_each_step,
        "wall_s": round(wall_s, 3),
        "steps_per_s": round(steps / wall_s, 4),
        "max_rss_mib": round(after["max_rss_mib"], 1),
        "threads": torch.get_num_threads(),
    }


def alternating(repeats: int) -> list[str]:
    """on off, off on, on off, ...: each setting runs first as often as second, so a load that
    rises or falls during the run weighs on both alike."""
    return [s for i in range(repeats) for s in (SETTINGS if i % 2 == 0 else SETTINGS[::-1])]


def setting_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per timed step, the median over processes; steps/s best and median."""

    def per_step(key: str) -> float:
        return statistics.median(run[key] / run["steps"] for run in runs)

    speeds = [run["steps_per_s"] for run in runs]
    return {
        "minor_faults_per_step": round(per_step("minor_faults")),
        "system_s_per_step": round(per_step("system_s"), 3),
        "user_s_per_step": round(per_step("user_s"), 3),
        "steps_per_s": max(speeds),
        "steps_per_s_median": round(statistics.median(speeds), 4),
        "max_rss_mib": max(run["max_rss_mib"] for run in runs),
        "runs": runs,
    }


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def allocator_case(
    model: str,
    batch_size: int,
    lr_side: int,
    repeats: int,
    warmup: int,
    steps: int,
    precision: str,
    threads: int | None,
) -> dict[str, Any]:
    """The fast step with the allocator tuning on and off, each run in its own fresh process."""
    kwargs = dict(
        model=model,
        batch_size=batch_size,
        lr_side=lr_side,
        warmup=warmup,
        steps=steps,
        precision=precision,
        threads=threads,
    )
    order = alternating(repeats)
    runs: dict[str, list[dict[str, Any]]] = {setting: [] for setting in SETTINGS}
    for setting in order:
        env = allocator.child_environment(tuned=setting == "on")
        runs[setting].append(in_fresh_process(f"{__name__}:allocator_process", kwargs, env))
    on, off = (setting_summary(runs[setting]) for setting in SETTINGS)
    return {
        "impl": "fast",
        "switch": f"{allocator.SWITCH}=0 for off",
        "order": order,
        "warmup_steps_per_process": warmup,
        "timed_steps_per_process": steps,
        "on": on,
        "off": off,
        "minor_faults_off_over_on": _ratio(
            off["minor_faults_per_step"], on["minor_faults_per_step"]
        ),
        "system_s_off_over_on": _ratio(off["system_s_per_step"], on["system_s_per_step"]),
        "user_s_off_over_on": _ratio(off["user_s_per_step"], on["user_s_per_step"]),
        "speedup_on_over_off": _ratio(on["steps_per_s"], off["steps_per_s"]),
        "speedup_on_over_off_median": _ratio(on["steps_per_s_median"], off["steps_per_s_median"]),
    }


def allocator_lines(key: str, case: dict[str, Any]) -> list[str]:
    """The allocator comparison as a small table, for the terminal."""
    on, off = case["on"], case["off"]
    n = len(case["order"]) // 2
    lines = [
        f"{key} allocator, fast step, {n} fresh processes per setting x "
        f"{case['timed_steps_per_process']} timed steps (order {' '.join(case['order'])}):",
        f"  {'':<16}{'minor faults/step':>18}{'system s/step':>15}{'user s/step':>13}"
        f"{'steps/s':>9}",
    ]
    for name, row in (("tuned (on)", on), ("glibc default", off)):
        lines.append(
            f"  {name:<16}{row['minor_faults_per_step']:>18,}{row['system_s_per_step']:>15.3f}"
            f"{row['user_s_per_step']:>13.3f}{row['steps_per_s']:>9.3f}"
        )

    def times(value: float | None) -> str:
        return "-" if value is None else f"{value:g}x"

    lines.append(
        f"  {'off / on':<16}{times(case['minor_faults_off_over_on']):>18}"
        f"{times(case['system_s_off_over_on']):>15}{times(case['user_s_off_over_on']):>13}"
        f"{times(case['speedup_on_over_off']):>9} (steps/s: on / off)"
    )
    return lines
