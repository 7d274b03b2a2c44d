"""Checkpoints whose configs name parts by strings still load and compute the same.

Oracle: ``tests/fixtures/legacy_checkpoints``, saved by the code of that time (tiny IPE-LIIF, LIIF
and MetaSR w/ PE trained a few steps, network configs with ``encoding: 'ipe'``, ``bandwidth``,
``mlp: 'skip'``, ``meta_input: 'pe'``, ``impl: 'fast'``), with ``upsample`` outputs that code
computed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from ipe_lightning.inference import upsample
from ipe_lightning.models import (
    IPE,
    PE,
    Cell,
    FastDecoder,
    MetaSR,
    NaiveDecoder,
    PlainMLP,
    SkipMLP,
    load_network,
    read_checkpoint,
    upgrade_network_config,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_checkpoints"
SCALES = {"x2.5": 2.5, "x3x2": (3, 2)}
# name -> (encoding, MLP class, hidden widths) the old strings meant
EXPECTED_PARTS = {
    "ipe_liif": (IPE(10), SkipMLP, [16, 16]),
    "liif": (Cell(), PlainMLP, [16, 16]),
    "metasr_pe": (PE(10), PlainMLP, [16]),
}


@pytest.fixture(scope="module")
def expected() -> dict:
    return torch.load(FIXTURES / "expected_outputs.pt", weights_only=True)


@pytest.mark.parametrize("name", sorted(EXPECTED_PARTS))
def test_a_legacy_checkpoint_loads_and_upsamples_as_the_code_that_wrote_it(name, expected):
    net, info = load_network(FIXTURES / f"{name}.ckpt")
    assert info.model_name == name  # hyper_parameters['model_name']
    net.eval()
    for tag, scale in SCALES.items():
        got = upsample(net, expected["input"], scale=scale)
        torch.testing.assert_close(got, expected["outputs"][name][tag], rtol=0, atol=1e-6)
    encoding, mlp, hidden = EXPECTED_PARTS[name]
    assert net.encoding == encoding
    assert type(net.mlp) is mlp
    assert [layer.out_features for layer in net.mlp.linears[:-1]] == hidden


@pytest.mark.parametrize("name", sorted(EXPECTED_PARTS))
def test_the_config_read_from_a_legacy_checkpoint_is_todays_form(name):
    # tasks.py builds the test module from this config: it must instantiate as module.py does
    config, state = read_checkpoint(FIXTURES / f"{name}.ckpt")
    assert not {"bandwidth", "hidden", "meta_input", "impl"} & set(config)
    assert isinstance(config["encoding"], dict) and isinstance(config["mlp"], dict)
    net = instantiate(config, _convert_="all")
    net.load_state_dict(state, strict=True)


ENCODER = {"_target_": "ipe_lightning.models.EDSRBaseline", "n_resblocks": 1, "n_feats": 4}
LIIF_TARGET = "ipe_lightning.models.LIIF"


def test_missing_legacy_keys_take_the_defaults_of_that_time():
    # IPE-LIIF with L = 10 and the skip MLP 256 x 4 were the constructor's defaults
    upgraded = upgrade_network_config({"_target_": LIIF_TARGET, "encoder": ENCODER, "bandwidth": 4})
    net = instantiate(upgraded, _convert_="all")
    assert net.encoding == IPE(4) and type(net.mlp) is SkipMLP
    assert [layer.out_features for layer in net.mlp.linears] == [256, 256, 256, 256, 3]
    metasr = upgrade_network_config(
        {"_target_": "ipe_lightning.models.MetaSR", "encoder": ENCODER, "hidden": [8]}
    )
    net = instantiate(metasr, _convert_="all")
    assert isinstance(net, MetaSR) and net.encoding.width == 3  # (o_y, o_x, 1/s)
    assert [layer.out_features for layer in net.mlp.linears] == [8, 4 * 9 * 3]


def test_an_encoding_without_a_bandwidth_drops_the_old_shared_key():
    upgraded = upgrade_network_config(
        {"_target_": LIIF_TARGET, "encoder": ENCODER, "encoding": "cell", "bandwidth": 10}
    )
    assert upgraded["encoding"] == {"_target_": "ipe_lightning.models.encodings.Cell"}
    assert "bandwidth" not in upgraded


def test_todays_configs_pass_unchanged():
    config = {
        "_target_": LIIF_TARGET,
        "encoder": ENCODER,
        "encoding": {"_target_": "ipe_lightning.models.encodings.IPE", "bandwidth": 4},
        "mlp": {"_target_": "ipe_lightning.models.mlp.PlainMLP", "_partial_": True, "hidden": [8]},
    }
    assert upgrade_network_config(config) == config
    other = {"_target_": "ipe_lightning.models.lte.LTE", "hidden": [256]}  # not a legacy head
    assert upgrade_network_config(other) == other


@pytest.mark.parametrize(
    ("config", "pattern"),
    [
        ({"encoding": "fourier"}, r"unknown encoding 'fourier'.*ipe_cell"),
        ({"encoding": "ipe", "mlp": "resnet"}, r"unknown mlp 'resnet'.*skip"),
    ],
    ids=["encoding", "mlp"],
)
def test_an_unknown_legacy_name_is_a_value_error_that_lists_the_choices(config, pattern):
    with pytest.raises(ValueError, match=pattern):
        upgrade_network_config({"_target_": LIIF_TARGET, "encoder": ENCODER, **config})


@pytest.mark.parametrize("impl, part", [("fast", FastDecoder), ("naive", NaiveDecoder)])
def test_a_legacy_impl_becomes_the_decoder_part_of_that_name(impl, part):
    upgraded = upgrade_network_config({"_target_": LIIF_TARGET, "encoder": ENCODER, "impl": impl})
    assert "impl" not in upgraded
    net = instantiate(upgraded, _convert_="all")
    assert type(net.decoder) is part
    # a config without the legacy strings keeps its other keys as they are
    assert upgraded["encoder"] == ENCODER and upgraded["_target_"] == LIIF_TARGET
