"""Fixed-scale networks (EDSR-baseline / RDN with their sub-pixel upsampler): the LIIF code base's
sizes, nearest sampling of the upsampled map, whole images tile by tile, one scale only.

Oracles: parameter counts from the layer formulas of the LIIF code (models/edsr.py, models/rdn.py
with no_upsampling=False), not read from the network; the upsampled map computed by calling the
encoder and the upsampler directly, sampled with ``grid_sample(mode="nearest")`` as LIIF's
``query_rgb`` does without an MLP.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from ipe_lightning import inference
from ipe_lightning.coords import make_cell, make_coord
from ipe_lightning.errors import SettingError
from ipe_lightning.inference import check_scales, upsample
from ipe_lightning.models import RDN, EDSRBaseline
from ipe_lightning.models.fixed_scale import FixedScaleSR

CONF = os.path.join(os.path.dirname(__file__), "..", "..", "conf")
PRESETS = {
    f"{encoder}_x{k}": (encoder, k) for encoder in ("edsr_baseline", "rdn") for k in (2, 3, 4)
}


def conv(c_in: int, c_out: int, k: int = 3) -> int:
    return c_in * c_out * k * k + c_out


def edsr_baseline_size(blocks: int = 16, c: int = 64) -> int:
    return conv(3, c) + blocks * 2 * conv(c, c) + conv(c, c)


def rdn_size(c: int = 64, blocks: int = 16, layers: int = 8, growth: int = 64) -> int:
    block = sum(conv(c + i * growth, growth) for i in range(layers))
    block += conv(c + layers * growth, c, 1)
    return conv(3, c) + conv(c, c) + blocks * block + conv(blocks * c, c, 1) + conv(c, c)


def upsampler_size(k: int, c: int = 64) -> int:
    """LIIF code: x2 / x3 one conv to r²·C + PixelShuffle(r); x4 two of r = 2; then conv to RGB."""
    stages = [3] if k == 3 else [2] * (k // 2)
    return sum(conv(c, r * r * c) for r in stages) + conv(c, 3)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_have_the_liif_codes_sizes(preset):
    encoder, k = PRESETS[preset]
    with initialize_config_dir(config_dir=os.path.abspath(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"model={preset}"])
    assert cfg.model.name == preset and cfg.model.net.scale == k
    with torch.device("meta"):  # sizes only: no memory, no initialisation
        net = instantiate(cfg.model.net)
    assert isinstance(net, FixedScaleSR) and net.scale == k and net.label == preset
    encoder_size = edsr_baseline_size() if encoder == "edsr_baseline" else rdn_size()
    assert sum(p.numel() for p in net.parameters()) == encoder_size + upsampler_size(k)


def tiny(k: int, encoder: str = "edsr") -> FixedScaleSR:
    torch.manual_seed(k)
    if encoder == "edsr":
        module = EDSRBaseline(n_resblocks=2, n_feats=8)
    else:
        module = RDN(n_feats=8, n_blocks=2, n_layers=2, growth=8)
    return FixedScaleSR(module, k).double().eval()


def upsampled_map(net: FixedScaleSR, image: torch.Tensor) -> torch.Tensor:
    """The encoder and the upsampler called directly on the whole image."""
    with torch.no_grad():
        return net.tail(net.encoder((image - 0.5) / 0.5))


def lr_image(height: int = 7, width: int = 9, batch: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return torch.rand(batch, 3, height, width, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_a_query_reads_the_nearest_pixel_of_the_upsampled_map(k):
    net, image = tiny(k), lr_image()
    coord = torch.rand(2, 300, 2, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
    coord = coord * 2 - 1
    cell = torch.full_like(coord, 0.1)  # nearest sampling ignores the cell
    with torch.no_grad():
        got = net((image - 0.5) / 0.5, coord, cell)
    hr_map = upsampled_map(net, image)
    expected = F.grid_sample(
        hr_map, coord.flip(-1).unsqueeze(1), mode="nearest", align_corners=False
    )
    assert torch.allclose(got, expected[:, :, 0].transpose(1, 2), atol=1e-12)


@pytest.mark.parametrize("encoder", ["edsr", "rdn"])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_training_queries_at_hr_pixel_centres_supervise_every_pixel_of_the_map(k, encoder):
    """LIIF convention: the queries of a paired crop are the coords and cells of its HR pixels."""
    net, image = tiny(k, encoder), lr_image(5, 6)
    hr_size = (5 * k, 6 * k)
    coord = make_coord(hr_size).double().expand(2, -1, -1)
    cell = make_cell(hr_size, coord.shape[1]).double().expand(2, -1, -1)
    prediction = net((image - 0.5) / 0.5, coord, cell)
    expected = upsampled_map(net, image).flatten(2).transpose(1, 2)
    assert torch.allclose(prediction.detach(), expected, atol=1e-12)
    prediction.abs().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("tile", [None, 2, 3, 5])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_whole_image_upsampling_tile_by_tile_is_the_upsampled_map(k, tile, monkeypatch):
    monkeypatch.setattr(inference, "DECODER_TILE", 2)  # many decoder tiles on a small image
    net, image = tiny(k, "rdn" if k == 3 else "edsr"), lr_image(7, 9)
    got = upsample(net, image, scale=k, tile=tile, max_queries=37)
    expected = (upsampled_map(net, image) * 0.5 + 0.5).clamp(0, 1)
    assert got.shape == (2, 3, 7 * k, 9 * k)
    assert torch.allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize(
    ("k", "asked", "tag"), [(2, {"scale": 3}, "x3"), (4, {"size": (20, 30)}, "x2.86x3.33")]
)
def test_another_scale_is_refused_naming_the_resampling_baseline(k, asked, tag):
    with pytest.raises(SettingError) as error:
        upsample(tiny(k), lr_image(7, 9), **asked)
    message = str(error.value)
    assert message.startswith(f"edsr_baseline_x{k} upsamples by x{k} only; for {tag} use ")
    assert "test.resample=bicubic|lanczos" in message and "\n" not in message


def test_a_test_at_other_scales_is_refused_before_any_image():
    net = tiny(3, "rdn")
    check_scales(net, [3, (3, 3)])
    with pytest.raises(SettingError, match=r"rdn_x3 upsamples by x3 only; for x2x3 use"):
        check_scales(net, [3, (2, 3)])
    check_scales(net, [2, 4.5], resample="lanczos")  # the resampling baseline serves them
    check_scales(EDSRBaseline(1, 4), [2.5])  # arbitrary-scale networks: nothing to check


@pytest.mark.parametrize("scale", [1, 2.5, 5, 8, True])
def test_only_the_scales_of_the_paper_build(scale):
    with pytest.raises(SettingError, match=rf"model.net.scale={scale}: .* one of \(2, 3, 4\)"):
        FixedScaleSR(EDSRBaseline(1, 4), scale)
