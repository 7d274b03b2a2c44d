"""A run's metrics as a console table, next to the bicubic baseline, titled by the run's name
(the variants of one table share a model), sent to the console and the job's log."""

from __future__ import annotations

from math import nan
from typing import Any

from ipe_lightning.runtime.log import get_logger

log = get_logger(__name__)


def format_record(record: dict[str, Any]) -> str:
    rows = [
        f"{'set/scale':<22}{'PSNR':>8}{'bicubic PSNR':>14}{'gain':>8}{'SSIM':>8}"
        f"{'bicubic SSIM':>14}"
    ]
    for loader, values in record.get("metrics", {}).items():
        psnr, bicubic = values.get("psnr", nan), values.get("bicubic_psnr", nan)
        ssim, bicubic_ssim = values.get("ssim", nan), values.get("bicubic_ssim", nan)
        rows.append(
            f"{loader:<22}{psnr:>8.2f}{bicubic:>14.2f}{psnr - bicubic:>+8.2f}"
            f"{ssim:>8.4f}{bicubic_ssim:>14.4f}"
        )
    return "\n".join(rows)


def format_duration(seconds: float) -> str:
    """``452.3`` -> ``"7 min 32 s"``; an hour or more as ``"1 h 02 min"``."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def print_wall_time(seconds: float, what: str = "run.py") -> None:
    """The last line of a run: how long it took, on the console and in the job's log file."""
    log.info(f"{what} finished in {format_duration(seconds)} (wall time, start-up included)")


def record_title(record: dict[str, Any]) -> str:
    """The run's name (what sweeps and W&B call it), else its model's."""
    return str(record.get("run_name") or record.get("model") or "run")


def print_record(record: dict[str, Any]) -> None:
    """The results table, on the console and in the job's log file (``run.log``)."""
    if record.get("metrics"):
        log.info(f"\n{record_title(record)}: test results (PSNR in dB)\n" + format_record(record))
