"""Bad input is refused with a ValueError that names the problem."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from ipe_lightning.inference import output_size, upsample
from ipe_lightning.models import IPE, LIIF, PE, EDSRBaseline, MetaSR, PlainMLP, SkipMLP


@pytest.fixture(scope="module")
def liif() -> LIIF:
    return LIIF(EDSRBaseline(n_resblocks=1, n_feats=4), mlp=partial(SkipMLP, hidden=(8, 8)))


@pytest.fixture(scope="module")
def metasr() -> MetaSR:
    return MetaSR(
        EDSRBaseline(n_resblocks=1, n_feats=4), encoding=IPE(), mlp=partial(PlainMLP, hidden=(8,))
    )


def good_queries(batch: int = 2, n: int = 5):
    coord = torch.zeros(batch, n, 2)
    return torch.zeros(batch, 3, 4, 5), coord, torch.full_like(coord, 0.1)


@pytest.mark.parametrize("head", ["liif", "metasr"])
@pytest.mark.parametrize(
    ("lr_shape", "pattern"),
    [
        ((3, 4, 5), r"lr must be a \(B, 3, h, w\) tensor, got shape \(3, 4, 5\)"),
        ((1, 1, 3, 4, 5), r"got shape \(1, 1, 3, 4, 5\)"),
        ((2, 1, 4, 5), r"3 \(RGB\) channels, got 1"),
        ((2, 4, 4, 5), r"3 \(RGB\) channels, got 4"),
    ],
)
def test_lr_of_wrong_rank_or_channel_count(head, lr_shape, pattern, request):
    net = request.getfixturevalue(head)
    _, coord, cell = good_queries()
    with pytest.raises(ValueError, match=pattern):
        net(torch.zeros(lr_shape), coord, cell)
    with pytest.raises(ValueError, match=pattern):
        net.encode(torch.zeros(lr_shape))


@pytest.mark.parametrize("head", ["liif", "metasr"])
def test_coord_and_cell_that_disagree(head, request):
    net = request.getfixturevalue(head)
    lr, coord, cell = good_queries()
    feat = net.encode(lr)
    with pytest.raises(ValueError, match=r"coord must be \(B, Q, 2\), got shape \(5, 2\)"):
        net.query(feat, coord[0], cell[0])
    with pytest.raises(ValueError, match=r"coord must be \(B, Q, 2\), got shape \(2, 5, 3\)"):
        net.query(feat, torch.zeros(2, 5, 3), torch.zeros(2, 5, 3))
    with pytest.raises(
        ValueError, match=r"cell must have the shape of coord \(2, 5, 2\), got \(2, 4, 2\)"
    ):
        net.query(feat, coord, cell[:, :4])
    with pytest.raises(ValueError, match=r"cell .* got \(2, 5, 1\)"):
        net.query(feat, coord, cell[..., :1])
    with pytest.raises(ValueError, match=r"batch size 1 .* features have 2"):
        net.query(feat, coord[:1], cell[:1])


@pytest.mark.parametrize(
    "scale",
    [0, -2.0, math.nan, math.inf, -math.inf, (2.0, 0.0), (math.nan, 3.0), (2.0, -1.0)],
    ids=str,
)
def test_non_positive_or_non_finite_scale(liif, scale):
    image = torch.rand(1, 3, 4, 5)
    with pytest.raises(ValueError, match="scale must be positive and finite"):
        upsample(liif, image, scale=scale)
    with pytest.raises(ValueError, match="scale must be positive and finite"):
        output_size((4, 5), scale=scale)


def test_scale_that_is_not_a_number_or_a_pair():
    with pytest.raises(ValueError, match=r"scale must be a number or a pair"):
        output_size((4, 5), scale=(2.0, 3.0, 4.0))


@pytest.mark.parametrize("size", [(0, 5), (5, -1), (2.5, 3), (5,), (3, 4, 5), (True, 4)], ids=str)
def test_non_positive_or_malformed_size(liif, size):
    with pytest.raises(ValueError, match=r"size must be two positive integers \(H, W\)"):
        upsample(liif, torch.rand(1, 3, 4, 5), size=size)
    with pytest.raises(ValueError, match=r"size must be two positive integers"):
        output_size((4, 5), size=size)


def test_scale_and_size_are_exclusive(liif):
    image = torch.rand(1, 3, 4, 5)
    with pytest.raises(ValueError, match="exactly one of scale"):
        upsample(liif, image, scale=2.0, size=(8, 10))
    with pytest.raises(ValueError, match="exactly one of scale"):
        upsample(liif, image)


def test_upsample_checks_the_image_and_the_chunk_size(liif):
    with pytest.raises(ValueError, match=r"got shape \(3, 4, 5\)"):
        upsample(liif, torch.rand(3, 4, 5), scale=2.0)
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels, got 1"):
        upsample(liif, torch.rand(1, 1, 4, 5), scale=2.0)
    with pytest.raises(ValueError, match="max_queries must be positive, got 0"):
        upsample(liif, torch.rand(1, 3, 4, 5), scale=2.0, max_queries=0)


def test_output_size_of_valid_input():
    # the HR size the LIIF test code queries: round(h·s_h) x round(w·s_w)
    assert output_size((4, 5), scale=2.5) == (10, 12)  # round(12.5) = 12 (half to even)
    assert output_size((4, 5), scale=(2, 3.5)) == (8, 18)  # round(17.5) = 18
    assert output_size((4, 5), size=(7, 9)) == (7, 9)


@pytest.mark.parametrize("head", ["liif", "metasr"])
def test_non_positive_bandwidth_is_refused_by_name(head):
    # L = 0 leaves the encoding empty; the error must say so before any network is built
    with pytest.raises(ValueError, match="bandwidth"):
        encoding = IPE(0) if head == "liif" else PE(0)
        (LIIF if head == "liif" else MetaSR)(EDSRBaseline(n_resblocks=1, n_feats=4), encoding)


def test_a_skip_mlp_without_hidden_layers_is_refused():
    with pytest.raises(ValueError, match="at least one hidden layer"):
        LIIF(EDSRBaseline(n_resblocks=1, n_feats=4), mlp=partial(SkipMLP, hidden=[]))
