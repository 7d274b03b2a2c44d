"""The compute roofline of a decode: the machine's measured GEMM peak over the work it does.

``gemm_peak`` times ``torch.mm`` of the decoder's hidden-layer shape (16384 rows of 256 by
256 x 256, one row block of :mod:`ipe_lightning.models.fast_decoder`) in bursts of one product,
``gemm_rate`` over a stretch of products as long as a decode; ``counted_flops`` counts
the floating-point operations of the matrix products and convolutions a call runs (the kernel
launches themselves, not a formula), so the count follows the code: the encoder, the projection
convolution and every per-query product. ``roofline`` is the pixel rate that peak would give if
nothing but those products ran, at that peak's speed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from ipe_lightning.bench._measure import synchronize

GEMM_SHAPE = (16384, 256, 256)  # rows, inner, output: one row block of a 256-wide hidden layer
GEMM_FLOPS = 2 * GEMM_SHAPE[0] * GEMM_SHAPE[1] * GEMM_SHAPE[2]


def _inplace_addmm_flops(bias, first, second, *args, out_shape=None, **kwargs) -> int:
    """``addmm_`` (the fast decoder accumulates in place); torch's counter has no entry for it."""
    return 2 * first[0] * first[1] * second[1]


def counted_flops(call: Callable[[], object]) -> int:
    """Floating-point operations of every matrix product and convolution ``call`` runs (a
    multiply-add counts 2)."""
    counter = FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten.addmm_: _inplace_addmm_flops}
    )
    with counter:
        call()
    return int(counter.get_total_flops())


def _gemm_operands(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Left, right and output of a :data:`GEMM_SHAPE` product, warmed up."""
    rows, inner, output = GEMM_SHAPE
    generator = torch.Generator().manual_seed(0)
    left = torch.rand(rows, inner, generator=generator).to(device, dtype)
    right = torch.rand(inner, output, generator=generator).to(device, dtype)
    result = torch.empty(rows, output, device=device, dtype=dtype)
    for _ in range(3):
        torch.mm(left, right, out=result)
    return left, right, result


def gemm_peak(device: torch.device, repeats: int = 30, dtype: torch.dtype = torch.float32) -> float:
    """The best FLOP/s of ``torch.mm`` at :data:`GEMM_SHAPE` over ``repeats`` timed products (a
    burst: one product takes tens of milliseconds on a CPU)."""
    left, right, result = _gemm_operands(device, dtype)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(left, right, out=result)
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return GEMM_FLOPS / best


def gemm_rate(
    device: torch.device, seconds: float, dtype: torch.dtype = torch.float32, minimum: int = 3
) -> float:
    """The FLOP/s ``torch.mm`` at :data:`GEMM_SHAPE` sustains over ``seconds`` of products back to
    back (at least ``minimum`` of them): the GEMM speed over as long a stretch as a decode, so
    the machine's ups and downs in it average out as they do in the decode."""
    left, right, result = _gemm_operands(device, dtype)
    products = 0
    synchronize(device)
    start = time.perf_counter()
    while True:
        torch.mm(left, right, out=result)
        products += 1
        if products >= minimum:
            synchronize(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return GEMM_FLOPS * products / elapsed


def roofline(flops_per_pixel: float, peak_flops_per_s: float) -> float:
    """Output pixels per second if the products ran at the GEMM peak and nothing else ran."""
    return peak_flops_per_s / flops_per_pixel


def paired_ratios(
    seconds: list[float], gemm_rates: list[float], pixels: int, flops_per_pixel: float
) -> list[float]:
    """Per repeat, the decode's pixel rate over the roofline of the GEMM rate timed next to it.

    Pairs, not the best of each: a shared machine's speed drifts within a run, and the best GEMM
    and the best decode can come from different moments.
    """
    if len(seconds) != len(gemm_rates) or not seconds:
        raise ValueError(
            f"need one GEMM rate per decode time, got {len(gemm_rates)} and {len(seconds)}"
        )
    return [
        pixels / elapsed / roofline(flops_per_pixel, rate)
        for elapsed, rate in zip(seconds, gemm_rates, strict=True)
    ]


def median_ratio(ratios: list[float]) -> float:
    """The median of :func:`paired_ratios`: the decode's share of the roofline this run."""
    return statistics.median(ratios)
