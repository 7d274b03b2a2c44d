"""Every model preset builds from the repo's Hydra configs, has the paper's size and trains.

Oracles: parameter counts computed here from the layer formulas of docs/method.md §2 (not read from
the network), and networks built by hand from the parts the paper names.
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

from ipe_lightning.models import (
    IPE,
    LIIF,
    PE,
    RDN,
    Cell,
    EDSRBaseline,
    MetaPlain,
    MetaSR,
    PlainMLP,
    SkipMLP,
)

CONF = Path(__file__).resolve().parents[2] / "conf"
PRESETS = ["ipe_liif", "liif", "liif_pe", "metasr", "metasr_pe", "ipe_metasr"]
ENCODERS = ["edsr_baseline", "rdn"]
SCALES = [1.3, 2, 3.7, 4, (2, 3.5), 12]
LR_SIZE = (6, 7)


# ---------------------------------------------------------------- sizes from the formulas


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def linear(d_in: int, d_out: int) -> int:
    return d_in * d_out + d_out


def plain_mlp(d_in: int, d_out: int = 3, hidden=(256, 256, 256, 256)) -> int:
    widths = [d_in, *hidden, d_out]
    return sum(linear(a, b) for a, b in itertools.pairwise(widths))


def skip_mlp(d_in: int, d_out: int = 3, hidden=(256, 256, 256, 256)) -> int:
    # h1 = W1 u; h_{k+1} = W [h_k, u]: every later hidden layer also reads the input u
    first = linear(d_in, hidden[0])
    middle = sum(linear(a + d_in, b) for a, b in itertools.pairwise(hidden))
    return first + middle + linear(hidden[-1], d_out)


C = 64
LATENT = 9 * C  # unfolded 3x3 neighbourhood: 576
L = 10
EDSR_BASELINE = conv(3, C, 3) + 16 * 2 * conv(C, C, 3) + conv(C, C, 3)
RDN_B = (
    conv(3, C, 3)  # SFENet1
    + conv(C, C, 3)  # SFENet2
    + 16 * (sum(conv(C + 64 * j, 64, 3) for j in range(8)) + conv(C + 8 * 64, C, 1))  # RDBs
    + conv(16 * C, C, 1)  # global fusion 1x1
    + conv(C, C, 3)  # global fusion 3x3
)
ENCODER_PARAMS = {"edsr_baseline": EDSR_BASELINE, "rdn": RDN_B}

# preset → (decoder input width, decoder parameter count)
HEADS = {
    "liif": (LATENT + 4, plain_mlp(LATENT + 4)),
    "liif_pe": (LATENT + 4 * L, plain_mlp(LATENT + 4 * L)),
    "ipe_liif": (LATENT + 4 * L, skip_mlp(LATENT + 4 * L)),
    "metasr": (3, plain_mlp(3, LATENT * 3, (256,))),
    "metasr_pe": (4 * L, plain_mlp(4 * L, LATENT * 3, (256,))),
    "ipe_metasr": (4 * L, plain_mlp(4 * L, LATENT * 3, (256,))),
}


# ---------------------------------------------------------------- building from Hydra


def compose_root(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@functools.cache
def build(preset: str, encoder: str, *extra: str) -> nn.Module:
    # The model group alone, so these claims do not depend on the other groups of the root config
    # (its default model is checked separately below).
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        overrides = [f"+model={preset}", f"model/encoder={encoder}", *extra]
        cfg = compose(config_name=None, overrides=overrides)
    torch.manual_seed(0)
    return instantiate(cfg.model.net)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def first_linear(net: nn.Module) -> nn.Linear:
    return next(m for m in net.mlp.modules() if isinstance(m, nn.Linear))


def test_the_paper_networks_have_the_sizes_the_docs_state():
    # README and conf/model/encoder/*.yaml state these numbers; the formulas above give them too
    ipe_liif, liif, rdn = (
        build("ipe_liif", "edsr_baseline"),
        build("liif", "edsr_baseline"),
        build("liif", "rdn"),
    )
    assert count(ipe_liif.encoder) == EDSR_BASELINE == 1_220_416
    assert count(rdn.encoder) == RDN_B == 21_973_952
    assert count(liif) - count(liif.encoder) == HEADS["liif"][1] == 346_883
    assert count(ipe_liif) - count(ipe_liif.encoder) == HEADS["ipe_liif"][1] == 829_187


def test_root_config_defaults_to_ipe_liif_with_edsr_baseline():
    model = compose_root().model
    assert model.name == "ipe_liif"
    net = instantiate(model.net)
    assert isinstance(net, LIIF) and isinstance(net.encoder, EDSRBaseline)
    assert count(net) == EDSR_BASELINE + HEADS["ipe_liif"][1]


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_builds_with_the_stated_parameter_counts(preset, encoder):
    net = build(preset, encoder)
    assert isinstance(net, MetaSR if "metasr" in preset else LIIF)
    assert isinstance(net.encoder, RDN if encoder == "rdn" else EDSRBaseline)
    in_width, head_params = HEADS[preset]
    assert count(net.encoder) == ENCODER_PARAMS[encoder]
    assert count(net) - count(net.encoder) == head_params
    assert first_linear(net).in_features == in_width


def hand_built(preset: str) -> nn.Module:
    # the parts docs/method.md §2 names for each preset
    encoder = EDSRBaseline(n_resblocks=16, n_feats=64)
    liif_mlp = {
        "plain": partial(PlainMLP, hidden=[256] * 4),
        "skip": partial(SkipMLP, hidden=[256] * 4),
    }
    filter_mlp = partial(PlainMLP, hidden=[256])
    return {
        "liif": lambda: LIIF(encoder, encoding=Cell(), mlp=liif_mlp["plain"]),
        "liif_pe": lambda: LIIF(encoder, encoding=PE(10), mlp=liif_mlp["plain"]),
        "ipe_liif": lambda: LIIF(encoder, encoding=IPE(10), mlp=liif_mlp["skip"]),
        "metasr": lambda: MetaSR(encoder, encoding=MetaPlain(), mlp=filter_mlp),
        "metasr_pe": lambda: MetaSR(encoder, encoding=PE(10), mlp=filter_mlp),
        "ipe_metasr": lambda: MetaSR(encoder, encoding=IPE(10), mlp=filter_mlp),
    }[preset]()


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_computes_what_the_paper_network_computes(preset):
    net = build(preset, "edsr_baseline")
    reference = hand_built(preset)
    reference.load_state_dict(net.state_dict())
    lr = torch.rand(1, 3, *LR_SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    coord = torch.rand(1, 9, 2, generator=torch.Generator().manual_seed(2)) * 2 - 1
    cell = torch.tensor([2 / 19, 2 / 11]).expand_as(coord)  # anisotropic scale
    with torch.no_grad():
        torch.testing.assert_close(net(lr, coord, cell), reference(lr, coord, cell))


def scale_queries(scale) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    s_h, s_w = scale if isinstance(scale, tuple) else (scale, scale)
    height, width = round(LR_SIZE[0] * s_h), round(LR_SIZE[1] * s_w)
    pixels = [(0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1),
              (height // 2, width // 3), (height // 3, width // 2)]  # fmt: skip
    coord = torch.tensor(
        [[-1 + (2 * i + 1) / height, -1 + (2 * j + 1) / width] for i, j in pixels]
    ).unsqueeze(0)
    cell = torch.tensor([2 / height, 2 / width]).expand_as(coord)
    return coord, cell, (height, width)


@pytest.mark.parametrize("scale", SCALES, ids=str)
@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_runs_forward_and_backward(preset, encoder, scale):
    net = build(preset, encoder)
    net.zero_grad(set_to_none=True)
    lr = torch.rand(1, 3, *LR_SIZE, generator=torch.Generator().manual_seed(3)) * 2 - 1
    coord, cell, _ = scale_queries(scale)
    out = net(lr, coord, cell)
    assert out.shape == (1, coord.shape[1], 3)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"
    # the loss reaches both ends of the network
    first_conv = next(m for m in net.encoder.modules() if isinstance(m, nn.Conv2d))
    last_linear = [m for m in net.mlp.modules() if isinstance(m, nn.Linear)][-1]
    assert first_conv.weight.grad.abs().sum() > 0
    assert last_linear.weight.grad.abs().sum() > 0


# Table 4 ablations: overrides of ipe_liif → (decoder input width, decoder parameters)
ABLATIONS = {
    "model.net.encoding.bandwidth=4": (LATENT + 16, skip_mlp(LATENT + 16)),
    "model.net.encoding.bandwidth=16": (LATENT + 64, skip_mlp(LATENT + 64)),
    "model/encoding=ipe_cell": (LATENT + 4 * L + 2, skip_mlp(LATENT + 4 * L + 2)),
    "model/mlp=plain": (LATENT + 4 * L, plain_mlp(LATENT + 4 * L)),
    "model/encoding=pe": (LATENT + 4 * L, skip_mlp(LATENT + 4 * L)),
}


def test_the_meta_input_of_metasr_is_the_same_config_group():
    # the encodings are shared parts: MetaSR w/ PE is metasr with model/encoding=pe
    by_override = build("metasr", "edsr_baseline", "model/encoding=pe")
    assert by_override.encoding == build("metasr_pe", "edsr_baseline").encoding == PE(10)
    assert count(by_override) == count(build("metasr_pe", "edsr_baseline"))


def test_a_preset_without_a_bandwidth_has_no_bandwidth_key():
    for preset in ["liif", "metasr"]:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            net = compose(config_name=None, overrides=[f"+model={preset}"]).model.net
        assert "bandwidth" not in net and "bandwidth" not in net.encoding, preset
        assert "hidden" not in net, preset  # the MLP's own argument


@pytest.mark.parametrize("override", list(ABLATIONS))
def test_table4_ablation_is_an_override_of_ipe_liif(override):
    net = build("ipe_liif", "edsr_baseline", override)
    in_width, head_params = ABLATIONS[override]
    assert first_linear(net).in_features == in_width
    assert count(net) - count(net.encoder) == head_params
    coord, cell, _ = scale_queries(3.7)
    lr = torch.rand(1, 3, *LR_SIZE, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.isfinite(net(lr, coord, cell)).all()
