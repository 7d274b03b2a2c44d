"""Hand-made job results for the table tests: Table 4 with two finished rows, a failure, a kill."""

from __future__ import annotations

from ipe_lightning.results import JobResult

TABLE4_SCALES = (2, 3, 4, 6, 18, 30)


def finished(psnr: dict[int, float], *, ssim: float = 0.9, bicubic: float = 30.0) -> JobResult:
    """A finished job with ``psnr`` per DIV2K scale (bicubic PSNR: ``bicubic − s/10``)."""
    metrics = {
        f"div2k/x{s}": {
            "psnr": value,
            "ssim": ssim,
            "bicubic_psnr": bicubic - s / 10,
            "bicubic_ssim": 0.8,
        }
        for s, value in psnr.items()
    }
    return JobResult("finished", metrics, "")


def table4_results() -> dict[str, JobResult]:
    """L=10 beats L=4 except at x30 (tie); LIIF w/ PE failed; the other variants never ran."""
    return {
        "table4_ipe_liif_l10": finished(
            {2: 34.75, 3: 31.00, 4: 29.10, 6: 26.80, 18: 22.30, 30: 20.50}
        ),
        "table4_ipe_liif_l4": finished(
            {2: 34.70, 3: 30.90, 4: 29.00, 6: 26.70, 18: 22.20, 30: 20.50}
        ),
        "table4_liif_pe": JobResult("failed", {}, "NonFiniteLossError: loss is nan at step 4"),
        "table4_liif": JobResult("interrupted", {}, "stopped before its results"),
    }


def row_of(table, variant):
    (row,) = [r for r in table.rows if r.spec.variant == variant]
    return row
