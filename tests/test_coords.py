"""Claims about the LIIF coordinate convention (docs/method.md §1).

Oracles: the closed-form pixel centre ``-1 + (2i + 1) / n`` written out with plain Python loops,
and ``F.grid_sample(mode="nearest", align_corners=False)`` as a second implementation of the same
convention.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ipe_lightning.coords import (
    coord_of_indices,
    make_cell,
    make_coord,
    pixel_centers,
    sample_pixels,
)


def centre(i: int, n: int) -> float:
    # docs/method.md §1: pixel i of n spans [-1 + 2i/n, -1 + 2(i+1)/n]; its centre is the midpoint.
    return ((-1 + 2 * i / n) + (-1 + 2 * (i + 1) / n)) / 2


@pytest.mark.parametrize("n", [1, 2, 5, 8, 13])
def test_pixel_centers_are_midpoints_of_equal_cells_of_minus_one_to_one(n):
    got = pixel_centers(n, dtype=torch.float64)
    assert got.shape == (n,)
    expected = torch.tensor([centre(i, n) for i in range(n)], dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)
    # symmetric about 0 and strictly inside (-1, 1)
    torch.testing.assert_close(got, -got.flip(0), rtol=0, atol=1e-15)
    assert (got.abs() < 1).all()


def test_pixel_centers_rejects_an_empty_axis():
    with pytest.raises(ValueError, match="n=0"):
        pixel_centers(0)


@pytest.mark.parametrize("size", [(3, 4), (1, 5), (6, 1), (7, 7)])
def test_make_coord_is_row_major_with_y_first(size):
    height, width = size
    flat = make_coord(size, dtype=torch.float64)
    assert flat.shape == (height * width, 2)
    for i in range(height):
        for j in range(width):
            row = flat[i * width + j].tolist()
            assert row == pytest.approx([centre(i, height), centre(j, width)], abs=1e-15)
    grid = make_coord(size, flatten=False, dtype=torch.float64)
    assert grid.shape == (height, width, 2)
    torch.testing.assert_close(grid.reshape(-1, 2), flat, rtol=0, atol=0)


def test_make_cell_is_the_full_width_of_an_output_pixel():
    cell = make_cell((12, 30), 5, dtype=torch.float64)
    assert cell.shape == (5, 2)
    expected = torch.tensor([[2 / 12, 2 / 30]] * 5, dtype=torch.float64)
    torch.testing.assert_close(cell, expected, rtol=0, atol=0)
    # one output pixel spans one cell: n cells tile the axis' length 2 exactly
    assert cell[0, 0].item() * 12 == pytest.approx(2)
    # each row is its own storage, so callers may modify one query's cell in place
    cell[0, 0] = 7.0
    assert cell[1, 0].item() == pytest.approx(2 / 12)


def test_coord_of_indices_equals_the_rows_of_make_coord():
    size = (9, 11)
    index = torch.tensor([0, 1, 10, 11, 50, 98, 37])
    got = coord_of_indices(index, size, dtype=torch.float64)
    torch.testing.assert_close(got, make_coord(size, dtype=torch.float64)[index], rtol=0, atol=0)


def test_coord_of_indices_are_the_pixel_centres_of_the_row_major_index():
    height, width = 3, 5
    got = coord_of_indices(torch.arange(height * width), (height, width), dtype=torch.float64)
    for k in range(height * width):
        i, j = divmod(k, width)
        assert got[k].tolist() == pytest.approx([centre(i, height), centre(j, width)], abs=1e-15)


@pytest.mark.parametrize("size", [(4, 6), (5, 3), (1, 7)])
def test_grid_sample_nearest_at_make_coord_reads_back_every_pixel(size):
    # Second library: grid_sample with align_corners=False uses the same pixel-centre convention,
    # with (x, y) order, so sampling at our flipped (y, x) coordinates must return the image.
    height, width = size
    image = torch.arange(3 * height * width, dtype=torch.float32).view(1, 3, height, width)
    grid = make_coord(size, flatten=False).flip(-1).unsqueeze(0)
    read = F.grid_sample(image, grid, mode="nearest", align_corners=False)
    torch.testing.assert_close(read, image, rtol=0, atol=0)


def test_sample_pixels_returns_the_pixel_that_contains_the_coordinate():
    generator = torch.Generator().manual_seed(0)
    height, width = 5, 7
    image = torch.rand(3, height, width, generator=generator)
    # at the centres: the image itself, row-major
    torch.testing.assert_close(
        sample_pixels(image, make_coord((height, width))), image.flatten(1).T, rtol=0, atol=0
    )
    # anywhere strictly inside pixel (i, j): that pixel's value
    rows = torch.randint(0, height, (50,), generator=generator)
    cols = torch.randint(0, width, (50,), generator=generator)
    frac = torch.rand(50, 2, generator=generator) * 0.98 + 0.01
    coord = torch.stack(
        [-1 + 2 * (rows + frac[:, 0]) / height, -1 + 2 * (cols + frac[:, 1]) / width], dim=-1
    )
    torch.testing.assert_close(sample_pixels(image, coord), image[:, rows, cols].T)
