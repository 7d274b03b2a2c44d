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
from torch import nn

from ipe_lightning.models.base import ImplicitSR
from ipe_lightning.models.encoders import RDN, EDSRBaseline
from ipe_lightning.models.liif import LIIF
from ipe_lightning.models.metasr import MetaSR

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


def _encoder_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    name, args = spec.get("name"), dict(spec.get("args") or {})
    if name == "edsr-baseline":
        return EDSRBaseline(
            n_resblocks=args.get("n_resblocks", 16), n_feats=args.get("n_feats", 64)
        )
    if name == "rdn":
        config = args.get("RDNconfig", "B")
        if config not in _RDN_CONFIGS:
            raise ValueError(
                f"unknown RDN config {config!r}; expected one of {sorted(_RDN_CONFIGS)}"
            )
        blocks, layers, growth = _RDN_CONFIGS[config]
        return RDN(n_feats=args.get("G0", 64), n_blocks=blocks, n_layers=layers, growth=growth)
    raise ValueError(
        f"unknown encoder {name!r} in the checkpoint; expected 'edsr-baseline' or 'rdn'"
    )


def _network_from_spec(name: str, args: Mapping[str, Any]) -> ImplicitSR:
    encoder = _encoder_from_spec(args.get("encoder_spec") or {})
    imnet_args = dict((args.get("imnet_spec") or {}).get("args") or {})
    if name == "liif":
        return LIIF(
            encoder,
            encoding="cell" if args.get("cell_decode", True) else "none",
            mlp="plain",
            hidden=imnet_args.get("hidden_list", [256, 256, 256, 256]),
            local_ensemble=args.get("local_ensemble", True),
            feat_unfold=args.get("feat_unfold", True),
        )
    if name == "metasr":
        return MetaSR(encoder, meta_input="plain", hidden=imnet_args.get("hidden_list", [256]))
    raise ValueError(f"unknown model name {name!r} in the checkpoint; expected 'liif' or 'metasr'")


def _rename(key: str) -> str:
    return "mlp." + key.removeprefix("imnet.") if key.startswith("imnet.") else key


def from_liif_checkpoint(path_or_dict: str | os.PathLike | Mapping[str, Any]) -> ImplicitSR:
    """Our network with the weights of an official LIIF / MetaSR checkpoint."""
    checkpoint = (
        path_or_dict if isinstance(path_or_dict, Mapping) else load_weights_only(path_or_dict)
    )
    model = checkpoint.get("model") if isinstance(checkpoint, Mapping) else None
    if not isinstance(model, Mapping) or not {"name", "sd"} <= set(model):
        raise ValueError(
            "not a LIIF code-base checkpoint: expected {'model': {'name', 'args', 'sd'}}"
        )
    network = _network_from_spec(model["name"], model.get("args") or {})
    state = {
        _rename(key): value
        for key, value in model["sd"].items()
        if not key.startswith(_IGNORED_PREFIXES)
    }
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"the checkpoint's state dict does not fit a {model['name']!r} network: "
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
