"""The LightningModule: wires the network, the L1 loss, the metrics and the optimiser.

Everything numerical lives elsewhere (models, inference, metrics); this module only connects it to
Lightning. The optimiser and its schedule come from config (``conf/schedule/*.yaml``) as partial
constructors. Hyperparameters are plain containers so checkpoints load with ``weights_only=True``.

``compile`` (the root config's ``compile`` key) runs the training loss through ``torch.compile``;
``self.net`` stays the eager network, so checkpoints hold its state dict alone and load in eager
code, and validation and test run it eagerly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import nn

from ipe_lightning.bicubic import bicubic_upsample
from ipe_lightning.configs import plain
from ipe_lightning.errors import SettingError
from ipe_lightning.inference import (
    DEFAULT_MAX_QUERIES,
    from_network_range,
    to_network_range,
    upsample,
)
from ipe_lightning.metrics import SRPSNR, SRSSIM, psnr_per_image, ssim_per_image
from ipe_lightning.results import PER_IMAGE_FIELDS


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def gather_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rank's rows, on every rank (rank order); ``rows`` itself without a process group.

    Test loaders are split between ranks without duplicates (each image is on one rank), so the
    gathered rows hold each image once whatever the rank count.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return list(rows)
    gathered: list[list[dict[str, Any]] | None] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, list(rows))
    return [row for part in gathered for row in part or []]


# torch.compile's modes; reduce-overhead adds CUDA graphs (torch.compile's documentation).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_options(setting: Any) -> dict[str, Any] | None:
    """torch.compile's keywords for a ``compile`` setting; ``None`` for eager training.

    ``None`` or ``False``: eager. ``True`` or a mode name (:data:`COMPILE_MODES`): that mode. A
    mapping: torch.compile's keywords as they are (``{"mode": "reduce-overhead", "dynamic":
    False}``, ``{"backend": "aot_eager"}``).
    """
    if setting is None or setting is False:
        return None
    if setting is True:
        return {}
    if isinstance(setting, str) and setting in COMPILE_MODES:
        return {"mode": setting}
    if isinstance(setting, Mapping):
        return dict(setting)
    raise SettingError(
        f"compile={setting!r}: choose null (eager), {', '.join(COMPILE_MODES)} or a mapping of "
        "torch.compile keywords"
    )


def training_loss(
    net: nn.Module, loss_fn: nn.Module, batch: dict[str, torch.Tensor]
) -> torch.Tensor:
    """The training loss of a batch: L1 in the network's range (paper Sec. 5)."""
    prediction = net(to_network_range(batch["lr"]), batch["coord"], batch["cell"])
    return loss_fn(prediction, to_network_range(batch["gt"]))


def sampled_pixel_psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR of each sample over its sampled query pixels, ``[0, 1]`` range: ``(B,)``."""
    mse = (prediction - target).pow(2).flatten(1).mean(dim=1)
    return -10 * torch.log10(mse)


class SRModule(pl.LightningModule):
    """Arbitrary-scale SR training and evaluation around an :class:`ImplicitSR` network.

    ``net`` is the network's config (a dict with ``_target_``, as ``conf/model/*.yaml``'s ``net``
    node). ``optimizer`` and ``scheduler`` are configs with ``_target_`` and ``_partial_: true``
    (``conf/schedule/*.yaml``): ``optimizer(params)`` and ``scheduler(optimizer)``, the scheduler
    stepped once per epoch; they are needed only to train. ``test_sets`` names the test loaders
    (``<set>/x<scale>``) in order. ``compile`` compiles the training loss
    (:func:`compile_options`); the default trains eagerly.

    After ``trainer.test``, :attr:`per_image_results` holds one dict per test image
    (:data:`PER_IMAGE_FIELDS`), gathered from every rank, in loader order; the logged means are
    the means of these values.
    """

    def __init__(
        self,
        net: dict[str, Any],
        model_name: str = "",
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        test_sets: list[str] | None = None,
        max_queries: int = DEFAULT_MAX_QUERIES,
        tile: int | None = None,
        compile: Any = None,
    ) -> None:
        super().__init__()
        # Plain containers before they are recorded: no OmegaConf object in the checkpoint.
        net, optimizer, scheduler = plain(net), plain(optimizer), plain(scheduler)
        compile = plain(compile)
        self.save_hyperparameters()
        self._compile_options = compile_options(compile)
        # Built at the first training step: a plain attribute, not a submodule, so the state dict
        # (and every checkpoint) is the eager network's alone.
        self._compiled_loss: Callable[..., torch.Tensor] | None = None
        # Training losses not yet looked at on the host, with where they were computed.
        self._unchecked_losses: list[tuple[torch.Tensor, int, int, int]] = []
        self.net = instantiate(net, _convert_="all")
        self.loss_fn = nn.L1Loss()
        self.test_sets = list(test_sets or [])
        self.test_metrics = nn.ModuleList(
            nn.ModuleDict(
                {
                    "psnr": SRPSNR(),
                    "ssim": SRSSIM(),
                    "bicubic_psnr": SRPSNR(),
                    "bicubic_ssim": SRSSIM(),
                }
            )
            for _ in self.test_sets
        )
        self.per_image_results: list[dict[str, Any]] = []

    # -- training ----------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._training_loss(batch)
        self._unchecked_losses.append(
            (loss.detach().clone(), self.global_step, self.current_epoch, batch_idx)
        )
        if self._check_each_step(loss):
            self._raise_on_non_finite_loss()
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["lr"].shape[0])
        # A host tensor: Lightning would copy a float to the GPU, which waits for the queued work.
        self.log("train/lr", torch.tensor(self.optimizers().param_groups[0]["lr"]), batch_size=1)
        return loss

    def _training_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._compile_options is None:
            return training_loss(self.net, self.loss_fn, batch)
        if self._compiled_loss is None:
            self._compiled_loss = torch.compile(training_loss, **self._compile_options)
        # One training step per call (what CUDA graphs under reduce-overhead need to know).
        torch.compiler.cudagraph_mark_step_begin()
        return self._compiled_loss(self.net, self.loss_fn, batch)

    # A NaN or infinite loss stops training with NonFiniteLossError naming its step, before a
    # checkpoint is written after it. Reading a loss on the host waits for the device, so on a GPU
    # the losses are read in one go every log_every_n_steps steps (when Lightning reads the logged
    # loss anyway), before every checkpoint is saved and at the end of training; the bad steps in
    # between run on NaN weights and are never saved. On the CPU there is nothing to wait for:
    # every loss is read at its step.
    losses_read_each_step_on = ("cpu",)  # device types

    def _check_each_step(self, loss: torch.Tensor) -> bool:
        every = max(int(self.trainer.log_every_n_steps), 1)
        return (
            loss.device.type in self.losses_read_each_step_on or (self.global_step + 1) % every == 0
        )

    def _raise_on_non_finite_loss(self) -> None:
        """Raise :class:`NonFiniteLossError` naming the first unchecked loss that is not finite."""
        unchecked, self._unchecked_losses = self._unchecked_losses, []
        if not unchecked:
            return
        finite = torch.isfinite(torch.stack([entry[0] for entry in unchecked])).tolist()
        for is_finite, (loss, step, epoch, batch_idx) in zip(finite, unchecked, strict=True):
            if not is_finite:
                raise NonFiniteLossError(
                    f"the training loss is {loss.item()} at step {step} "
                    f"(epoch {epoch}, batch {batch_idx}); stopping. The last good "
                    "checkpoint is kept in the run's checkpoints/ folder."
                )

    def on_train_start(self) -> None:
        self._unchecked_losses = []

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._raise_on_non_finite_loss()
        # Under DDP a bad loss on another rank reaches these weights through the gradients.
        if not torch.stack([p.isfinite().all() for p in self.net.parameters()]).all():
            raise NonFiniteLossError(
                f"the network's weights are not finite at step {self.global_step} (a NaN or "
                "infinite loss or gradient, here or on another rank); stopping before the "
                "checkpoint is written. The last good checkpoint is kept in the run's "
                "checkpoints/ folder."
            )

    def on_train_end(self) -> None:
        self._raise_on_non_finite_loss()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        # LIIF-style validation: PSNR on the sampled pixels of random patches.
        prediction = self.net(to_network_range(batch["lr"]), batch["coord"], batch["cell"])
        psnr = sampled_pixel_psnr(from_network_range(prediction), batch["gt"]).mean()
        self.log("val/psnr", psnr, prog_bar=True, sync_dist=True, batch_size=batch["lr"].shape[0])

    def configure_optimizers(self) -> dict[str, Any]:
        if self.hparams.optimizer is None or self.hparams.scheduler is None:
            raise ValueError(
                "training needs optimizer and scheduler configs (conf/schedule/*.yaml: "
                "_target_ and _partial_: true)"
            )
        optimizer = instantiate(self.hparams.optimizer, _convert_="all")(self.parameters())
        scheduler = instantiate(self.hparams.scheduler, _convert_="all")(optimizer)
        # Epoch milestones, as the paper's schedule (docs/method.md §3).
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    # -- testing ----------------------------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def on_test_epoch_end(self) -> None:
        rows = gather_rows(self._rows)
        rows.sort(key=lambda row: (row.pop("_loader"), row["image"]))
        self.per_image_results = rows

    def test_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        """Update the loader's metrics; return the image's ``loader``, ``name`` and its ``lr``,
        ``bicubic``, ``sr`` and ``hr`` tensors (what callbacks such as the example panels use)."""
        lr, hr = batch["lr"], batch["hr"]
        size = tuple(hr.shape[-2:])
        sr = upsample(
            self.net, lr, size=size, max_queries=self.hparams.max_queries, tile=self.hparams.tile
        )
        bicubic = bicubic_upsample(lr, size)
        protocol = {"shave": batch["shave"], "channel": batch["channel"]}
        scores = {
            "psnr": psnr_per_image(sr, hr, **protocol),
            "ssim": ssim_per_image(sr, hr, **protocol),
            "bicubic_psnr": psnr_per_image(bicubic, hr, **protocol),
            "bicubic_ssim": ssim_per_image(bicubic, hr, **protocol),
        }
        metrics = self.test_metrics[dataloader_idx]
        loader = self.test_sets[dataloader_idx]
        for name, metric in metrics.items():
            metric.update(scores[name])
            self.log(f"test/{loader}/{name}", metric, add_dataloader_idx=False, batch_size=1)
        self._rows.extend(_per_image_rows(loader, dataloader_idx, batch["name"], scores))
        return {
            "loader": loader,
            "name": batch["name"],
            "lr": lr,
            "bicubic": bicubic,
            "sr": sr,
            "hr": hr,
        }


def _per_image_rows(
    loader: str, loader_index: int, names: Any, scores: dict[str, torch.Tensor]
) -> list[dict[str, Any]]:
    """The rows of one batch: ``names`` is one name (a batch of one image) or one per image."""
    names = [names] if isinstance(names, str) else list(names)
    set_name, _, tag = loader.rpartition("/")
    values = {key: value.tolist() for key, value in scores.items()}
    return [
        {
            "_loader": loader_index,
            "set": set_name,
            "scale": tag.removeprefix("x"),
            "image": str(name),
            **{key: float(values[key][index]) for key in PER_IMAGE_FIELDS[3:]},
        }
        for index, name in enumerate(names)
    ]
