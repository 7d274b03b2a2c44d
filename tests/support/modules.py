"""SRModule tests' shared pieces: the default network with a tiny encoder, sampled batches as the
training sampler makes them, a quiet CPU trainer."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from ipe_lightning.configs import plain
from ipe_lightning.module import SRModule
from tests.support.runs import compose_config

SMALL_ENCODER = ["model.net.encoder.n_resblocks=1", "model.net.encoder.n_feats=8"]


def module_configs() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The default network (encoder shrunk), optimiser and scheduler, as plain containers."""
    cfg = compose_config(SMALL_ENCODER)
    return plain(cfg.model.net), plain(cfg.optimizer), plain(cfg.scheduler)


def make_module(configs, optimizer: dict | None = None, **kwargs) -> SRModule:
    """An SRModule of ``configs`` (:func:`module_configs`), seeded, with ``optimizer`` instead of
    the configured one if given."""
    net, default_optimizer, scheduler = configs
    torch.manual_seed(0)
    return SRModule(
        net=net, optimizer=optimizer or default_optimizer, scheduler=scheduler, **kwargs
    )


def sampled_batch(seed: int, batch: int = 2, queries: int = 50) -> dict[str, torch.Tensor]:
    """A training/validation batch as the sampler makes it: LR patch, query coords, cells, GT."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "lr": torch.rand(batch, 3, 8, 8, generator=generator),
        "coord": torch.rand(batch, queries, 2, generator=generator) * 2 - 1,
        "cell": torch.full((batch, queries, 2), 2 / 16),
        "gt": torch.rand(batch, queries, 3, generator=generator),
    }


def trainer(**kwargs) -> pl.Trainer:
    """A CPU trainer without logger, checkpoints, progress bar or summary (``kwargs`` win)."""
    options = {
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        **kwargs,
    }
    return pl.Trainer(**options)
