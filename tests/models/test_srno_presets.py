"""The SRNO presets build from the repo's Hydra configs, have SRNO's size and train.

Oracles: parameter counts from the layer formulas (not read from the network), and networks built
by hand from the constructor arguments the SRNO code base names (width 256, blocks 16).
"""

from __future__ import annotations

import functools

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch import nn

from ipe_lightning.models import IPE, EDSRBaseline, NoEncoding
from ipe_lightning.models.srno import SRNO
from tests.models.test_srno_checkpoint import CONF, EDSR_BASELINE, MEAN_SHIFTS, OFFICIAL_COUNT, conv

PRESETS = ["srno", "ipe_srno"]
C, WIDTH, L = 64, 256, 10
# IPE-SRNO's lifting reads 4 encodings of width 4L instead of 4 relative coordinates of width 2
IPE_EXTRA = conv(4 * 4 * L + 4 * C + 2, WIDTH, 1) - conv(4 * 2 + 4 * C + 2, WIDTH, 1)
HEADS = {"srno": OFFICIAL_COUNT - MEAN_SHIFTS - EDSR_BASELINE}
HEADS["ipe_srno"] = HEADS["srno"] + IPE_EXTRA


@functools.cache
def build(preset: str) -> nn.Module:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"model={preset}"])
    assert cfg.model.name == preset
    torch.manual_seed(0)
    return instantiate(cfg.model.net)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_builds_with_the_stated_parameter_counts(preset):
    net = build(preset)
    assert isinstance(net, SRNO) and isinstance(net.encoder, EDSRBaseline)
    assert count(net.encoder) == EDSR_BASELINE
    assert count(net) - count(net.encoder) == HEADS[preset]
    assert count(net) == {"srno": 2_015_299, "ipe_srno": 2_054_211}[preset]  # conf/model/*.yaml


def hand_built(preset: str) -> SRNO:
    # the SRNO code's constructor: sronet(encoder_spec=edsr-baseline, width=256, blocks=16)
    encoding = NoEncoding() if preset == "srno" else IPE(L)
    return SRNO(EDSRBaseline(), width=256, heads=16, encoding=encoding)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_computes_what_the_hand_built_network_computes(preset):
    net = build(preset)
    reference = hand_built(preset)
    reference.load_state_dict(net.state_dict())
    lr = torch.rand(1, 3, 6, 7, generator=torch.Generator().manual_seed(1)) * 2 - 1
    coord = torch.rand(1, 9, 2, generator=torch.Generator().manual_seed(2)) * 2 - 1
    cell = torch.tensor([2 / 19, 2 / 11]).expand_as(coord)  # anisotropic scale
    with torch.no_grad():
        torch.testing.assert_close(net(lr, coord, cell), reference(lr, coord, cell))


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_runs_forward_and_backward_on_a_batch_of_grids(preset):
    net = build(preset)
    net.zero_grad(set_to_none=True)
    lr = torch.rand(2, 3, 6, 7, generator=torch.Generator().manual_seed(3)) * 2 - 1
    # a training batch as SRNO samples it: HR pixels of each image shaped into a grid
    coord = torch.rand(2, 4, 5, 2, generator=torch.Generator().manual_seed(4)) * 2 - 1
    cell = torch.tensor([[2 / 15, 2 / 17], [2 / 21, 2 / 28]])[:, None, None].expand_as(coord)
    out = net(lr, coord, cell)
    assert out.shape == (2, 4, 5, 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert parameter.grad.abs().sum() > 0, f"{name} got a zero gradient"
