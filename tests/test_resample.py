"""The resampling baseline: a fixed-scale network's own ×k, resized by Pillow's bicubic or
Lanczos-3 filter to any other size.

Oracle: Pillow itself, resizing float ('F') images (its double-precision weights and sums, stored
as float32: agreement to 1e-6 on values in [0, 1]); the network's ×k map computed by calling its
encoder and upsampler directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ipe_lightning.errors import SettingError
from ipe_lightning.inference import QueryBudget, output_size, upsample
from ipe_lightning.models import EDSRBaseline
from ipe_lightning.models.fixed_scale import FixedScaleSR
from ipe_lightning.models.resample import resize

PILLOW = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
# Pillow stores each pass of an 'F' image in float32: a few float32 steps of values in [0, 1].
PILLOW_TOLERANCE = 1e-6


def pillow_resize(image: torch.Tensor, size: tuple[int, int], method: str) -> torch.Tensor:
    """``(B, C, h, w)`` resized channel by channel by Pillow on float32 'F' images."""
    planes = [
        [
            np.asarray(
                Image.fromarray(plane.numpy().astype(np.float32), mode="F").resize(
                    (size[1], size[0]), PILLOW[method]
                )
            )
            for plane in item
        ]
        for item in image
    ]
    return torch.from_numpy(np.array(planes, dtype=np.float64))


def random_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, height, width, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
@pytest.mark.parametrize(
    "size",
    [(31, 47), (13, 40), (5, 7), (20, 9), (12, 16), (3, 2)],
    ids=["up", "width-only", "down", "down-up", "x1.0", "down-a-lot"],
)
def test_resize_equals_pillow_on_float_images(method, size):
    """Up, down (antialiased: the filter stretched by the shrink factor), mixed, unchanged."""
    image = random_image(12, 16)
    got = resize(image, size, method)
    assert got.shape == (2, 3, *size) and got.dtype == torch.float64
    expected = pillow_resize(image, size, method)
    assert (got - expected).abs().max() <= PILLOW_TOLERANCE


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
def test_a_constant_image_stays_constant_and_float32_works(method):
    image = torch.full((1, 3, 9, 11), 0.3)
    for size in [(25, 17), (4, 5)]:
        got = resize(image, size, method)
        assert got.dtype == torch.float32 and torch.allclose(got, torch.full_like(got, 0.3))


def tiny_x2() -> FixedScaleSR:
    torch.manual_seed(0)
    return FixedScaleSR(EDSRBaseline(n_resblocks=2, n_feats=8), 2).double().eval()


@pytest.mark.parametrize("method", ["bicubic", "lanczos"])
@pytest.mark.parametrize(("scale", "tile"), [(3, None), (1.5, 2), ((2.5, 4), None)])
def test_the_baseline_is_the_networks_own_scale_resized(method, scale, tile):
    net, lr = tiny_x2(), random_image(7, 9, seed=1)
    with torch.no_grad():
        own = (net.tail(net.encoder((lr - 0.5) / 0.5)) * 0.5 + 0.5).clamp(0, 1)
    got = upsample(net, lr, scale=scale, tile=tile, resample=method)
    size = output_size((7, 9), scale)
    assert got.shape == (2, 3, *size)
    expected = pillow_resize(own, size, method).clamp(0, 1)
    assert (got - expected).abs().max() <= PILLOW_TOLERANCE
    assert torch.equal(upsample(net, lr, scale=2, resample=method), own)  # own scale: no resize


def test_the_test_nodes_resample_is_checked():
    test = {"max_queries": 100, "tile": None}
    assert QueryBudget.from_config(test).resample is None
    assert QueryBudget.from_config({**test, "resample": "lanczos"}).resample == "lanczos"
    with pytest.raises(
        SettingError, match=r"test.resample='nearest': choose one of bicubic, lanczos"
    ):
        QueryBudget.from_config({**test, "resample": "nearest"})
