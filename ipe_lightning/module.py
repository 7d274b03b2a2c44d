"""The LightningModule: wires the network, the L1 loss, the metrics and the optimiser.

Everything numerical lives elsewhere (models, inference, metrics); this module only connects it to
Lightning. The optimiser and its schedule come from config (``conf/schedule/*.yaml``) as partial
constructors. Hyperparameters are plain containers so checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import nn

from ipe_lightning.bicubic import bicubic_upsample
from ipe_lightning.configs import plain
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
    (``<set>/x<scale>``) in order.

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
    ) -> None:
        super().__init__()
        # Plain containers before they are recorded: no OmegaConf object in the checkpoint.
        net, optimizer, scheduler = plain(net), plain(optimizer), plain(scheduler)
        self.save_hyperparameters()
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

    # -- training ---------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        # Paper Sec. 5: L1 in the normalised space.
        prediction = self.net(to_network_range(batch["lr"]), batch["coord"], batch["cell"])
        loss = self.loss_fn(prediction, to_network_range(batch["gt"]))
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"the training loss is {loss.item()} at step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}); stopping. The last good "
                "checkpoint is kept in the run's checkpoints/ folder."
            )
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["lr"].shape[0])
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=1)
        return loss

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
