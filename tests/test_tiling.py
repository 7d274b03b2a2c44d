"""Tile geometry: tiles partition the HR pixels, each reaches as far as its head needs, and the
encoder halo is its receptive field.

Oracles: coverage counted pixel by pixel, and the encoder's actual dependence on input pixels.
"""

from __future__ import annotations

import pytest
import torch

from ipe_lightning.coords import pixel_centers
from ipe_lightning.models import RDN, EDSRBaseline
from ipe_lightning.tiling import (
    Reach,
    count_decoder_tiles,
    owning_lr_pixels,
    plan_tiles,
    receptive_radius,
)


def owners(hr_size, lr_size):
    return tuple(
        owning_lr_pixels(pixel_centers(hr), lr) for hr, lr in zip(hr_size, lr_size, strict=True)
    )


@pytest.mark.parametrize(
    ("lr_size", "hr_size", "encoder_side", "decoder_side"),
    [((11, 14), (29, 19), 5, 4), ((9, 10), (4, 5), 4, 4), ((7, 3), (84, 36), 7, 2)],
    ids=["up", "down", "x12"],
)
def test_decoder_tiles_partition_the_hr_pixels_and_reach_as_far_as_asked(
    lr_size, hr_size, encoder_side, decoder_side
):
    reach = Reach(lookup=1, table=1, halo=3)
    plan = plan_tiles(lr_size, owners(hr_size, lr_size), reach, encoder_side, decoder_side)
    covered = torch.zeros(hr_size, dtype=torch.long)
    tiles = [tile for encoder_tile in plan for tile in encoder_tile.tiles]
    assert len(tiles) == count_decoder_tiles(lr_size, encoder_side, decoder_side)
    for encoder_tile in plan:
        for tile in encoder_tile.tiles:
            covered[slice(*tile.hr_rows), slice(*tile.hr_cols)] += 1
            for axis, (lr, window, context, crop) in enumerate(
                [
                    (tile.rows, tile.window_rows, tile.context_rows, encoder_tile.crop_rows),
                    (tile.cols, tile.window_cols, tile.context_cols, encoder_tile.crop_cols),
                ]
            ):
                length = lr_size[axis]
                assert window == (max(0, lr[0] - 1), min(length, lr[1] + 1))
                assert context == (max(0, window[0] - 1), min(length, window[1] + 1))
                # the encoder crop holds the context plus the halo (within the image)
                assert crop[0] <= max(0, context[0] - 3) and crop[1] >= min(length, context[1] + 3)
    assert (covered == 1).all()  # every HR pixel decoded exactly once


@pytest.mark.parametrize(
    ("encoder", "radius"),
    [
        (EDSRBaseline(), 1 + 2 * 16 + 1),
        (EDSRBaseline(n_resblocks=2, n_feats=8), 1 + 2 * 2 + 1),
        (RDN(), 1 + 1 + 16 * 8 + 1),
    ],
    ids=["edsr_baseline", "edsr_2_blocks", "rdn_b"],
)
def test_receptive_radius_counts_the_convolutions(encoder, radius):
    assert receptive_radius(encoder) == radius


@pytest.mark.parametrize(
    "encoder",
    [EDSRBaseline(n_resblocks=2, n_feats=4), RDN(n_feats=4, n_blocks=2, n_layers=2, growth=4)],
    ids=["edsr", "rdn"],
)
def test_receptive_radius_is_where_the_features_stop_seeing_the_input(encoder):
    """Perturbing one input pixel changes the feature ``radius`` pixels away but not one
    further: the halo is exactly the receptive field for these encoders."""
    radius = receptive_radius(encoder)
    size = 2 * radius + 7
    centre = size // 2
    torch.manual_seed(0)
    with torch.no_grad():  # positive weights: no ReLU can hide the bump, so the claim is exact
        for parameter in encoder.parameters():
            parameter.uniform_(0.01, 0.1)
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        base = encoder(x)
        bumped = x.clone()
        bumped[..., centre, centre + radius] += 1.0
        changed = (encoder(bumped) - base).abs().amax(dim=1)[0]  # (h, w)
    assert changed[centre, centre] > 0
    bumped_far = x.clone()
    bumped_far[..., centre, centre + radius + 1] += 1.0
    with torch.no_grad():
        unchanged = (encoder(bumped_far) - base).abs().amax(dim=1)[0]
    assert unchanged[centre, centre] == 0


def test_receptive_radius_refuses_encoders_that_resample():
    encoder = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.MaxPool2d(2))
    with pytest.raises(ValueError, match="cannot bound the receptive field"):
        receptive_radius(encoder)
    strided = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, padding=1))
    with pytest.raises(ValueError, match="stride-1 convolutions"):
        receptive_radius(strided)
