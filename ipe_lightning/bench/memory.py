"""Peak memory (RSS) of whole-image upsampling, each case in a fresh process.

    python -m ipe_lightning.bench memory [--cases x4_1020x678 x2_2126x1463_tiled]
        [--impl fast|naive] [--tile 512] [--device cpu|cuda] [--precision fp32|bf16]
        [--threads N] [--json out.json]

Each case runs :func:`ipe_lightning.inference.upsample` with IPE-LIIF (EDSR-baseline, random
weights) on a random LR image in a child process, which reports its own peak resident set size
(Linux's ``VmHWM``; ``ru_maxrss`` from ``os.wait4`` elsewhere, which on Linux would also carry the
parent's peak through ``exec``). Sizes are written
width x height. Our targets: x4 of a 1020 x 678 LR (DIV2K x2 size) within 3 GiB; x2 of a
2126 x 1463 photo within 4 GiB with tiling. With ``--device cuda`` the child also reports the
peak of GPU memory that torch allocated (``torch.cuda.max_memory_allocated``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import torch

from ipe_lightning.bench._measure import (
    add_output_options,
    autocast,
    build_net,
    finish,
    new_report,
    peak_rss_mib,
    set_threads,
    synchronize,
)
from ipe_lightning.inference import upsample

GIB = 1024**3
# name: (LR width, LR height, scale, tiled, target peak RSS in GiB)
CASES: dict[str, tuple[int, int, float, bool, float]] = {
    "x4_1020x678": (1020, 678, 4.0, False, 3.0),
    "x2_2126x1463_tiled": (2126, 1463, 2.0, True, 4.0),
}


def run_case(name: str, impl: str, tile: int, device: str, precision: str) -> dict[str, Any]:
    """The child's work: upsample one image; report time and sizes on stdout as JSON."""
    width, height, scale, tiled, _ = CASES[name]
    target = torch.device(device)
    net = build_net("ipe_liif", impl).eval().to(target)
    image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    image = image.to(target)
    synchronize(target)
    start = time.perf_counter()
    with autocast(target, precision):
        output = upsample(net, image, scale=scale, tile=tile if tiled else None)
    synchronize(target)
    seconds = time.perf_counter() - start
    result = {
        "peak_rss_mib": peak_rss_mib(0),
        "seconds": round(seconds, 2),
        "output_size_wxh": [output.shape[-1], output.shape[-2]],
        "output_pixels_per_s": round(output.shape[-1] * output.shape[-2] / seconds, 1),
    }
    if target.type == "cuda":
        result["peak_cuda_allocated_gib"] = round(torch.cuda.max_memory_allocated(target) / GIB, 3)
    return result


def measure_in_child(
    name: str,
    impl: str,
    tile: int,
    threads: int | None,
    device: str = "cpu",
    precision: str = "fp32",
) -> dict[str, Any]:
    """Run ``name`` in a fresh interpreter; its peak RSS comes from the kernel's accounting."""
    command = [sys.executable, "-m", "ipe_lightning.bench.memory", "--child", name]
    command += ["--impl", impl, "--tile", str(tile), "--device", device, "--precision", precision]
    command += [] if threads is None else ["--threads", str(threads)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"memory case {name} failed with exit status {child.returncode}")
    measured = json.loads(stdout)
    own_peak = measured.pop("peak_rss_mib")
    # the child's VmHWM; 0 where it has none (not Linux): the kernel's figure for the child
    peak_bytes = own_peak * 2**20 if own_peak else usage.ru_maxrss * 1024
    width, height, scale, tiled, target = CASES[name]
    return {
        "lr_size_wxh": [width, height],
        "scale": scale,
        "tile": tile if tiled else None,
        "impl": impl,
        "device": device,
        "precision": precision,
        "threads": threads or torch.get_num_threads(),
        **measured,
        "peak_rss_gib": round(peak_bytes / GIB, 3),
        "target_gib": target,
        "within_target": peak_bytes <= target * GIB,
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ipe_lightning.bench memory", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--impl", choices=["fast", "naive"], default="fast")
    parser.add_argument("--tile", type=int, default=512, help="LR tile side of the tiled cases")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    add_output_options(parser)
    parser.add_argument("--child", choices=sorted(CASES), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    if args.child:
        print(json.dumps(run_case(args.child, args.impl, args.tile, args.device, args.precision)))
        return 0
    report = new_report("memory", argv, torch.device(args.device))
    for name in args.cases:
        report["cases"][name] = measure_in_child(
            name, args.impl, args.tile, args.threads, args.device, args.precision
        )
        case = report["cases"][name]
        print(f"{name}: {case['peak_rss_gib']} GiB in {case['seconds']} s", file=sys.stderr)
    return finish(report, args.json)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
