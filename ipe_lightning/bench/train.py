"""Training-step throughput (samples/s): naive and fast decoders side by side, variants of the
fast step (fused Adam, torch.compile), and the fast one with and without the allocator tuning
(page faults, CPU seconds, steps/s).

    python -m ipe_lightning.bench train [--model ipe_liif|liif] [--batch 16] [--lr-side 48]
        [--repeats 3] [--warmup 1] [--steps 3] [--allocator auto|compare|skip]
        [--variants fast+fused fast+compile fast+fused+compile=reduce-overhead ...]
        [--utilisation-s 0] [--device auto|cpu|cuda] [--precision fp32 [bf16]] [--threads N]
        [--json out.json]

One step is the paper's (docs/method.md §3): a batch of 16 LR patches of 48 x 48, 2304 queries
per sample (``--lr-side`` squared) at a scale drawn from U(1, 4), forward through encoder and
decoder, L1 loss, backward and an Adam update (lr 1e-4). Inputs are random (speed does not depend
on them); both decoders start from the same weights and take turns, so they see the same machine
load. Target on a 2-core CPU: IPE-LIIF fast >= 2x naive.

Variants (``--variants``, ``IMPL[+fused][+compile[=MODE]]``) are timed in the same rotation:
``fused`` takes Adam's fused kernel, ``compile`` runs the network through ``torch.compile`` (mode
``default`` unless named; ``reduce-overhead`` adds CUDA graphs). A compiled step is compiled,
warmed up and recorded before the timing (its ``compile_s`` is the first call). On CUDA each case
also reports the synchronising CUDA calls of one step (``host_syncs_per_step``, torch's sync
debug mode) and, with ``--utilisation-s``, nvidia-smi's GPU utilisation while it runs back to back.

Allocator (``--allocator compare``, the default on a CPU with glibc): the fast step in fresh
processes, ``--repeats`` with the tuning of ``ipe_lightning.allocator`` and as many with glibc's
defaults (``IPE_LIGHTNING_MALLOC_TUNING=0``), alternating (on off off on ...), each ``--warmup``
untimed and ``--steps`` timed steps on the same seed and shapes. Minor page faults and system
time are counted by the kernel and hold on a busy machine; steps/s does not.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import torch

from ipe_lightning import allocator
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
from ipe_lightning.bench.train_allocator import allocator_case, allocator_lines
from ipe_lightning.coords import coord_of_indices
from ipe_lightning.module import COMPILE_MODES

LR_SIDE = 48  # docs/method.md §3: 48 x 48 LR patches, as many queries (2304) per sample
TARGET_SPEEDUP = 2.0
# Calls of a compiled step before the timing: compilation, then (reduce-overhead) the CUDA graph
# trees' warm-up run and recording (torch.compile's documentation), so the timing sees replays.
COMPILED_WARMUP = 3
UTILISATION_PERIOD_MS = 100  # nvidia-smi's sampling period
UTILISATION_SKIPPED_SAMPLES = 2  # nvidia-smi's first samples cover time before the steps


@dataclass(frozen=True)
class Variant:
    """One way of running the training step: decoder impl, fused Adam, torch.compile mode."""

    impl: str
    fused: bool = False
    compile_mode: str | None = None

    @property
    def name(self) -> str:
        parts = [self.impl] + (["fused"] if self.fused else [])
        if self.compile_mode is not None:
            parts.append(
                "compile" if self.compile_mode == "default" else f"compile={self.compile_mode}"
            )
        return "+".join(parts)

    @staticmethod
    def parse(text: str) -> Variant:
        """``IMPL[+fused][+compile[=MODE]]``, e.g. ``fast+fused+compile=reduce-overhead``."""
        impl, *options = text.split("+")
        if impl not in IMPLS:
            raise argparse.ArgumentTypeError(f"{text!r}: the impl must be one of {IMPLS}")
        fused, mode = False, None
        for option in options:
            name, _, value = option.partition("=")
            if option == "fused":
                fused = True
            elif name == "compile" and (value or "default") in COMPILE_MODES:
                mode = value or "default"
            else:
                raise argparse.ArgumentTypeError(
                    f"{text!r}: options are fused and compile[=MODE], MODE one of {COMPILE_MODES}"
                )
        return Variant(impl, fused, mode)


def training_batch(batch: int, seed: int = 0, lr_side: int = LR_SIDE) -> dict[str, torch.Tensor]:
    """Random LR patches with queries as the training sampler draws them (docs/method.md §3)."""
    queries = lr_side * lr_side
    generator = torch.Generator().manual_seed(seed)
    coords, cells = [], []
    for _ in range(batch):
        scale = 1 + 3 * torch.rand((), generator=generator).item()  # s ~ U(1, 4)
        hr_side = round(lr_side * scale)
        index = torch.randperm(hr_side * hr_side, generator=generator)[:queries]
        coords.append(coord_of_indices(index, (hr_side, hr_side)))
        cells.append(torch.tensor([2 / hr_side, 2 / hr_side]).expand(queries, 2))
    return {
        "lr": (torch.rand(batch, 3, lr_side, lr_side, generator=generator) - 0.5) / 0.5,
        "coord": torch.stack(coords),
        "cell": torch.stack(cells),
        "gt": (torch.rand(batch, queries, 3, generator=generator) - 0.5) / 0.5,
    }


def training_step(
    net: torch.nn.Module, optimizer, batch: dict, device, precision: str, compiled: bool = False
):
    """One step of the paper's training: L1 loss in normalised space, backward, Adam."""

    def step() -> None:
        if compiled:
            torch.compiler.cudagraph_mark_step_begin()  # one training step per call
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            prediction = net(batch["lr"], batch["coord"], batch["cell"])
        loss = (prediction.float() - batch["gt"]).abs().mean()
        loss.backward()
        optimizer.step()

    return step


def prepared_step(
    model: str,
    impl: str,
    batch_size: int,
    lr_side: int,
    device,
    precision: str,
    fused: bool = False,
    compile_mode: str | None = None,
):
    """A step on fresh weights, a fresh Adam and the benchmark's batch (seed 0 for all three)."""
    batch = {k: v.to(device) for k, v in training_batch(batch_size, lr_side=lr_side).items()}
    net = build_net(model, impl).to(device).train()
    options = {"fused": True} if fused else {}
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.999), **options)
    if compile_mode is not None:
        net = torch.compile(net, mode=compile_mode)
    return training_step(
        net, optimizer, batch, device, precision, compiled=compile_mode is not None
    )


def host_syncs(step) -> int:
    """Synchronising CUDA calls of one ``step`` (torch's sync debug mode, backward included:
    autograd replays its threads' warnings in the caller)."""
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    return sum("synchronizing" in str(warning.message) for warning in caught)


def _nvidia_smi_ids(device: torch.device) -> list[str]:
    """How nvidia-smi may name ``device``: its UUID (right whatever CUDA_VISIBLE_DEVICES says),
    else torch's index."""
    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    index = str(device.index if device.index is not None else torch.cuda.current_device())
    return ([f"GPU-{uuid}"] if uuid is not None else []) + [index]


def gpu_utilisation(step, seconds: float, device: torch.device) -> dict[str, Any]:
    """nvidia-smi's ``utilization.gpu`` (the percentage of each sample period in which a kernel
    ran) while ``step`` runs back to back for ``seconds``, and the steps/s meanwhile."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {"skipped": "no nvidia-smi on PATH"}
    for gpu in _nvidia_smi_ids(device):
        query = [smi, "-i", gpu, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        probe = subprocess.run(query, capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip().isdigit():
            break
    else:
        return {"skipped": f"nvidia-smi gave no utilisation: {probe.stdout or probe.stderr}"[:300]}
    sampler = subprocess.Popen(
        [*query, "-lms", str(UTILISATION_PERIOD_MS)], stdout=subprocess.PIPE, text=True
    )
    try:
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step()
            steps += 1
        synchronize(device)
        wall_s = time.perf_counter() - start
    finally:
        sampler.terminate()
        output, _ = sampler.communicate(timeout=30)
    samples = [int(value) for value in output.split() if value.isdigit()]
    kept = samples[UTILISATION_SKIPPED_SAMPLES:]
    return {
        "mean_pct": round(statistics.mean(kept), 1) if kept else None,
        "median_pct": statistics.median(kept) if kept else None,
        "samples": len(kept),
        "period_ms": UTILISATION_PERIOD_MS,
        "steps_per_s": round(steps / wall_s, 2),
    }


def train_case(
    model: str,
    batch_size: int,
    repeats: int,
    warmup: int,
    device: torch.device,
    precision: str,
    lr_side: int = LR_SIDE,
    variants: list[Variant] | tuple[Variant, ...] = (),
    utilisation_s: float = 0.0,
) -> dict[str, Any]:
    cases = {v.name: v for v in [Variant("naive"), Variant("fast"), *variants]}
    steps, compile_s = {}, {}
    for name, v in cases.items():
        steps[name] = prepared_step(
            model, v.impl, batch_size, lr_side, device, precision, v.fused, v.compile_mode
        )
        if v.compile_mode is not None:
            start = time.perf_counter()
            for _ in range(COMPILED_WARMUP):
                steps[name]()
                synchronize(device)
                compile_s.setdefault(name, round(time.perf_counter() - start, 1))
    times = interleaved_times(steps, repeats, warmup, device)
    results = {name: summary(times[name], batch_size, "samples_per_s") for name in steps}
    for name, result in results.items():
        result["steps_per_s"] = round(1 / result["best_s"], 4)
        if name not in IMPLS:
            result["speedup_over_fast"] = round(results["fast"]["best_s"] / result["best_s"], 3)
        if name in compile_s:
            result["compile_s"] = compile_s[name]
    if device.type == "cuda":
        for name, step in steps.items():
            results[name]["host_syncs_per_step"] = host_syncs(step)
            if utilisation_s > 0:
                results[name]["gpu_utilisation"] = gpu_utilisation(step, utilisation_s, device)
    return {
        "model": model,
        "batch": batch_size,
        "lr_size": [lr_side, lr_side],
        "queries_per_sample": lr_side * lr_side,
        "precision": precision,
        **results,
        **ratios(results),
        "target_speedup": TARGET_SPEEDUP if model == "ipe_liif" else None,
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ipe_lightning.bench train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", choices=["ipe_liif", "liif"], default="ipe_liif")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument(
        "--lr-side", type=int, default=LR_SIDE, help="LR patch side; queries = its square"
    )
    parser.add_argument(
        "--allocator",
        choices=["auto", "compare", "skip"],
        default="auto",
        help="compare the allocator tuning on and off (auto: on a CPU with glibc)",
    )
    parser.add_argument(
        "--steps", type=int, default=3, help="timed steps per process of the allocator comparison"
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        type=Variant.parse,
        default=[],
        metavar="IMPL[+fused][+compile[=MODE]]",
        help="more cases timed with naive and fast, e.g. fast+fused fast+fused+compile",
    )
    parser.add_argument(
        "--utilisation-s",
        type=float,
        default=0.0,
        help="CUDA: each case this long back to back while nvidia-smi samples utilisation",
    )
    add_timing_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    device = pick_device(args.device)
    compare = args.allocator == "compare" or (
        args.allocator == "auto" and device.type == "cpu" and allocator.glibc_version() is not None
    )
    report = new_report("train", argv, device)
    report["environment"]["allocator"] = allocator.keep_freed_memory().state
    for precision in args.precision:
        key = f"{args.model}_{precision}"
        case = train_case(
            args.model,
            args.batch,
            args.repeats,
            args.warmup,
            device,
            precision,
            args.lr_side,
            args.variants,
            args.utilisation_s,
        )
        faster = [
            f", {v.name} {case[v.name]['speedup_over_fast']}x fast"
            for v in args.variants
            if v.name not in IMPLS
        ]
        print(f"{key}: fast {case['speedup_best']}x naive{''.join(faster)}", file=sys.stderr)
        if compare:
            case["allocator"] = allocator_case(
                args.model,
                args.batch,
                args.lr_side,
                args.repeats,
                args.warmup,
                args.steps,
                precision,
                args.threads,
            )
            print("\n".join(allocator_lines(key, case["allocator"])), file=sys.stderr)
        report["cases"][key] = case
    return finish(report, args.json)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
