"""Config nodes as plain Python: what checkpoints, JSON records and constructors receive."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


def plain(node: Any) -> Any:
    """A config node as plain, resolved containers (checkpoints must load with
    ``weights_only=True``, so no OmegaConf object may reach the hyperparameters)."""
    if isinstance(node, DictConfig | ListConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node
