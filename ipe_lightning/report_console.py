"""A run's metrics as a console table, next to the bicubic baseline."""

from __future__ import annotations

from math import nan
from typing import Any


def format_record(record: dict[str, Any]) -> str:
    rows = [f"{'set/scale':<22}{'PSNR':>8}{'bicubic':>9}{'gain':>8}{'SSIM':>8}{'bicubic':>9}"]
    for loader, values in record.get("metrics", {}).items():
        psnr, bicubic = values.get("psnr", nan), values.get("bicubic_psnr", nan)
        ssim, bicubic_ssim = values.get("ssim", nan), values.get("bicubic_ssim", nan)
        rows.append(
            f"{loader:<22}{psnr:>8.2f}{bicubic:>9.2f}{psnr - bicubic:>+8.2f}"
            f"{ssim:>8.4f}{bicubic_ssim:>9.4f}"
        )
    return "\n".join(rows)


def print_record(record: dict[str, Any]) -> None:
    if record.get("metrics"):
        print(f"\n{record.get('model', '')}: test results (PSNR in dB)\n" + format_record(record))
