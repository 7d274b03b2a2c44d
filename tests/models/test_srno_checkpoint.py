"""SRNO code-base checkpoints load and reproduce its outputs; SRNO has the official model's size.

Oracles: a checkpoint written here in the layout of the SRNO code's ``train.py``
(``{'model': {'name': 'sronet', 'args', 'sd'}}``, its module names and 1x1-convolution shapes,
EDSR's mean shifts included) from random weights, the per-query NumPy oracle of
``tests/models/test_srno.py`` reading that state dict, and parameter counts from the layer
formulas of the SRNO code (``models/sronet.py``, ``models/galerkin.py``, ``models/edsr.py``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from ipe_lightning.models import EDSRBaseline, NoEncoding
from ipe_lightning.models.checkpoint import load_network
from ipe_lightning.models.checkpoint_file import load_weights_only
from ipe_lightning.models.srno import SRNO, srno_key, srno_network_config, srno_state_dict
from tests.models.test_srno import expected_outputs, hr_grid, official_head_weights


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


C, WIDTH, HEADS = 64, 256, 16  # configs/train_edsr-sronet.yaml: EDSR-baseline, width, blocks
EDSR_BASELINE = conv(3, C, 3) + 16 * 2 * conv(C, C, 3) + conv(C, C, 3)
# EDSR code: sub_mean and add_mean, 1x1 convs 3 -> 3 with frozen weights; still in
# model.parameters(), which the SRNO code's utils.compute_num_params sums
MEAN_SHIFTS = 2 * conv(3, 3, 1)
LIFTING = conv((C + 2) * 4 + 2, WIDTH, 1)  # conv00: four (relative coordinate, feature), cell
# galerkin.simple_attn: qkv_proj, o_proj1, o_proj2, and kln / vln of shape (heads, 1, width/heads)
BLOCK = conv(WIDTH, 3 * WIDTH, 1) + 2 * conv(WIDTH, WIDTH, 1) + 2 * 2 * HEADS * (WIDTH // HEADS)
HEAD = conv(WIDTH, 256, 1) + conv(256, 3, 1)  # fc1, fc2
OFFICIAL_COUNT = EDSR_BASELINE + MEAN_SHIFTS + LIFTING + 2 * BLOCK + HEAD
CONF = Path(__file__).resolve().parents[2] / "conf"
OUR_ENCODER = {"_target_": "ipe_lightning.models.EDSRBaseline", "n_resblocks": 16, "n_feats": 64}
OFFICIAL_ARGS = {
    "encoder_spec": {"name": "edsr-baseline", "args": {"no_upsampling": True}},
    "width": WIDTH,
    "blocks": HEADS,
}


@functools.cache
def official_checkpoint(seed: int = 5) -> dict:
    """An SRNO code-base checkpoint as its train.py writes it, with random float32 weights (one
    per seed, shared: tests copy what they change)."""
    torch.manual_seed(seed)
    encoder = EDSRBaseline()
    sd = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    for name in ("sub_mean", "add_mean"):
        sd[f"encoder.{name}.weight"] = torch.randn(3, 3, 1, 1, generator=generator)
        sd[f"encoder.{name}.bias"] = torch.randn(3, generator=generator)
    head = official_head_weights(seed, C, WIDTH, HEADS, 256)
    sd |= {key: value.float() for key, value in head.items()}
    return {"model": {"name": "sronet", "args": OFFICIAL_ARGS, "sd": sd}, "epoch": 1000}


def test_srno_has_the_official_parameter_count():
    assert OFFICIAL_COUNT == 2_015_323
    net = SRNO(EDSRBaseline())
    assert sum(p.numel() for p in net.parameters()) == OFFICIAL_COUNT - MEAN_SHIFTS == 2_015_299
    # and the checkpoint written here holds exactly the official model's parameters
    sd = official_checkpoint()["model"]["sd"]
    assert sum(v.numel() for v in sd.values()) == OFFICIAL_COUNT


def test_official_checkpoint_reproduces_the_srno_code_in_float64(tmp_path):
    path = tmp_path / "epoch-best.pth"
    torch.save(official_checkpoint(), path)
    model = load_weights_only(path)["model"]  # no code is unpickled

    config = srno_network_config(model["args"], OUR_ENCODER)
    net = instantiate(config)
    net.load_state_dict(srno_state_dict(model["sd"]), strict=True)  # every key, none left over
    net = net.double().eval()

    assert isinstance(net, SRNO) and isinstance(net.encoding, NoEncoding) and net.cell_input
    lr = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    lr = lr * 2 - 1
    coord, cell = hr_grid((5, 7))  # x1.25, x1.4: every HR pixel, one grid
    sd = {key: value.double() for key, value in model["sd"].items()}
    expected = expected_outputs(net, sd, lr, coord, cell, bandwidth=None)
    with torch.no_grad():
        torch.testing.assert_close(net(lr, coord, cell), expected, rtol=0, atol=1e-10)


def test_load_network_reads_an_official_sronet_checkpoint(tmp_path):
    path = tmp_path / "epoch-last.pth"
    checkpoint = official_checkpoint()
    torch.save(checkpoint, path)
    net, info = load_network(path)
    assert isinstance(net, SRNO) and not net.training and info.model_name is None
    reference = instantiate(srno_network_config(OFFICIAL_ARGS, OUR_ENCODER))
    reference.load_state_dict(srno_state_dict(checkpoint["model"]["sd"]))
    lr = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(7)) * 2 - 1
    coord, cell = (t[:1].float() for t in hr_grid((11, 8)))
    with torch.no_grad():
        torch.testing.assert_close(net(lr, coord, cell), reference(lr, coord, cell))


@pytest.mark.parametrize(
    ("official", "ours"),
    [
        ("conv00.weight", "lifting.weight"),
        ("conv0.qkv_proj.bias", "blocks.0.qkv.bias"),
        ("conv1.kln.weight", "blocks.1.key_norm.weight"),
        ("conv0.vln.bias", "blocks.0.value_norm.bias"),
        ("conv1.o_proj1.weight", "blocks.1.mix.0.weight"),
        ("conv0.o_proj2.bias", "blocks.0.mix.2.bias"),
        ("fc1.weight", "rgb_head.0.weight"),
        ("fc2.bias", "rgb_head.2.bias"),
        ("encoder.body.3.body.0.weight", "encoder.body.3.body.0.weight"),
        ("conv2.qkv_proj.weight", "conv2.qkv_proj.weight"),  # no such block here: kept, refused
    ],
)
def test_official_keys_map_onto_ours(official, ours):
    assert srno_key(official) == ours


def test_the_state_dict_translation_reshapes_only_the_head_convolutions():
    sd = official_checkpoint()["model"]["sd"]
    ours = srno_state_dict(sd)
    assert not any(key.startswith(("encoder.sub_mean", "encoder.add_mean")) for key in ours)
    assert ours["lifting.weight"].shape == (WIDTH, LIFTING // WIDTH - 1)
    assert ours["blocks.1.key_norm.weight"].shape == (HEADS, 1, WIDTH // HEADS)
    assert ours["encoder.head.0.weight"].shape == (C, 3, 3, 3)
    torch.testing.assert_close(ours["blocks.0.mix.2.weight"], sd["conv0.o_proj2.weight"][..., 0, 0])


def test_a_checkpoint_of_another_architecture_is_refused_on_loading():
    checkpoint = official_checkpoint()
    sd = dict(checkpoint["model"]["sd"])
    sd["conv2.qkv_proj.weight"] = sd["conv1.qkv_proj.weight"]  # a third block the model lacks
    net = instantiate(srno_network_config(OFFICIAL_ARGS, OUR_ENCODER))
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\) in state_dict: \"conv2"):
        net.load_state_dict(srno_state_dict(sd), strict=True)
