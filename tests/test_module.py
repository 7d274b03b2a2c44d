"""SRModule: the L1 loss in the network range, NaN stops training (with the guard of the default
callbacks), validation PSNR on the sampled pixels, test metrics and test_step outputs, optimiser
and scheduler built from config, hyperparameters a checkpoint can load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch.utils.data import DataLoader

from ipe_lightning.bicubic import bicubic_upsample
from ipe_lightning.inference import QueryBudget, upsample
from ipe_lightning.module import SRModule
from ipe_lightning.runtime.examples import SEPARATOR, ExampleImages, panel_geometry
from ipe_lightning.runtime.nonfinite import NonFiniteLossError, NonFiniteLossGuard
from ipe_lightning.runtime.per_image import PerImageResults
from tests.support.modules import make_module, module_configs, sampled_batch, trainer


@pytest.fixture(scope="module")
def configs():
    return module_configs()


class Capture(pl.Callback):
    """Records the network's own L1 loss before each step, and what the step returned."""

    def __init__(self) -> None:
        self.expected, self.returned, self.test_outputs = [], [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        with torch.no_grad():
            prediction = pl_module.net(batch["lr"] * 2 - 1, batch["coord"], batch["cell"])
            self.expected.append((prediction - (batch["gt"] * 2 - 1)).abs().mean().item())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.returned.append(outputs["loss"].item())

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.test_outputs.append(outputs)


def test_the_training_loss_is_l1_in_the_network_range(configs):
    module, capture = make_module(configs), Capture()
    loader = DataLoader([sampled_batch(1), sampled_batch(2)], batch_size=None)
    trainer(max_steps=2, limit_val_batches=0, callbacks=[capture]).fit(module, loader)
    assert len(capture.returned) == 2
    for returned, expected in zip(capture.returned, capture.expected, strict=True):
        assert returned == pytest.approx(expected, rel=1e-6)


def test_a_non_finite_loss_stops_training_naming_the_step(configs):
    module = make_module(configs)

    class PoisonAtStep1(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == 1:
                with torch.no_grad():
                    next(pl_module.parameters()).fill_(float("nan"))

    loader = DataLoader([sampled_batch(seed) for seed in range(3)], batch_size=None)
    callbacks = [PoisonAtStep1(), NonFiniteLossGuard()]
    with pytest.raises(NonFiniteLossError, match="at step 1 "):
        trainer(max_steps=3, limit_val_batches=0, callbacks=callbacks).fit(module, loader)


def test_validation_psnr_is_the_mean_psnr_of_the_sampled_pixels(configs):
    module, batch = make_module(configs), sampled_batch(3, batch=3)
    (logged,) = trainer().validate(module, DataLoader([batch], batch_size=None), verbose=False)
    with torch.no_grad():
        prediction = module.net(batch["lr"] * 2 - 1, batch["coord"], batch["cell"])
    rgb = (prediction.numpy() * 0.5 + 0.5).clip(0, 1).astype(np.float64)
    mse = ((rgb - batch["gt"].numpy()) ** 2).reshape(3, -1).mean(axis=1)
    assert logged["val/psnr"] == pytest.approx(np.mean(10 * np.log10(1 / mse)), abs=1e-4)


def y_psnr(sr: torch.Tensor, hr: torch.Tensor, shave: int) -> float:
    """PSNR on BT.601 luma (16-235) with a shaved border: the benchmark protocol."""
    weights = np.array([65.481, 128.553, 24.966]) / 255
    luma = [(t[0].double().numpy() * weights[:, None, None]).sum(0) + 16 / 255 for t in (sr, hr)]
    diff = (luma[0] - luma[1])[shave:-shave, shave:-shave]
    return float(10 * np.log10(1 / np.mean(diff**2)))


def eval_batch(seed: int, name: str) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "lr": torch.rand(1, 3, 10, 12, generator=generator),
        "hr": torch.rand(1, 3, 20, 24, generator=generator),
        "name": name,
        "scale": (2.0, 2.0),
        "shave": 2,
        "channel": "y",
    }


def test_test_step_scores_each_image_and_returns_its_images_to_callbacks(configs, tmp_path):
    module = make_module(configs, test_sets=["set/x2"], budget=QueryBudget(max_queries=97))
    capture = Capture()
    examples = ExampleImages(str(tmp_path / "examples"), num_examples=1)
    batches = [eval_batch(4, "a"), eval_batch(5, "b")]
    (logged,) = trainer(callbacks=[capture, examples]).test(
        module, DataLoader(batches, batch_size=None), verbose=False
    )
    scores, bicubic_scores = [], []
    for batch, outputs in zip(batches, capture.test_outputs, strict=True):
        assert outputs["loader"] == "set/x2" and outputs["name"] == batch["name"]
        torch.testing.assert_close(outputs["hr"], batch["hr"])
        torch.testing.assert_close(outputs["lr"], batch["lr"])
        with torch.no_grad():
            torch.testing.assert_close(
                outputs["sr"], upsample(module.net, batch["lr"], size=(20, 24))
            )
        torch.testing.assert_close(outputs["bicubic"], bicubic_upsample(batch["lr"], (20, 24)))
        scores.append(y_psnr(outputs["sr"], batch["hr"], shave=2))
        bicubic_scores.append(y_psnr(outputs["bicubic"], batch["hr"], shave=2))
    assert logged["test/set/x2/psnr"] == pytest.approx(np.mean(scores), abs=1e-4)
    assert logged["test/set/x2/bicubic_psnr"] == pytest.approx(np.mean(bicubic_scores), abs=1e-4)
    assert set(logged) == {
        f"test/set/x2/{m}" for m in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")
    }
    # The example panel of the first image is built from what test_step returned.
    (written,) = (tmp_path / "examples").iterdir()
    assert written.name == "set_x2_a.png"
    panel = np.array(Image.open(written))
    zoom, header, _ = panel_geometry(24)  # narrow crops are enlarged (nearest) in the panel
    left = 2 * (24 * zoom + SEPARATOR)
    sr_tile = panel[header : header + 20 * zoom : zoom, left : left + 24 * zoom : zoom]
    sr_tile = sr_tile.astype(float) / 255
    expected = capture.test_outputs[0]["sr"][0].clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.abs(sr_tile - expected).max() <= 0.5 / 255 + 1e-6


def test_optimizer_and_scheduler_are_whatever_the_config_names(configs):
    net, _, _ = configs
    module = SRModule(
        net=net,
        optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1, "momentum": 0.5},
        scheduler={
            "_target_": "torch.optim.lr_scheduler.StepLR",
            "_partial_": True,
            "step_size": 3,
            "gamma": 0.1,
        },
    )
    configured = module.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["momentum"] == 0.5
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == {
        id(p) for p in module.parameters()
    }
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
    assert configured["lr_scheduler"]["interval"] == "epoch"
    lrs = []
    for _ in range(7):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.1] * 3 + [0.01] * 3 + [0.001])


def test_the_embedded_schedule_is_adam_halved_after_epochs_5_7_and_8(configs):
    configured = make_module(configs).configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.Adam)
    assert tuple(optimizer.param_groups[0]["betas"]) == (0.9, 0.999)
    assert optimizer.param_groups[0]["weight_decay"] == 0.0
    lrs = []
    for _ in range(9):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([1e-3] * 5 + [5e-4] * 2 + [2.5e-4, 1.25e-4])


def test_training_without_an_optimizer_config_says_what_is_missing(configs):
    net, _, _ = configs
    with pytest.raises(ValueError, match="optimizer and scheduler"):
        SRModule(net=net).configure_optimizers()


def test_hyperparameters_from_omegaconf_nodes_load_with_weights_only(configs, tmp_path):
    net, optimizer, scheduler = (OmegaConf.create(c) for c in configs)
    module = SRModule(net=net, optimizer=optimizer, scheduler=scheduler, test_sets=["a/x2"])
    torch.save({"hyper_parameters": dict(module.hparams)}, tmp_path / "hparams.pt")
    loaded = torch.load(tmp_path / "hparams.pt", weights_only=True)["hyper_parameters"]
    assert loaded["optimizer"]["lr"] == configs[1]["lr"]
    assert math.isclose(loaded["scheduler"]["gamma"], 0.5)


def test_test_writes_one_row_per_image_whose_means_are_the_logged_means(configs, tmp_path):
    from ipe_lightning.results import read_per_image

    module = make_module(configs, test_sets=["set/x2", "other/x3"])
    batches = [eval_batch(4, "b"), eval_batch(5, "a"), eval_batch(6, "c")]
    loaders = [DataLoader(batches, batch_size=None), DataLoader(batches[:2], batch_size=None)]
    per_image = PerImageResults(tmp_path)
    logged = trainer(callbacks=[per_image]).test(module, loaders, verbose=False)
    read = read_per_image(tmp_path)
    assert [(r["set"], r["scale"], r["image"]) for r in read] == [
        ("set", "2", "a"),
        ("set", "2", "b"),
        ("set", "2", "c"),
        ("other", "3", "a"),
        ("other", "3", "b"),
    ]
    flat = {k: v for entry in logged for k, v in entry.items()}
    for loader, set_name in (("set/x2", "set"), ("other/x3", "other")):
        for metric in ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim"):
            values = [r[metric] for r in read if r["set"] == set_name]
            assert math.isclose(np.mean(values), flat[f"test/{loader}/{metric}"], rel_tol=1e-6)
    # Independent oracle for one row: the Y-PSNR of the returned images.
    with torch.no_grad():
        sr = upsample(module.net, batches[1]["lr"], size=(20, 24))
    assert math.isclose(read[0]["psnr"], y_psnr(sr, batches[1]["hr"], shave=2), abs_tol=1e-4)


def test_the_module_records_its_network_and_name_but_not_how_it_is_tested(configs, tmp_path):
    net, optimizer, scheduler = configs
    module = SRModule(
        net=net,
        model_name="ipe_liif",
        optimizer=optimizer,
        scheduler=scheduler,
        test_sets=["a/x2"],
        budget=QueryBudget(max_queries=97, tile=8),
    )
    torch.save({"hyper_parameters": dict(module.hparams)}, tmp_path / "hparams.pt")
    loaded = torch.load(tmp_path / "hparams.pt", weights_only=True)["hyper_parameters"]
    assert loaded["model_name"] == "ipe_liif" and loaded["net"] == net
    assert not {"max_queries", "tile", "budget"} & set(loaded)
    assert module.budget == QueryBudget(max_queries=97, tile=8)


def test_a_loaded_network_is_tested_as_it_is(configs):
    from hydra.utils import instantiate

    network = instantiate(configs[0], _convert_="all")
    module = SRModule(net=network, test_sets=["a/x2"])
    assert module.net is network and module.hparams.net is None
