"""Images for the figure tests: an HR image and variants that differ from it in one region."""

from __future__ import annotations

import torch

from ipe_lightning.figure.drawing import FigureRow


def noisy(hr: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (hr + sigma * torch.randn(hr.shape, generator=generator)).clamp(0, 1)


def rows_with_one_region_that_differs(scales=(4.0, 12.0, 30.0)) -> list[FigureRow]:
    hr = torch.rand(1, 3, 96, 80, generator=torch.Generator().manual_seed(0))
    rows = []
    for index, scale in enumerate(scales):
        worse = noisy(hr, 0.05, 10 + index)
        worse[..., 40:60, 10:30] = 0  # the variants differ here only
        images = {"bicubic": noisy(hr, 0.1, index), "A": noisy(hr, 0.05, 20 + index), "B": worse}
        rows.append(FigureRow(scale, hr, images))
    return rows
