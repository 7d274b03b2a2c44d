"""What identifies a training: the part of a job's resolved config that changes its weights.

Two jobs with the same identity train the same model (bit for bit on a deterministic setup, in
distribution otherwise), so a sweep trains it once and evaluates it for every table that lists
it: Table 2's RDN rows are Table 1's RDN models, Table 4's LIIF and IPE-LIIF (L = 10) are Table
1's EDSR-baseline ones (docs/method.md §3), and Table 1's resampling rows (``test.resample``) are
its EDSR-baseline ×4.

In the identity: the network (``model.net``), the training data and its sampler (``data``
without its evaluation sets and without how it is loaded), the optimiser and its schedule, the
trainer settings that change the result, the seed, and any callback that is not known to only
observe (an EMA, a fault injected in a test: a callback can change the weights). Not in it:
evaluation sets and scales (``eval``, ``data.eval_sets``, ``test``), validation, loggers, the
observing callbacks (checkpoints, progress, example images), launchers, paths, run names and
tags: a job that differs from a training only there is that training, evaluated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig

from ipe_lightning.configs import plain

# data.*: how images are loaded or validated, not which ones train the network.
DATA_NOT_TRAINING = (
    "eval_sets",
    "root",  # the training source's own ``images.root`` is kept
    "num_workers",
    "cache",
    "cache_dir",
    "pin_memory",
    "persistent_workers",
    "prefetch_factor",
    "val_first_k",
    "val_repeat",
)
# Data options added later, at the value every earlier training had: left out at that value, so the
# recorded trainings keep their identity.
DATA_DEFAULTS = {"degrade": "pillow"}


def _trains(key: str, value: Any) -> bool:
    """Whether a data option is part of what a training is (not where or how fast it reads)."""
    if key in DATA_NOT_TRAINING:
        return False
    return not (key in DATA_DEFAULTS and value == DATA_DEFAULTS[key])


# Parts named in the identity as configs first recorded them, so that trainings recorded then keep
# their identity: the decoder part by its name (``impl: fast``), the data module by its class.
DECODER_NAMES = {
    "ipe_lightning.models.decoders.FastDecoder": "fast",
    "ipe_lightning.models.decoders.NaiveDecoder": "naive",
}
DATA_MODULE_TARGETS = {
    "ipe_lightning.data.SRDataModule.from_config": "ipe_lightning.data.SRDataModule",
}
# trainer.*: the settings that change the weights a training ends with.
TRAINER_TRAINING = (
    "max_epochs",
    "max_steps",
    "precision",
    "accumulate_grad_batches",
    "gradient_clip_val",
    "gradient_clip_algorithm",
    "limit_train_batches",
    "devices",  # the global batch is batch_size x devices x num_nodes
    "num_nodes",
    "deterministic",
)
# callbacks (by ``_target_`` prefix) that watch a training without changing it
OBSERVING_CALLBACKS = (
    "ipe_lightning.runtime.",
    "pytorch_lightning.callbacks.ModelCheckpoint",
    "pytorch_lightning.callbacks.LearningRateMonitor",
    "pytorch_lightning.callbacks.TQDMProgressBar",
    "pytorch_lightning.callbacks.RichProgressBar",
    "pytorch_lightning.callbacks.ModelSummary",
)
DIGEST_LENGTH = 16


def training_config(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The identity's part of ``cfg`` (module doc), resolved, as plain data."""
    data = cfg.get("data") or {}
    net = plain((cfg.get("model") or {}).get("net"))
    trainer = cfg.get("trainer") or {}
    callbacks = {
        name: plain(spec)
        for name, spec in (cfg.get("callbacks") or {}).items()
        if spec and not str(spec.get("_target_", "")).startswith(OBSERVING_CALLBACKS)
    }
    return {  # resolved part by part: the rest (hydra.*, paths.*) may not resolve outside a run
        "net": _named_decoder(net),
        "data": _named_data_module({k: plain(data[k]) for k in data if _trains(k, data[k])}),
        "optimizer": plain(cfg.get("optimizer")),
        "scheduler": plain(cfg.get("scheduler")),
        "trainer": {k: plain(trainer[k]) for k in trainer if k in TRAINER_TRAINING},
        "seed": plain(cfg.get("seed")),
        **({"callbacks": callbacks} if callbacks else {}),  # absent: identities stay as they were
    }


def _named_decoder(net: Any) -> Any:
    """``net`` with its decoder part as ``impl: <name>`` (:data:`DECODER_NAMES`)."""
    if not isinstance(net, dict) or not isinstance(net.get("decoder"), dict):
        return net
    target = net["decoder"].get("_target_")
    if target not in DECODER_NAMES:
        return net
    named = {k: v for k, v in net.items() if k != "decoder"}
    return {**named, "impl": DECODER_NAMES[target]}


def _named_data_module(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with its module's class as first recorded (:data:`DATA_MODULE_TARGETS`)."""
    target = data.get("_target_")
    return {**data, "_target_": DATA_MODULE_TARGETS.get(target, target)} if target else data


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no spaces, numbers as JSON writes them."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def training_identity(cfg: DictConfig | Mapping[str, Any]) -> str:
    """A stable name of ``cfg``'s training: the head of the SHA-256 of its canonical JSON."""
    digest = hashlib.sha256(canonical_json(training_config(cfg)).encode()).hexdigest()
    return digest[:DIGEST_LENGTH]
