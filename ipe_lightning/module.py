"""The LightningModule: wires the network, the L1 loss, the metrics and the optimiser.

Everything numerical lives elsewhere (models, inference, metrics); this module only connects it to
Lightning, and what watches or records a job (the non-finite loss guard, ``per_image.csv``, the
record) are callbacks in :mod:`ipe_lightning.runtime`. It is built from the root config's
``module`` node; the optimiser and its schedule come from config (``conf/schedule/*.yaml``) as
partial constructors. Hyperparameters are plain containers so checkpoints load with
``weights_only=True``.

``compile`` (the root config's ``compile`` key) runs the training loss through ``torch.compile``;
``self.net`` stays the eager network, so checkpoints hold its state dict alone and load in eager
code, and validation and test run it eagerly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from torch import nn

from ipe_lightning.bicubic import bicubic_upsample
from ipe_lightning.configs import plain
from ipe_lightning.errors import SettingError
from ipe_lightning.inference import (
    DEFAULT_QUERY_BUDGET,
    QueryBudget,
    from_network_range,
    to_network_range,
    upsample,
)
from ipe_lightning.metrics import SRPSNR, SRSSIM, psnr_per_image, ssim_per_image


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite (raised by ``runtime.nonfinite``'s guard)."""


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
    node), recorded in every checkpoint, or a network already built (one loaded from a checkpoint
    to test it). ``model_name`` is the model's name (``conf/model/<name>.yaml``'s ``name``): every
    checkpoint names the model it holds. ``optimizer`` and ``scheduler`` are configs with
    ``_target_`` and ``_partial_: true`` (``conf/schedule/*.yaml``): ``optimizer(params)`` and
    ``scheduler(optimizer)``, the scheduler stepped once per epoch; they are needed only to train.
    ``test_sets`` names the test loaders (``<set>/x<scale>``) in order; ``budget`` bounds the
    memory of upsampling a whole test image. ``compile`` compiles the training loss
    (:func:`compile_options`); the default trains eagerly.
    """

    def __init__(
        self,
        net: Mapping[str, Any] | nn.Module,
        model_name: str = "",
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        test_sets: Sequence[str] | None = None,
        budget: QueryBudget = DEFAULT_QUERY_BUDGET,
        compile: Any = None,
    ) -> None:
        super().__init__()
        built = isinstance(net, nn.Module)
        # Plain containers: no OmegaConf object in the checkpoint. The budget is how the test
        # runs, not what was trained: it comes from the config of each job.
        self.save_hyperparameters(
            {
                "net": None if built else plain(net),
                "model_name": str(model_name),
                "optimizer": plain(optimizer),
                "scheduler": plain(scheduler),
                "test_sets": plain(test_sets),
                "compile": plain(compile),
            }
        )
        self.budget = budget
        self._compile_options = compile_options(self.hparams.compile)
        # Built at the first training step: a plain attribute, not a submodule, so the state dict
        # (and every checkpoint) is the eager network's alone.
        self._compiled_loss: Callable[..., torch.Tensor] | None = None
        self.net = net if built else instantiate(self.hparams.net, _convert_="all")
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

    # -- training ----------------------------------------------------------------------------
    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._training_loss(batch)
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
    def test_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> dict[str, Any]:
        """Update the loader's metrics; return the image's ``loader``, ``name``, its ``lr``,
        ``bicubic``, ``sr`` and ``hr`` tensors and its ``scores`` (one value per image of each
        metric): what callbacks such as the example panels and ``per_image.csv`` use."""
        lr, hr = batch["lr"], batch["hr"]
        size = tuple(hr.shape[-2:])
        sr = upsample(self.net, lr, size=size, **self.budget.options())
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
        return {
            "loader": loader,
            "name": batch["name"],
            "lr": lr,
            "bicubic": bicubic,
            "sr": sr,
            "hr": hr,
            "scores": scores,
        }
