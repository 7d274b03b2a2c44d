"""Claims about the feature lookup, the 3x3 unfold and LIIF's local ensemble (docs/method.md §2).

Oracles: ``F.grid_sample`` (nearest and bilinear, a second implementation of the same pixel
convention), bilinear weights of the four surrounding LR centres computed directly, and an unfold
written with explicit 3x3 neighbourhood indexing.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ipe_lightning.coords import pixel_centers
from ipe_lightning.models import LIIF, NoEncoding, PlainMLP
from ipe_lightning.models.lookup import (
    ensemble_lookup,
    ensemble_shifts,
    ensemble_weights,
    nearest_index,
    take_rows,
    unfold_features,
)

SIZES = [(5, 7), (4, 6), (1, 3), (6, 1)]


def grid_sample_index(coord: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Row-major index of the LR pixel that ``grid_sample`` nearest reads at ``coord (Q, 2)``."""
    height, width = size
    index_map = torch.arange(height * width, dtype=torch.float32).view(1, 1, height, width)
    grid = coord.flip(-1).view(1, 1, -1, 2)  # (y, x) → grid_sample's (x, y)
    read = F.grid_sample(index_map, grid, mode="nearest", align_corners=False)
    return read.view(-1).round().long()


def boundaries(n: int) -> torch.Tensor:
    # the interior pixel boundaries -1 + 2i/n, i = 1..n-1, computed in float32 as the net would
    return -1 + 2 * torch.arange(1, n, dtype=torch.float32) / n


@pytest.mark.parametrize("size", SIZES)
def test_nearest_index_equals_grid_sample_nearest_on_random_coordinates(size):
    generator = torch.Generator().manual_seed(0)
    # the range LIIF queries after its clamp to [-1 + 1e-6, 1 - 1e-6]
    coord = (torch.rand(500, 2, generator=generator) * 2 - 1).clamp(-1 + 1e-6, 1 - 1e-6)
    torch.testing.assert_close(nearest_index(coord, size), grid_sample_index(coord, size))


@pytest.mark.parametrize("size", SIZES)
def test_nearest_index_equals_grid_sample_nearest_on_pixel_boundaries(size):
    height, width = size
    ys = torch.cat([boundaries(height), torch.tensor([-1 + 1e-6, 1 - 1e-6, 0.0])])
    xs = torch.cat([boundaries(width), torch.tensor([-1 + 1e-6, 1 - 1e-6, 0.0])])
    coord = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).view(-1, 2)
    torch.testing.assert_close(nearest_index(coord, size), grid_sample_index(coord, size))


def test_nearest_index_keeps_batch_dimensions():
    generator = torch.Generator().manual_seed(1)
    coord = torch.rand(2, 3, 4, 2, generator=generator) * 2 - 1
    got = nearest_index(coord, (5, 7))
    assert got.shape == (2, 3, 4)
    torch.testing.assert_close(got.view(-1), grid_sample_index(coord.view(-1, 2), (5, 7)))


def naive_unfold(feat: torch.Tensor) -> torch.Tensor:
    """Each position's zero-padded 3x3 neighbourhood, channel order ``c*9 + ky*3 + kx``."""
    batch, channels, height, width = feat.shape
    out = torch.zeros(batch, channels * 9, height, width, dtype=feat.dtype)
    for c in range(channels):
        for ky in range(3):
            for kx in range(3):
                for i in range(height):
                    for j in range(width):
                        y, x = i + ky - 1, j + kx - 1
                        if 0 <= y < height and 0 <= x < width:
                            out[:, c * 9 + ky * 3 + kx, i, j] = feat[:, c, y, x]
    return out


def test_unfold_is_the_zero_padded_3x3_neighbourhood_in_channel_major_order():
    feat = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(unfold_features(feat), naive_unfold(feat), rtol=0, atol=0)


def test_ensemble_shifts_are_half_an_lr_pixel_plus_a_positive_epsilon_in_liif_order():
    got = ensemble_shifts((4, 5), local_ensemble=True)
    # docs/method.md §2: order (-1,-1), (-1,+1), (+1,-1), (+1,+1); shift v/h + 1e-6 (eps always +)
    expected = [(vy / 4 + 1e-6, vx / 5 + 1e-6) for vy, vx in [(-1, -1), (-1, 1), (1, -1), (1, 1)]]
    assert len(got) == 4
    for g, e in zip(got, expected, strict=True):
        assert g == pytest.approx(e, abs=1e-12)
    assert ensemble_shifts((4, 5), local_ensemble=False) == [(0.0, 0.0)]


def bilinear_branch_offsets(ty: float, tx: float) -> list[torch.Tensor]:
    # A query at fraction (ty, tx) of the way from the top-left LR centre p00 to p11: its offsets
    # c_t = (x_q - p_t) * (h, w) from the four surrounding centres, in LIIF's branch order
    # p00, p01, p10, p11; one LR pixel is 2 units.
    return [
        torch.tensor([2 * (ty - dy), 2 * (tx - dx)], dtype=torch.float64)
        for dy in (0, 1)
        for dx in (0, 1)
    ]


def test_ensemble_weights_are_the_bilinear_weights_of_the_four_surrounding_centres():
    generator = torch.Generator().manual_seed(3)
    for ty, tx in torch.rand(20, 2, generator=generator, dtype=torch.float64).tolist():
        weights = ensemble_weights(bilinear_branch_offsets(ty, tx))
        bilinear = [(1 - ty) * (1 - tx), (1 - ty) * tx, ty * (1 - tx), ty * tx]
        assert weights.tolist() == pytest.approx(bilinear, abs=1e-8)


def test_ensemble_weights_sum_to_one_for_any_offsets_even_degenerate_ones():
    generator = torch.Generator().manual_seed(4)
    offsets = [torch.randn(6, 9, 2, generator=generator, dtype=torch.float64) for _ in range(4)]
    offsets[0][0] = 0.0  # a query on a centre: area 0 for one branch
    for t in range(4):  # all four areas 0 (only the 1e-9 epsilon is left)
        offsets[t][1, 0] = 0.0
    weights = ensemble_weights(offsets)
    assert weights.shape == (4, 6, 9)
    assert torch.isfinite(weights).all() and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(0), torch.ones(6, 9, dtype=torch.float64))
    # a single branch (no ensemble) has weight one
    single = ensemble_weights([offsets[0]])
    torch.testing.assert_close(single, torch.ones(1, 6, 9, dtype=torch.float64))


class LRIdentity(nn.Module):
    """An 'encoder' whose features are the LR pixels themselves."""

    out_dim = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def interpolating_liif() -> LIIF:
    """LIIF whose decoder returns its latent z (valid for z >= 0): output = Σ_t w_t z_t."""
    mlp = partial(PlainMLP, hidden=(3,))
    net = LIIF(LRIdentity(), encoding=NoEncoding(), mlp=mlp, feat_unfold=False).double()
    first, last = [m for m in net.mlp.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        first.weight.zero_()
        first.weight[:, :3] = torch.eye(3)  # decoder input is [z (3), c_t (2)]
        first.bias.zero_()
        last.weight.copy_(torch.eye(3))
        last.bias.zero_()
    return net


def queries(n: int, seed: int, margin: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    lo, hi = -1 + margin, 1 - margin
    return torch.rand(2, n, 2, generator=generator, dtype=torch.float64) * (hi - lo) + lo


@pytest.mark.parametrize("size", [(5, 7), (6, 4)])
def test_local_ensemble_is_bilinear_interpolation_in_the_interior(size):
    height, width = size
    lr = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(5))
    lr = lr.double()
    # the interior: between the outermost LR centres, at least 1/h (1/w) from the border
    coord = queries(200, seed=6, margin=0.0)
    coord[..., 0] = coord[..., 0] * (1 - 1 / height)
    coord[..., 1] = coord[..., 1] * (1 - 1 / width)
    cell = torch.full_like(coord, 0.1)
    got = interpolating_liif()(lr, coord, cell)
    bilinear = F.grid_sample(lr, coord.flip(-1).unsqueeze(1), mode="bilinear", align_corners=False)
    torch.testing.assert_close(got, bilinear[:, :, 0].transpose(1, 2), rtol=0, atol=1e-7)


def test_local_ensemble_at_the_border_is_bilinear_with_border_padding():
    # Near the border, clamped branches read the same edge pixel, so the ensemble becomes
    # bilinear interpolation with edge replication (a consequence of docs/method.md §2).
    height, width = 5, 7
    lr = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(7)).double()
    coord = queries(300, seed=8, margin=1e-5)
    cell = torch.full_like(coord, 0.1)
    got = interpolating_liif()(lr, coord, cell)
    bilinear = F.grid_sample(
        lr, coord.flip(-1).unsqueeze(1), mode="bilinear", padding_mode="border", align_corners=False
    )
    torch.testing.assert_close(got, bilinear[:, :, 0].transpose(1, 2), rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [(5, 7), (1, 4), (3, 1)])
def test_local_ensemble_weights_sum_to_one_everywhere_including_corners_and_edges(size):
    height, width = size
    ones = torch.ones(1, 3, height, width, dtype=torch.float64)
    corners = torch.tensor(
        [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0], [-1 + 1e-7, 1 - 1e-7]],
        dtype=torch.float64,
    )
    # edges, LR centres (where a branch has zero area) and LR pixel boundaries
    ys = torch.cat([-1 + torch.arange(2 * height + 1) / height, torch.tensor([0.3])])
    xs = torch.cat([-1 + torch.arange(2 * width + 1) / width, torch.tensor([-0.7])])
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).view(-1, 2)
    coord = torch.cat([corners, grid.double(), queries(50, seed=9, margin=0.0)[0]]).unsqueeze(0)
    got = interpolating_liif()(ones, coord, torch.full_like(coord, 0.2))
    torch.testing.assert_close(got, torch.ones_like(got), rtol=0, atol=1e-12)


def test_take_rows_takes_each_batch_items_own_rows():
    table = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)
    index = torch.tensor([[4, 0, 4], [1, 1, 2]])
    expected = torch.stack([table[b, index[b]] for b in range(2)])
    torch.testing.assert_close(take_rows(table, index), expected)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("local_ensemble", [True, False])
def test_ensemble_lookup_reads_the_shifted_clamped_nearest_pixel_and_offsets_from_its_centre(
    size, local_ensemble
):
    generator = torch.Generator().manual_seed(3)
    coord = torch.rand(2, 40, 2, generator=generator) * 2 - 1
    index, rel_coord = ensemble_lookup(coord, size, local_ensemble)
    shifts = ensemble_shifts(size, local_ensemble)
    assert index.shape == (len(shifts), 2, 40) and rel_coord.shape == (len(shifts), 2, 40, 2)
    height, width = size
    centres_y, centres_x = pixel_centers(height), pixel_centers(width)
    for branch, shift in enumerate(shifts):
        shifted = (coord + torch.tensor(shift)).clamp(-1 + 1e-6, 1 - 1e-6)
        expected = grid_sample_index(shifted.view(-1, 2), size).view(2, 40)
        torch.testing.assert_close(index[branch], expected)
        centre = torch.stack([centres_y[expected // width], centres_x[expected % width]], -1)
        offset = (coord - centre) * torch.tensor([float(height), float(width)])
        torch.testing.assert_close(rel_coord[branch], offset)
        # within one LR pixel of the centre it reads (Eq. 8's c_t; a pixel spans 2 here)
        assert rel_coord[branch].abs().max() <= 2 + 1e-4
