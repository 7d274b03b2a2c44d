"""Load checkpoints of the official LIIF code base (github yinboc/liif) into our networks.

Their format is ``{'model': {'name', 'args', 'sd'}}``; names ``liif`` and ``metasr``, encoders
``edsr-baseline`` and ``rdn``. Loading never unpickles code (``weights_only=True``).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import Any

import torch
from hydra.utils import instantiate

from ipe_lightning.models.base import ImplicitSR

# RDN configurations of the RDN paper / LIIF code: (blocks D, layers per block C, growth G).
_RDN_CONFIGS = {"A": (20, 6, 32), "B": (16, 8, 64)}
# Mean-shift convolutions of the EDSR code; unused without the upsampling tail.
_IGNORED_PREFIXES = ("encoder.sub_mean.", "encoder.add_mean.")


def load_weights_only(path: str | os.PathLike) -> Any:
    """``torch.load`` that refuses to execute code from the file, with a clear error."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"refusing to load {os.fspath(path)!r}: it holds objects other than tensors and plain "
            f"containers, and loading it would execute code from the file ({error})"
        ) from error


def _encoder_config(spec: Mapping[str, Any]) -> dict[str, Any]:
    name, args = spec.get("name"), dict(spec.get("args") or {})
    if name == "edsr-baseline":
        return {
            "_target_": "ipe_lightning.models.EDSRBaseline",
            "n_resblocks": args.get("n_resblocks", 16),
            "n_feats": args.get("n_feats", 64),
        }
    if name == "rdn":
        config = args.get("RDNconfig", "B")
        if config not in _RDN_CONFIGS:
            raise ValueError(
                f"unknown RDN config {config!r}; expected one of {sorted(_RDN_CONFIGS)}"
            )
        blocks, layers, growth = _RDN_CONFIGS[config]
        return {
            "_target_": "ipe_lightning.models.RDN",
            "n_feats": args.get("G0", 64),
            "n_blocks": blocks,
            "n_layers": layers,
            "growth": growth,
        }
    raise ValueError(
        f"unknown encoder {name!r} in the checkpoint; expected 'edsr-baseline' or 'rdn'"
    )


def liif_network_config(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """Our network config (as ``conf/model/*.yaml``'s ``net``) for a LIIF code-base model spec."""
    encoder = _encoder_config(args.get("encoder_spec") or {})
    imnet_args = dict((args.get("imnet_spec") or {}).get("args") or {})
    if name == "liif":
        return {
            "_target_": "ipe_lightning.models.LIIF",
            "encoder": encoder,
            "encoding": "cell" if args.get("cell_decode", True) else "none",
            "mlp": "plain",
            "hidden": list(imnet_args.get("hidden_list", [256, 256, 256, 256])),
            "local_ensemble": bool(args.get("local_ensemble", True)),
            "feat_unfold": bool(args.get("feat_unfold", True)),
        }
    if name == "metasr":
        return {
            "_target_": "ipe_lightning.models.MetaSR",
            "encoder": encoder,
            "meta_input": "plain",
            "hidden": list(imnet_args.get("hidden_list", [256])),
        }
    raise ValueError(f"unknown model name {name!r} in the checkpoint; expected 'liif' or 'metasr'")


def _rename(key: str) -> str:
    return "mlp." + key.removeprefix("imnet.") if key.startswith("imnet.") else key


def _liif_parts(checkpoint: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    model = checkpoint.get("model") if isinstance(checkpoint, Mapping) else None
    if not isinstance(model, Mapping) or not {"name", "sd"} <= set(model):
        raise ValueError(
            "not a LIIF code-base checkpoint: expected {'model': {'name', 'args', 'sd'}}"
        )
    config = liif_network_config(model["name"], model.get("args") or {})
    state = {
        _rename(key): value
        for key, value in model["sd"].items()
        if not key.startswith(_IGNORED_PREFIXES)
    }
    return config, state


def _lightning_parts(checkpoint: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    config = (checkpoint.get("hyper_parameters") or {}).get("net")
    if not isinstance(config, Mapping):
        raise ValueError(
            "the Lightning checkpoint has no network config in hyper_parameters['net']"
        )
    state = {
        key.removeprefix("net."): value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith("net.")
    }
    return dict(config), state


def _load_state(network: ImplicitSR, state: Mapping[str, Any], what: str) -> ImplicitSR:
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"the checkpoint's state dict does not fit a {what} network: "
            f"missing keys {missing}, unexpected keys {unexpected}"
        )
    mismatched = [k for k, v in state.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if mismatched:
        raise ValueError(
            "the checkpoint's tensors have other shapes than the network's: "
            + ", ".join(
                f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in mismatched
            )
        )
    network.load_state_dict(state)
    return network


def from_liif_checkpoint(path_or_dict: str | os.PathLike | Mapping[str, Any]) -> ImplicitSR:
    """Our network with the weights of an official LIIF / MetaSR checkpoint."""
    checkpoint = (
        path_or_dict if isinstance(path_or_dict, Mapping) else load_weights_only(path_or_dict)
    )
    config, state = _liif_parts(checkpoint)
    return _load_state(instantiate(config), state, repr(checkpoint["model"]["name"]))


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(network config, network state dict)`` of one of our Lightning checkpoints or of an
    official LIIF / MetaSR checkpoint, told apart by their layout."""
    checkpoint = load_weights_only(path)
    if isinstance(checkpoint, Mapping) and "state_dict" in checkpoint:
        return _lightning_parts(checkpoint)
    return _liif_parts(checkpoint)


def load_network(path: str | os.PathLike) -> tuple[ImplicitSR, dict[str, Any]]:
    """The network stored in ``path`` (ours or official LIIF) and its config."""
    config, state = read_checkpoint(path)
    return _load_state(instantiate(config), state, str(config.get("_target_"))), config
