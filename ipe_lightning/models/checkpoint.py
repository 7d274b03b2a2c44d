"""Load our Lightning checkpoints and those of the official LIIF, LTE and EDSR code bases.

Official LIIF / LTE files are ``{'model': {'name', 'args', 'sd'}}``: names ``liif`` and ``metasr``
(github yinboc/liif) and ``lte`` (github jaewon-lee-b/lte), encoders ``edsr-baseline`` and
``rdn``. EDSR-PyTorch's published weights are plain state dicts of ``sub_mean``, ``head``,
``body``, ``tail``, ``add_mean`` (:mod:`~ipe_lightning.models.edsr_pytorch`). Our
files keep the network config in ``hyper_parameters['net']`` and the preset's name in
``hyper_parameters['model_name']``; configs that name parts by strings (``encoding: 'ipe'``,
``impl: 'fast'``) are translated to today's parts on reading. Loading never unpickles code
(``weights_only=True``). :func:`load_network` is the one way to load a network for inference."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from hydra.utils import instantiate

from ipe_lightning.models.base import ImplicitSR
from ipe_lightning.models.checkpoint_file import load_weights_only
from ipe_lightning.models.edsr_pytorch import is_edsr_pytorch, read_edsr_pytorch
from ipe_lightning.models.lte import lte_network_config
from ipe_lightning.models.srno import srno_network_config, srno_state_dict

# RDN configurations of the RDN paper / LIIF code: (blocks D, layers per block C, growth G).
_RDN_CONFIGS = {"A": (20, 6, 32), "B": (16, 8, 64)}
# Mean-shift convolutions of the EDSR code; unused without the upsampling tail.
_IGNORED_PREFIXES = ("encoder.sub_mean.", "encoder.add_mean.")


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


_ENCODINGS = "ipe_lightning.models.encodings."
_MLPS = "ipe_lightning.models.mlp."
# LIIF's decoder, once named by ``impl``: the decoder parts of ipe_lightning.models.decoders.
_LEGACY_DECODERS = {"fast": "FastDecoder", "naive": "NaiveDecoder"}
_DECODERS = "ipe_lightning.models.decoders."


def _mlp_config(kind: str, hidden: Sequence[int]) -> dict[str, Any]:
    return {"_target_": _MLPS + kind, "_partial_": True, "hidden": list(hidden)}


def liif_network_config(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """Our network config (as ``conf/model/*.yaml``'s ``net``) for a LIIF code-base model spec."""
    encoder = _encoder_config(args.get("encoder_spec") or {})
    imnet_args = dict((args.get("imnet_spec") or {}).get("args") or {})
    if name == "liif":
        encoding = "Cell" if args.get("cell_decode", True) else "NoEncoding"
        return {
            "_target_": "ipe_lightning.models.LIIF",
            "encoder": encoder,
            "encoding": {"_target_": _ENCODINGS + encoding},
            "mlp": _mlp_config("PlainMLP", imnet_args.get("hidden_list", [256, 256, 256, 256])),
            "local_ensemble": bool(args.get("local_ensemble", True)),
            "feat_unfold": bool(args.get("feat_unfold", True)),
        }
    if name == "metasr":
        return {
            "_target_": "ipe_lightning.models.MetaSR",
            "encoder": encoder,
            "encoding": {"_target_": _ENCODINGS + "MetaPlain"},
            "mlp": _mlp_config("PlainMLP", imnet_args.get("hidden_list", [256])),
        }
    if name == "lte":
        return lte_network_config(args, encoder)
    if name == "sronet":
        return srno_network_config(args, encoder)
    raise ValueError(
        f"unknown model name {name!r} in the checkpoint; "
        "expected 'liif', 'metasr', 'lte' or 'sronet'"
    )


@dataclass(frozen=True)
class _LegacyHead:
    """How a head's config named its parts before they were parts, and the defaults then."""

    key: str  # the argument that named the encoding
    encodings: dict[str, str]  # its names -> classes of ipe_lightning.models.encodings
    encoding: str
    mlp: str
    hidden: tuple[int, ...]


_LEGACY_HEADS = {
    "LIIF": _LegacyHead(
        "encoding",
        {"none": "NoEncoding", "cell": "Cell", "pe": "PE", "ipe": "IPE", "ipe_cell": "IPECell"},
        encoding="ipe",
        mlp="skip",
        hidden=(256, 256, 256, 256),
    ),
    "MetaSR": _LegacyHead(
        "meta_input",
        {"plain": "MetaPlain", "pe": "PE", "ipe": "IPE"},
        encoding="plain",
        mlp="plain",
        hidden=(256,),
    ),
}
_LEGACY_MLPS = {"plain": "PlainMLP", "skip": "SkipMLP"}
_LEGACY_BANDED = {"PE", "IPE", "IPECell"}  # the encodings that read the shared `bandwidth`
_LEGACY_BANDWIDTH = 10


def _legacy_choice(choices: dict[str, str], name: Any, what: str, head: str) -> str:
    if name not in choices:
        raise ValueError(
            f"unknown {what} {name!r} in the checkpoint's {head} config; expected one of "
            f"{sorted(choices)}"
        )
    return choices[name]


def _upgrade_decoder(config: dict[str, Any], head: str) -> dict[str, Any]:
    """LIIF's ``impl: 'fast' | 'naive'`` becomes the decoder part of that name."""
    if head != "LIIF" or "impl" not in config:
        return config
    name = _legacy_choice(_LEGACY_DECODERS, config.pop("impl"), "decoder impl", head)
    config["decoder"] = {"_target_": _DECODERS + name, "_partial_": True}
    return config


def upgrade_network_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A network config in today's form: encoding, MLP and decoder as parts (``_target_``).

    Configs that name parts by strings next to a shared ``bandwidth`` and ``hidden``
    (``encoding: 'ipe', bandwidth: 10, mlp: 'skip'``; MetaSR's ``meta_input: 'pe'``; LIIF's
    ``impl: 'fast'``) become the parts that build the same network. Today's configs are
    unchanged.
    """
    config = dict(config)
    head = str(config.get("_target_", "")).rsplit(".", 1)[-1]
    config = _upgrade_decoder(config, head)
    legacy = _LEGACY_HEADS.get(head)
    named = any(isinstance(config.get(k), str) for k in ("encoding", "mlp"))
    if legacy is None or not (named or {"bandwidth", "hidden", "meta_input"} & set(config)):
        return config
    encoding = _legacy_choice(
        legacy.encodings, config.pop(legacy.key, legacy.encoding), legacy.key, head
    )
    bandwidth = config.pop("bandwidth", _LEGACY_BANDWIDTH)
    config["encoding"] = {"_target_": _ENCODINGS + encoding}
    if encoding in _LEGACY_BANDED:
        config["encoding"]["bandwidth"] = bandwidth
    mlp = _legacy_choice(_LEGACY_MLPS, config.pop("mlp", legacy.mlp), "mlp", head)
    config["mlp"] = _mlp_config(mlp, config.pop("hidden", legacy.hidden))
    return config


def _rename(key: str) -> str:
    return "mlp." + key.removeprefix("imnet.") if key.startswith("imnet.") else key


def _liif_parts(checkpoint: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    model = checkpoint.get("model") if isinstance(checkpoint, Mapping) else None
    if not isinstance(model, Mapping) or not {"name", "sd"} <= set(model):
        raise ValueError(
            "not a LIIF code-base checkpoint: expected {'model': {'name', 'args', 'sd'}}"
        )
    config = liif_network_config(model["name"], model.get("args") or {})
    if model["name"] == "sronet":  # SRNO's own names and 1x1-convolution shapes
        return config, srno_state_dict(model["sd"])
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
    return upgrade_network_config(config), state


def _load_state(network: ImplicitSR, state: Mapping[str, Any], what: str) -> ImplicitSR:
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as error:
        # torch lists the missing and unexpected keys and the tensors of other shapes
        raise ValueError(
            f"the checkpoint's state dict does not fit a {what} network: {error}"
        ) from error
    return network


def from_liif_checkpoint(path_or_dict: str | os.PathLike | Mapping[str, Any]) -> ImplicitSR:
    """Our network with the weights of an official LIIF / MetaSR checkpoint."""
    checkpoint = (
        path_or_dict if isinstance(path_or_dict, Mapping) else load_weights_only(path_or_dict)
    )
    config, state = _liif_parts(checkpoint)
    return _load_state(instantiate(config), state, repr(checkpoint["model"]["name"]))


@dataclass(frozen=True)
class NetworkInfo:
    """What a checkpoint says about its network besides the weights.

    ``config``: the network config in today's form (as ``conf/model/*.yaml``'s ``net``);
    ``model_name``: the preset it was trained as (``hyper_parameters['model_name']`` of our
    Lightning checkpoints, e.g. ``ipe_liif``; ``edsr_baseline_x2`` ... for EDSR-PyTorch's weights),
    ``None`` for official LIIF / MetaSR / LTE files.
    """

    config: dict[str, Any]
    model_name: str | None = None


def _read(path: str | os.PathLike) -> tuple[NetworkInfo, dict[str, Any]]:
    checkpoint = load_weights_only(path)
    if isinstance(checkpoint, Mapping) and "state_dict" in checkpoint:
        config, state = _lightning_parts(checkpoint)
        name = (checkpoint.get("hyper_parameters") or {}).get("model_name")
        return NetworkInfo(config, None if name is None else str(name)), state
    if is_edsr_pytorch(checkpoint):
        config, state, name = read_edsr_pytorch(checkpoint, path)
        return NetworkInfo(config, name), state
    config, state = _liif_parts(checkpoint)
    return NetworkInfo(config), state


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(network config, network state dict)`` of one of our Lightning checkpoints or of an
    official LIIF / MetaSR / LTE / EDSR-PyTorch checkpoint, told apart by their layout."""
    info, state = _read(path)
    return info.config, state


def load_network(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[ImplicitSR, NetworkInfo]:
    """The network stored in ``path`` (ours or an official LIIF / MetaSR / LTE / EDSR-PyTorch
    file), with its weights, on ``device`` and in eval mode (ready for
    :func:`ipe_lightning.inference.upsample`), and what the checkpoint says about it
    (:class:`NetworkInfo`: its config and model name)."""
    info, state = _read(path)
    network = _load_state(instantiate(info.config), state, str(info.config.get("_target_")))
    return network.to(device).eval(), info
