"""The LTE presets build from the repo's Hydra configs, have LTE's size and train.

Oracles: parameter counts from the layer formulas (not read from the network), and networks built
by hand from the constructor arguments the LTE code base names.
"""

from __future__ import annotations

import functools
import itertools
from functools import partial
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

from ipe_lightning.models import RDN, EDSRBaseline
from ipe_lightning.models.lte import LTE, IntegratedBasis, PointBasis
from ipe_lightning.models.mlp import PlainMLP

CONF = Path(__file__).resolve().parents[2] / "conf"
PRESETS = ["lte", "ipe_lte", "ipe_lte_nophase"]
ENCODERS = ["edsr_baseline", "rdn"]
SCALES = [1.3, 2, 3.7, 4, (2, 3.5), 12]
LR_SIZE = (6, 7)


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def linear(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


C, D = 64, 256  # encoder channels; LTE's hidden_dim (128 frequency pairs)
EDSR_BASELINE = conv(3, C, 3) + 16 * 2 * conv(C, C, 3) + conv(C, C, 3)
RDN_B = (
    conv(3, C, 3)
    + conv(C, C, 3)
    + 16 * (sum(conv(C + 64 * j, 64, 3) for j in range(8)) + conv(C + 8 * 64, C, 1))
    + conv(16 * C, C, 1)
    + conv(C, C, 3)
)
ENCODER_PARAMS = {"edsr_baseline": EDSR_BASELINE, "rdn": RDN_B}
MLP = sum(linear(a, b) for a, b in itertools.pairwise([D, 256, 256, 256, 3]))
PHASE = 2 * (D // 2)  # Linear(2 → 128) without bias
LTE_HEAD = 2 * conv(C, D, 3) + PHASE + MLP
HEADS = {"lte": LTE_HEAD, "ipe_lte": LTE_HEAD, "ipe_lte_nophase": LTE_HEAD - PHASE}


@functools.cache
def build(preset: str, encoder: str) -> nn.Module:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            config_name="config", overrides=[f"model={preset}", f"model/encoder={encoder}"]
        )
    assert cfg.model.name == preset
    torch.manual_seed(0)
    return instantiate(cfg.model.net)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_lte_with_edsr_baseline_has_1_714_243_trainable_parameters():
    net = build("lte", "edsr_baseline")
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert trainable == EDSR_BASELINE + LTE_HEAD == 1_714_243


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_builds_with_the_stated_parameter_counts(preset, encoder):
    net = build(preset, encoder)
    assert isinstance(net, LTE)
    assert isinstance(net.encoder, RDN if encoder == "rdn" else EDSRBaseline)
    assert isinstance(net.basis, PointBasis if preset == "lte" else IntegratedBasis)
    assert (net.phase is None) == (preset == "ipe_lte_nophase")
    assert count(net.encoder) == ENCODER_PARAMS[encoder]
    assert count(net) - count(net.encoder) == HEADS[preset]


def hand_built(preset: str) -> LTE:
    # the LTE code base's constructor: hidden_dim 256, imnet hidden_list [256, 256, 256]
    basis = PointBasis() if preset == "lte" else IntegratedBasis()
    return LTE(
        EDSRBaseline(n_resblocks=16, n_feats=64),
        hidden_dim=256,
        mlp=partial(PlainMLP, hidden=[256, 256, 256]),
        basis=basis,
        phase=preset != "ipe_lte_nophase",
    )


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_computes_what_the_hand_built_network_computes(preset):
    net = build(preset, "edsr_baseline")
    reference = hand_built(preset)
    reference.load_state_dict(net.state_dict())
    lr = torch.rand(1, 3, *LR_SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    coord = torch.rand(1, 9, 2, generator=torch.Generator().manual_seed(2)) * 2 - 1
    cell = torch.tensor([2 / 19, 2 / 11]).expand_as(coord)  # anisotropic scale
    with torch.no_grad():
        torch.testing.assert_close(net(lr, coord, cell), reference(lr, coord, cell))


def scale_queries(scale) -> tuple[torch.Tensor, torch.Tensor]:
    s_h, s_w = scale if isinstance(scale, tuple) else (scale, scale)
    height, width = round(LR_SIZE[0] * s_h), round(LR_SIZE[1] * s_w)
    pixels = [(0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1),
              (height // 2, width // 3), (height // 3, width // 2)]  # fmt: skip
    coord = torch.tensor(
        [[-1 + (2 * i + 1) / height, -1 + (2 * j + 1) / width] for i, j in pixels]
    ).unsqueeze(0)
    return coord, torch.tensor([2 / height, 2 / width]).expand_as(coord)


@pytest.mark.parametrize("scale", SCALES, ids=str)
@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_runs_forward_and_backward(preset, encoder, scale):
    net = build(preset, encoder)
    net.zero_grad(set_to_none=True)
    lr = torch.rand(1, 3, *LR_SIZE, generator=torch.Generator().manual_seed(3)) * 2 - 1
    coord, cell = scale_queries(scale)
    out = net(lr, coord, cell)
    assert out.shape == (1, coord.shape[1], 3)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"
    # the loss reaches the encoder's first layer, the frequencies, the phase and the last layer
    first_conv = next(m for m in net.encoder.modules() if isinstance(m, nn.Conv2d))
    reached = [first_conv, net.freq, net.coef, net.mlp.linears[-1]]
    if net.phase is not None:
        reached.append(net.phase)
    for module in reached:
        assert module.weight.grad.abs().sum() > 0, f"{module} got a zero gradient"
