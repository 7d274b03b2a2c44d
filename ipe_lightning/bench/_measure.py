"""Shared pieces of the benchmarks: the networks, interleaved timing, fresh processes and what the
kernel counted for them, common options, the JSON report."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ipe_lightning.models import (
    IPE,
    LIIF,
    Cell,
    EDSRBaseline,
    FastDecoder,
    NaiveDecoder,
    PlainMLP,
    SkipMLP,
)

# The decoder parts the benchmarks compare, by the names their options and reports use
# (conf/model/decoder/).
DECODERS = {"naive": NaiveDecoder, "fast": FastDecoder}
IMPLS = tuple(DECODERS)


def build_net(model: str, impl: str, seed: int = 0) -> LIIF:
    """The paper's presets with EDSR-baseline (conf/model/{liif,ipe_liif}.yaml) and the decoder
    ``DECODERS[impl]``, random weights: speed and memory do not depend on the weights' values.
    The same seed gives both decoders the same weights."""
    presets = {
        "ipe_liif": {"encoding": IPE(10), "mlp": SkipMLP},
        "liif": {"encoding": Cell(), "mlp": PlainMLP},
    }
    if model not in presets:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(presets)}")
    if impl not in DECODERS:
        raise ValueError(f"unknown decoder {impl!r}; choose one of {sorted(DECODERS)}")
    torch.manual_seed(seed)
    return LIIF(EDSRBaseline(), decoder=DECODERS[impl], **presets[model])


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(
    runs: dict[str, Callable[[], object]], repeats: int, warmup: int, device: torch.device
) -> dict[str, list[float]]:
    """Seconds of each run, ``repeats`` times, alternating between the runs.

    Alternating means both see the same machine load: on a shared CPU other work comes and goes,
    and the ratio of two runs timed far apart would measure that instead.
    """
    for _ in range(warmup):
        for run in runs.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            synchronize(device)
            start = time.perf_counter()
            run()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


def process_usage() -> dict[str, float]:
    """What the kernel has counted for this process so far, all its threads together: page faults
    (minor: a page mapped without reading the disk) and CPU seconds in user and kernel mode.

    On a shared machine these hold where wall time does not: other work changes how long a step
    waits for a core, not how many pages it touches (CPU seconds move a little, with the caches).
    """
    import resource  # Unix only, and only the runs that compare allocators need it

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "minor_faults": usage.ru_minflt,
        "major_faults": usage.ru_majflt,
        "user_s": usage.ru_utime,
        "system_s": usage.ru_stime,
        "max_rss_mib": peak_rss_mib(usage.ru_maxrss),
    }


def peak_rss_mib(ru_maxrss: int) -> float:
    """This process's peak resident memory: ``VmHWM`` where Linux has it, else ``ru_maxrss``.

    Not ``ru_maxrss`` on Linux: it survives ``exec``, so a child started by ``subprocess`` reports
    at least the peak of the parent it was forked from.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return ru_maxrss / 1024 ** (2 if sys.platform == "darwin" else 1)  # bytes on macOS, else KiB


def in_fresh_process(target: str, kwargs: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """``module:function`` called with ``kwargs`` in a new Python interpreter started with ``env``;
    its JSON-serialisable result.

    A new interpreter, not a fork: settings read at start-up (the C library's, from ``env``)
    and by the entry point (``keep_freed_memory``, before ``target`` imports torch) apply to it
    as they would to a ``run.py`` process.
    """
    module, function = target.split(":")
    code = (
        "import json, sys; from ipe_lightning.allocator import keep_freed_memory; "
        f"keep_freed_memory(); from {module} import {function} as run; "
        "print(json.dumps(run(**json.loads(sys.argv[1]))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(kwargs)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{target} failed in a fresh process:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(seconds: list[float], work: float, unit: str) -> dict[str, Any]:
    """Best and median time of the repeats, and ``work`` per second at the best time."""
    return {
        "seconds": [round(s, 4) for s in seconds],
        "best_s": round(min(seconds), 4),
        "median_s": round(statistics.median(seconds), 4),
        unit: round(work / min(seconds), 2),
    }


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """fast / naive speed, from the best and from the median times of one interleaved run."""
    naive, fast = results["naive"], results["fast"]
    return {
        "speedup_best": round(naive["best_s"] / fast["best_s"], 3),
        "speedup_median": round(naive["median_s"] / fast["median_s"], 3),
    }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on, including the load other processes put on the CPU."""
    info: dict[str, Any] = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def finish(report: dict[str, Any], json_path: str | None) -> int:
    """Print the report as JSON (and write it to ``json_path``); exit status 0."""
    if hasattr(os, "getloadavg"):
        report.setdefault("environment", {})["load_average_at_end"] = [
            round(x, 2) for x in os.getloadavg()
        ]
    text = json.dumps(report, indent=2)
    print(text)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(text + "\n")
    return 0


def autocast(device: torch.device, precision: str):
    """bf16 autocast for ``precision == "bf16"``, else a no-op context."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads (``None``: torch's default, one per core).

    On a CPU shared with other work, one thread per process can be the steadier choice: a
    multi-threaded op waits at every barrier for a thread the scheduler has parked.
    """
    if threads is not None:
        torch.set_num_threads(threads)


def pick_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def add_timing_options(parser: argparse.ArgumentParser) -> None:
    """The options every naive-vs-fast timing benchmark takes."""
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per decoder")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per decoder first")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    parser.add_argument("--precision", nargs="+", choices=["fp32", "bf16"], default=["fp32"])
    add_output_options(parser)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--threads`` and ``--json``, shared by all benchmarks."""
    parser.add_argument("--threads", type=int, help="CPU threads (default: one per core)")
    parser.add_argument("--json", help="also write the report to this file")


def new_report(benchmark: str, argv: list[str], device: torch.device) -> dict[str, Any]:
    """The report's header: which benchmark, the command that reproduces it, the machine."""
    return {
        "benchmark": benchmark,
        "command": f"python -m ipe_lightning.bench {benchmark} " + " ".join(argv),
        "environment": environment(device),
        "cases": {},
    }
