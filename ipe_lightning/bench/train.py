"""Training-step throughput (samples/s), naive and fast decoders side by side.

    python -m ipe_lightning.bench train [--model ipe_liif|liif] [--batch 16] [--repeats 3]
        [--warmup 1] [--device auto|cpu|cuda] [--precision fp32 [bf16]] [--threads N]
        [--json out.json]

One step is the paper's (METHOD.md §3): a batch of 16 LR patches of 48 x 48, 2304 queries per
sample at a scale drawn from U(1, 4), forward through encoder and decoder, L1 loss, backward and
an Adam update (lr 1e-4). Inputs are random (speed does not depend on them); both decoders start
from the same weights and take turns, so they see the same machine load. Issue 6 target on a
2-core CPU: IPE-LIIF >= 2x.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

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
)
from ipe_lightning.coords import coord_of_indices

LR_SIDE = 48  # METHOD.md §3: 48 x 48 LR patches
QUERIES = LR_SIDE * LR_SIDE  # 2304 HR pixels per sample
TARGET_SPEEDUP = 2.0


def training_batch(batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random LR patches with queries as the training sampler draws them (METHOD.md §3)."""
    generator = torch.Generator().manual_seed(seed)
    coords, cells = [], []
    for _ in range(batch):
        scale = 1 + 3 * torch.rand((), generator=generator).item()  # s ~ U(1, 4)
        hr_side = round(LR_SIDE * scale)
        index = torch.randperm(hr_side * hr_side, generator=generator)[:QUERIES]
        coords.append(coord_of_indices(index, (hr_side, hr_side)))
        cells.append(torch.tensor([2 / hr_side, 2 / hr_side]).expand(QUERIES, 2))
    return {
        "lr": (torch.rand(batch, 3, LR_SIDE, LR_SIDE, generator=generator) - 0.5) / 0.5,
        "coord": torch.stack(coords),
        "cell": torch.stack(cells),
        "gt": (torch.rand(batch, QUERIES, 3, generator=generator) - 0.5) / 0.5,
    }


def training_step(net: torch.nn.Module, optimizer, batch: dict, device, precision: str):
    """One step of the paper's training: L1 loss in normalised space, backward, Adam."""

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            prediction = net(batch["lr"], batch["coord"], batch["cell"])
        loss = (prediction.float() - batch["gt"]).abs().mean()
        loss.backward()
        optimizer.step()

    return step


def train_case(
    model: str, batch_size: int, repeats: int, warmup: int, device: torch.device, precision: str
) -> dict[str, Any]:
    batch = {k: v.to(device) for k, v in training_batch(batch_size).items()}
    steps = {}
    for impl in IMPLS:
        net = build_net(model, impl).to(device).train()
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4, betas=(0.9, 0.999))
        steps[impl] = training_step(net, optimizer, batch, device, precision)
    times = interleaved_times(steps, repeats, warmup, device)
    results = {impl: summary(times[impl], batch_size, "samples_per_s") for impl in IMPLS}
    for impl in IMPLS:
        results[impl]["steps_per_s"] = round(1 / results[impl]["best_s"], 4)
    return {
        "model": model,
        "batch": batch_size,
        "lr_size": [LR_SIDE, LR_SIDE],
        "queries_per_sample": QUERIES,
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
    add_timing_options(parser)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    device = pick_device(args.device)
    report = new_report("train", argv, device)
    for precision in args.precision:
        key = f"{args.model}_{precision}"
        report["cases"][key] = train_case(
            args.model, args.batch, args.repeats, args.warmup, device, precision
        )
        print(f"{key}: {report['cases'][key]['speedup_best']}x", file=sys.stderr)
    return finish(report, args.json)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
