"""Whole-image decode throughput (output pixels/s), naive and fast decoders side by side.

    python -m ipe_lightning.bench decode [--cases ipe_liif_x4 ipe_liif_x12 liif_x4]
        [--repeats 3] [--warmup 1] [--device auto|cpu|cuda] [--precision fp32 [bf16]]
        [--batch 1] [--threads N] [--json out.json]

Each case upsamples a random LR image with :func:`ipe_lightning.inference.upsample` (encoder
included, default query chunks), EDSR-baseline encoder, random weights shared by both decoders.
Runs alternate naive / fast so both see the same machine load; the speed-up is the ratio of the
best times (and of the medians) of that one run. Our targets on a 2-core CPU: IPE-LIIF
>= 3.5x at x4 (128^2 -> 512^2) and >= 4.5x at x12 (48^2 LR); LIIF (plain MLP) >= 1.5x.

The roofline (:mod:`ipe_lightning.bench.roofline`): the FLOPs of every product the fast decode
runs, counted per output pixel, and this machine's GEMM speed measured in the same run, right
after each fast decode. ``roofline_ratio`` is the median over the repeats of the fast decode's
pixel rate over the rate the GEMM sustained for as long as that decode took, just after it
(``roofline_ratios`` lists them): a shared machine's speed swings within seconds, and a decode
of seconds averages the swings as the sustained GEMM does. ``roofline_ratio_peak`` sets the best
decode against the best single-product GEMM burst of the run, the stricter and noisier measure.
Our target on the CPU: >= 0.9.

``decode_layout`` is the fast decode's layout (:mod:`ipe_lightning.models.decode_calibration`):
its row block, whether the input products are stacked, whether it was calibrated in this run,
read from the cache or is the default, and the calibration's best seconds per candidate, with
the load average it was made at and whether it was ``kept`` in the cache.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from typing import Any

import torch

from ipe_lightning.bench import roofline
from ipe_lightning.bench._measure import (
    IMPLS,
    add_timing_options,
    autocast,
    build_net,
    finish,
    interleaved_times,
    new_report,
    pick_device,
    ratios,
    set_threads,
    summary,
    synchronize,
)
from ipe_lightning.inference import upsample
from ipe_lightning.models import decode_calibration

# name: (model preset, LR side, scale, target speed-up)
CASES: dict[str, tuple[str, int, float, float]] = {
    "ipe_liif_x4": ("ipe_liif", 128, 4.0, 3.5),
    "ipe_liif_x12": ("ipe_liif", 48, 12.0, 4.5),
    "liif_x4": ("liif", 128, 4.0, 1.5),
}


def decode_case(
    name: str,
    repeats: int,
    warmup: int,
    device: torch.device,
    precision: str,
    batch: int,
) -> dict[str, Any]:
    """Time both decoders on one case; also report how far their outputs are apart."""
    model, lr_side, scale, target = CASES[name]
    nets = {impl: build_net(model, impl).to(device).eval() for impl in IMPLS}
    image = torch.rand(batch, 3, lr_side, lr_side, generator=torch.Generator().manual_seed(0)).to(
        device
    )
    outputs: dict[str, torch.Tensor] = {}

    def run(impl: str):
        def decode() -> None:
            with autocast(device, precision):
                outputs[impl] = upsample(nets[impl], image, scale=scale)

        return decode

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    fast_seconds: list[float] = []
    peaks: list[float] = []  # GEMM bursts: the best single product
    sustained: list[float] = []  # GEMM over as long as the fast decode just before

    def timed_fast() -> None:
        start = time.perf_counter()
        run("fast")()
        synchronize(device)
        fast_seconds.append(time.perf_counter() - start)

    def gemm() -> None:
        peaks.append(roofline.gemm_peak(device, repeats=10, dtype=dtype))
        sustained.append(roofline.gemm_rate(device, fast_seconds[-1], dtype=dtype))

    # in this order, so each repeat's GEMM is timed right after its fast decode
    runs = {"naive": run("naive"), "fast": timed_fast, "gemm": gemm}
    times = interleaved_times(runs, repeats, warmup, device)
    # the warm-up runs' GEMMs are not timed with a decode
    peaks, sustained = peaks[warmup:], sustained[warmup:]
    pixels = outputs["fast"].shape[0] * outputs["fast"].shape[-2] * outputs["fast"].shape[-1]
    results = {impl: summary(times[impl], pixels, "pixels_per_s") for impl in IMPLS}
    flops_per_pixel = roofline.counted_flops(run("fast")) / pixels
    ceiling = roofline.roofline(flops_per_pixel, max(peaks))
    paired = roofline.paired_ratios(times["fast"], sustained, pixels, flops_per_pixel)
    return {
        "model": model,
        "lr_size": [lr_side, lr_side],
        "scale": scale,
        "output_size": list(outputs["fast"].shape[-2:]),
        "batch": batch,
        "precision": precision,
        **results,
        **ratios(results),
        "target_speedup": target,
        "fast_macs_per_pixel": round(flops_per_pixel / 2),
        "gemm_peak_gflops": round(max(peaks) / 1e9, 1),
        "gemm_gflops_range": [round(min(peaks) / 1e9, 1), round(max(peaks) / 1e9, 1)],
        "gemm_sustained_gflops": [round(rate / 1e9, 1) for rate in sustained],
        "roofline_pixels_per_s": round(ceiling, 1),
        "roofline_ratio": round(roofline.median_ratio(paired), 3),
        "roofline_ratios": [round(ratio, 3) for ratio in paired],
        "roofline_ratio_peak": round(results["fast"]["pixels_per_s"] / ceiling, 3),
        "max_abs_difference": float((outputs["fast"] - outputs["naive"]).abs().max()),
    }


def layout_report(choice: dict[str, Any]) -> dict[str, Any]:
    """The fast decode's layout, where it comes from, and the calibration's seconds per layout."""
    report = {**asdict(choice["layout"]), "source": choice["source"]}
    details = ("seconds", "rows", "load_average", "kept", "path")
    return report | {k: choice[k] for k in details if k in choice}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ipe_lightning.bench decode", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    add_timing_options(parser)
    parser.add_argument("--batch", type=int, default=1, help="images decoded together")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    device = pick_device(args.device)
    report = new_report("decode", argv, device)
    # the fast decode's layout: calibrated (or read from the cache) before anything is timed
    layout = layout_report(decode_calibration.inference_choice(device))
    for precision in args.precision:
        for name in args.cases:
            key = name if len(args.precision) == 1 else f"{name}_{precision}"
            report["cases"][key] = decode_case(
                name, args.repeats, args.warmup, device, precision, args.batch
            ) | {"decode_layout": layout}
            case = report["cases"][key]
            print(
                f"{key}: fast {case['speedup_best']}x naive, {case['fast']['pixels_per_s']:.0f} "
                f"px/s = {case['roofline_ratio']:.1%} of the roofline at the GEMM rate sustained "
                f"after each decode (median of the repeats), {case['roofline_ratio_peak']:.1%} "
                f"of the roofline at the best GEMM burst ({case['roofline_pixels_per_s']:.0f} "
                f"px/s: {case['fast_macs_per_pixel']} multiply-adds per pixel at "
                f"{case['gemm_peak_gflops']} GFLOP/s); decode layout "
                f"{case['decode_layout']['row_block']}-row blocks, stacked input products "
                f"{case['decode_layout']['stacked_inputs']} ({case['decode_layout']['source']})",
                file=sys.stderr,
            )
    return finish(report, args.json)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
