"""The weights EDSR-PyTorch publishes (github sanghyun-son/EDSR-PyTorch:
``edsr_baseline_x2-1bc95232.pt``, ``edsr_x4-4f62e9ef.pt``, ...): plain state dicts of
``sub_mean``, ``head``, ``body``, ``tail`` and ``add_mean``, read into
:class:`~ipe_lightning.models.fixed_scale.EDSRPyTorch`.

What the file does not store is read from its shapes: the features (``head.0.weight``), the blocks
(``body.<i>``), the scale (the tail's convolutions: 4·C channels per PixelShuffle(2) stage, 9·C for
one PixelShuffle(3)). ``res_scale`` is not stored: EDSR-PyTorch's models use 1 for EDSR-baseline
(16 blocks × 64 features) and 0.1 for EDSR (32 × 256, its ``EDSR_paper`` template); a block's
``body(x) · res_scale`` is folded into its second convolution (weights and bias × res_scale), the
same function. Files of other sizes are refused: their ``res_scale`` cannot be known.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

import torch

from ipe_lightning.errors import UserError
from ipe_lightning.models.fixed_scale import SCALES, EDSRPyTorch

# (blocks, features) -> res_scale of EDSR-PyTorch's published models.
RES_SCALES = {(16, 64): 1.0, (32, 256): 0.1}
_TOP_LEVEL = ("sub_mean", "head", "body", "tail", "add_mean")
_TARGET = "ipe_lightning.models.fixed_scale.EDSRPyTorch"


class EDSRWeightsError(UserError, ValueError):
    """An EDSR-PyTorch state dict that is not one of the networks this suite runs."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"cannot load {os.fspath(path)!r} as EDSR-PyTorch weights: {reason}")


def is_edsr_pytorch(checkpoint: Any) -> bool:
    """Whether ``checkpoint`` is laid out as EDSR-PyTorch's: a flat state dict of tensors whose
    keys are under ``sub_mean``, ``head``, ``body``, ``tail`` or ``add_mean``."""
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        return False
    return all(
        isinstance(key, str) and isinstance(value, torch.Tensor)
        for key, value in checkpoint.items()
    ) and any(str(key).split(".")[0] in _TOP_LEVEL for key in checkpoint)


def _shape(state: Mapping[str, torch.Tensor], key: str, path: str | os.PathLike) -> torch.Size:
    if key not in state:
        raise EDSRWeightsError(path, f"missing key {key!r}")
    return state[key].shape


def _scale(state: Mapping[str, torch.Tensor], n_feats: int, path: str | os.PathLike) -> int:
    """The scale the tail's sub-pixel stages make."""
    stages = []
    for index in range(0, 8, 2):  # up to four stages: enough to tell x8 and x16 apart
        key = f"tail.0.{index}.weight"
        if key not in state:
            break
        channels = state[key].shape[0]
        if channels not in (4 * n_feats, 9 * n_feats):
            raise EDSRWeightsError(
                path,
                f"{key} has {channels} output channels: a sub-pixel stage of {n_feats} features "
                f"has {4 * n_feats} (PixelShuffle(2)) or {9 * n_feats} (PixelShuffle(3))",
            )
        stages.append(2 if channels == 4 * n_feats else 3)
    if not stages:
        raise EDSRWeightsError(path, "missing key 'tail.0.0.weight' (the upsampler's first conv)")
    scale = math.prod(stages)
    if scale not in SCALES:
        raise EDSRWeightsError(
            path,
            f"its tail upsamples by x{scale} (PixelShuffle stages {stages}); the fixed-scale "
            f"networks here upsample by one of {SCALES}",
        )
    return scale


def _blocks(state: Mapping[str, torch.Tensor]) -> int:
    """Residual blocks: ``body.<i>.body...`` keys (the body's last conv is ``body.<n>``)."""
    found = {int(m.group(1)) for key in state if (m := re.match(r"body\.(\d+)\.body\.", key))}
    return len(found)


def edsr_network_config(state: Mapping[str, torch.Tensor], path: str | os.PathLike) -> dict:
    """Our network config (``EDSRPyTorch``) of an EDSR-PyTorch state dict, read from its shapes."""
    n_feats = _shape(state, "head.0.weight", path)[0]
    n_resblocks = _blocks(state)
    if (n_resblocks, n_feats) not in RES_SCALES:
        raise EDSRWeightsError(
            path,
            f"{n_resblocks} residual blocks of {n_feats} features is neither EDSR-baseline "
            "(16 x 64) nor EDSR (32 x 256), and the file does not store its res_scale",
        )
    scale = _scale(state, n_feats, path)
    return {"_target_": _TARGET, "n_resblocks": n_resblocks, "n_feats": n_feats, "scale": scale}


def _renamed(key: str) -> str:
    """EDSR-PyTorch's key → ours: the head and body are the encoder's."""
    return "encoder." + key if key.startswith(("head.", "body.")) else key


def edsr_state(
    state: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    expected: Mapping[str, Any],
    path: str | os.PathLike,
) -> dict[str, torch.Tensor]:
    """The state dict of ``EDSRPyTorch(**config)`` (whose own state dict is ``expected``) from an
    EDSR-PyTorch one: keys renamed, ``res_scale`` folded; missing, unexpected or misshapen
    tensors are refused by name."""
    renamed = {_renamed(key): value for key, value in state.items()}
    missing = sorted(set(expected) - set(renamed))
    unexpected = sorted(set(renamed) - set(expected))
    if missing or unexpected:
        listing = "; ".join(
            f"{what} {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
            for what, keys in (("missing", missing), ("unexpected", unexpected))
            if keys
        )
        raise EDSRWeightsError(path, f"not EDSR-PyTorch's layout: {listing}")
    for key, value in renamed.items():
        if value.shape != expected[key].shape:
            raise EDSRWeightsError(
                path,
                f"{key.removeprefix('encoder.')} has shape {tuple(value.shape)}, where "
                f"{config['n_resblocks']} blocks x {config['n_feats']} features at "
                f"x{config['scale']} need {tuple(expected[key].shape)}",
            )
    res_scale = RES_SCALES[(config["n_resblocks"], config["n_feats"])]
    # body(x) * res_scale = the same body with its second conv's weights and bias scaled
    return {
        key: value * res_scale if re.match(r"encoder\.body\.\d+\.body\.2\.", key) else value
        for key, value in renamed.items()
    }


def read_edsr_pytorch(
    state: Mapping[str, torch.Tensor], path: str | os.PathLike
) -> tuple[dict[str, Any], dict[str, torch.Tensor], str]:
    """``(network config, our state dict, model name)`` of an EDSR-PyTorch state dict; the name
    is ``edsr_baseline_x2`` ... or ``edsr_x2`` ..."""
    config = edsr_network_config(state, path)
    with torch.device("meta"):  # shapes and names only: no memory, no initialisation
        network = EDSRPyTorch(**{k: v for k, v in config.items() if k != "_target_"})
    return config, edsr_state(state, config, network.state_dict(), path), network.label
