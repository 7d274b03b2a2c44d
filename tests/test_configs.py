"""``plain`` turns config nodes into plain resolved containers, which a checkpoint loaded with
``weights_only=True`` can hold; an OmegaConf node in its hyperparameters makes it unloadable."""

from __future__ import annotations

import io
import pickle

import pytest
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from ipe_lightning.configs import plain


def config() -> DictConfig:
    return OmegaConf.create(
        {
            "width": 64,
            "net": {"_target_": "a.Net", "hidden": "${width}", "layers": [1, "${width}"]},
            "scales": [2, 2.5, [2, 3]],
            "name": "run_${width}",
            "nothing": None,
        }
    )


def reloaded(value: object) -> object:
    buffer = io.BytesIO()
    torch.save({"hyper_parameters": value}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)["hyper_parameters"]


def containers(value: object) -> set[type]:
    """Every container type anywhere inside ``value`` (``value`` itself included)."""
    if isinstance(value, dict):
        return {type(value)}.union(*(containers(v) for v in value.values()))
    if isinstance(value, list | tuple):
        return {type(value)}.union(*(containers(v) for v in value))
    return set()


def test_a_dict_config_becomes_plain_dicts_and_lists_with_interpolations_resolved():
    result = plain(config())
    assert result == {
        "width": 64,
        "net": {"_target_": "a.Net", "hidden": 64, "layers": [1, 64]},
        "scales": [2, 2.5, [2, 3]],
        "name": "run_64",
        "nothing": None,
    }
    assert containers(result) == {dict, list}


def test_a_list_config_and_a_nested_node_become_plain_too():
    cfg = config()
    assert plain(cfg.net) == {"_target_": "a.Net", "hidden": 64, "layers": [1, 64]}
    assert isinstance(cfg.scales, ListConfig)
    result = plain(cfg.scales)
    assert result == [2, 2.5, [2, 3]] and containers(result) == {list}


@pytest.mark.parametrize("value", [None, 3, 2.5, "x2", [1, 2], {"a": 1}, (2, 3)])
def test_a_plain_value_is_returned_as_it_is(value):
    assert plain(value) is value


def test_the_dict_config_itself_does_not_load_with_weights_only():
    """What ``plain`` is for: without it the checkpoint cannot be loaded safely."""
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        reloaded(config())
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        reloaded(config().scales)


def test_plain_configs_round_trip_through_a_weights_only_checkpoint():
    for node in (config(), config().net, config().scales):
        value = plain(node)
        assert reloaded(value) == value
