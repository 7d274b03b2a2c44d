"""Pixel coordinates and cells in the LIIF convention (docs/method.md §1).

An axis of ``n`` pixels spans ``(-1, 1)``; pixel ``i`` has its centre at ``-1 + (2i + 1) / n``.
Coordinates are ``(row, col)`` = ``(y, x)`` and flattened grids are row-major.
"""

from __future__ import annotations

import torch


def pixel_centers(n: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Centres of ``n`` pixels along one axis: ``-1 + (2i + 1) / n``."""
    if n <= 0:
        raise ValueError(f"an axis needs at least one pixel, got n={n}")
    return -1 + (2 * torch.arange(n, device=device, dtype=dtype) + 1) / n


def make_coord(
    size: tuple[int, int], *, flatten: bool = True, device=None, dtype=torch.float32
) -> torch.Tensor:
    """The ``(y, x)`` centre of every pixel of an ``H x W`` image.

    Returns ``(H * W, 2)`` row-major when ``flatten`` else ``(H, W, 2)``.
    """
    height, width = size
    ys = pixel_centers(height, device=device, dtype=dtype)
    xs = pixel_centers(width, device=device, dtype=dtype)
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)
    return grid.reshape(-1, 2) if flatten else grid


def coord_of_indices(
    flat_index: torch.Tensor, size: tuple[int, int], *, dtype=torch.float32
) -> torch.Tensor:
    """Centres of the pixels with row-major indices ``flat_index`` in an ``H x W`` image."""
    height, width = size
    rows = torch.div(flat_index, width, rounding_mode="floor")
    cols = flat_index - rows * width
    return torch.stack(
        [-1 + (2 * rows.to(dtype) + 1) / height, -1 + (2 * cols.to(dtype) + 1) / width], dim=-1
    )


def make_cell(size: tuple[int, int], n: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """The cell of every query in an ``H x W`` output: its full width ``(2 / H, 2 / W)``."""
    height, width = size
    return torch.tensor([2 / height, 2 / width], device=device, dtype=dtype).expand(n, 2).clone()


def sample_pixels(image: torch.Tensor, coord: torch.Tensor) -> torch.Tensor:
    """Nearest-pixel values of ``image (C, H, W)`` at ``coord (Q, 2)``; returns ``(Q, C)``."""
    _, height, width = image.shape
    rows = ((coord[:, 0] + 1) * height / 2).floor().long().clamp(0, height - 1)
    cols = ((coord[:, 1] + 1) * width / 2).floor().long().clamp(0, width - 1)
    return image[:, rows, cols].T
