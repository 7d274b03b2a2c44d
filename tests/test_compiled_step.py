"""The GPU-friendly training step on the CPU: a compiled step gives the eager step's losses and
weights and its checkpoint is the eager network's; fused Adam gives the default Adam's weights; a
NaN loss read late (as on a GPU) still stops training naming its step, before any checkpoint."""

from __future__ import annotations

import shutil

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from ipe_lightning.errors import SettingError
from ipe_lightning.module import SRModule, compile_options
from ipe_lightning.runtime.nonfinite import NonFiniteLossError, NonFiniteLossGuard
from tests.support.modules import make_module, module_configs, sampled_batch
from tests.support.modules import trainer as quiet_trainer

STEPS = 3
# A compiled step runs the eager step's float32 arithmetic in another order (Inductor fuses
# kernels and reorders sums). Measured here over 3 SGD steps: losses 1.2e-7 apart (relative, one
# ulp), weights (|w| < 0.5) 1.5e-8; fused Adam's weights 2.2e-8 from the default Adam's (a few
# ulps). The tolerances leave margins of 8x (losses) and 45x (weights).
LOSS_RTOL = 1e-6
WEIGHT_ATOL = 1e-6
# Compiled steps are compared under SGD, whose update is the gradient itself (lr 0.1: the weights
# move by up to 5e-3 in 3 steps). Adam divides each gradient by its running size, so a gradient
# that is zero up to rounding (terms that cancel) becomes a step of +-lr whose sign is rounding
# noise: with Adam the inductor-compiled weights were 1.2e-4 from the eager ones after 3 steps, a
# property of Adam, not of the compiled step.
SGD = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}


@pytest.fixture(scope="module")
def configs():
    """The default network (IPE-LIIF, encoder shrunk) and the embedded schedule."""
    return module_configs()


class Losses(pl.Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.values.append(outputs["loss"].item())


def trainer(guard: NonFiniteLossGuard | None = None, **kwargs) -> pl.Trainer:
    """A quiet trainer with the non-finite loss guard of the default callbacks (``guard``)."""
    callbacks = [*kwargs.pop("callbacks", []), guard or NonFiniteLossGuard()]
    return quiet_trainer(limit_val_batches=0, callbacks=callbacks, **kwargs)


def train(module: SRModule, steps: int = STEPS, **kwargs) -> list[float]:
    """The losses of ``steps`` optimiser steps on fixed batches."""
    losses = Losses()
    loader = DataLoader([sampled_batch(seed) for seed in range(steps)], batch_size=None)
    callbacks = [losses, *kwargs.pop("callbacks", [])]
    trainer(max_steps=steps, callbacks=callbacks, **kwargs).fit(module, loader)
    return losses.values


def assert_same_training(eager: SRModule, eager_losses, other: SRModule, other_losses) -> None:
    assert other_losses == pytest.approx(eager_losses, rel=LOSS_RTOL)
    reference = eager.net.state_dict()
    weights = other.net.state_dict()
    assert weights.keys() == reference.keys()
    for name, value in weights.items():
        torch.testing.assert_close(value, reference[name], rtol=0, atol=WEIGHT_ATOL, msg=name)


@pytest.fixture(scope="module")
def eager_run(configs):
    module = make_module(configs)
    return module, train(module)


@pytest.fixture(scope="module")
def eager_sgd_run(configs):
    module = make_module(configs, optimizer=SGD)
    return module, train(module)


def test_compile_settings_name_eager_a_mode_or_torch_compile_keywords():
    assert compile_options(None) is None and compile_options(False) is None
    assert compile_options(True) == {}
    assert compile_options("reduce-overhead") == {"mode": "reduce-overhead"}
    assert compile_options({"backend": "aot_eager"}) == {"backend": "aot_eager"}
    with pytest.raises(SettingError, match="compile='fast'"):
        compile_options("fast")


def test_the_compiled_loss_traces_the_step_and_trains_as_eager_does(
    configs, eager_sgd_run, tmp_path
):
    """Dynamo and AOTAutograd (the ``aot_eager`` backend: no C++ compiler) trace the training loss;
    the run's checkpoint holds the eager network, with plain hyperparameters."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    module = make_module(configs, optimizer=SGD, compile={"backend": "aot_eager"})
    checkpoints = ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=0)
    losses = train(module, callbacks=[checkpoints], enable_checkpointing=True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert_same_training(*eager_sgd_run, module, losses)

    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert saved["hyper_parameters"]["compile"] == {"backend": "aot_eager"}
    assert saved["state_dict"].keys() == eager_sgd_run[0].state_dict().keys()
    eager = make_module(configs)
    eager.load_state_dict(saved["state_dict"])
    for name, value in eager.net.state_dict().items():
        torch.testing.assert_close(value, module.net.state_dict()[name], rtol=0, atol=0)


@pytest.fixture(scope="module")
def inductor():
    """Skip when Inductor cannot build CPU kernels here (it needs a C++ compiler)."""
    if not any(shutil.which(name) for name in ("g++", "c++", "clang++")):
        pytest.skip("torch.compile's CPU backend needs a C++ compiler (g++ or clang++)")
    try:
        torch.compile(lambda x: x * 2 + 1)(torch.ones(4))
    except Exception as error:  # any failure of the toolchain: skip, saying which
        pytest.skip(f"torch._inductor cannot compile here: {type(error).__name__}: {error}")


@pytest.mark.slow
def test_the_inductor_compiled_step_gives_the_eager_losses_and_weights(
    configs, eager_sgd_run, inductor
):
    torch._dynamo.reset()
    module = make_module(configs, optimizer=SGD, compile="default")
    assert_same_training(*eager_sgd_run, module, train(module))


def _fused(optimizer: dict) -> dict:
    return {**optimizer, "fused": True}


def test_fused_adam_on_the_cpu_gives_the_default_adams_weights(configs, eager_run):
    try:
        torch.optim.Adam([torch.zeros(1, requires_grad=True)], fused=True)
    except RuntimeError as error:
        pytest.skip(f"this torch has no fused Adam on the CPU: {error}")
    module = make_module(configs, optimizer=_fused(configs[1]))
    losses = train(module)
    assert module.trainer.optimizers[0].param_groups[0]["fused"] is True
    assert_same_training(*eager_run, module, losses)


class PoisonAtStep(pl.Callback):
    """NaN weights from the start of training step ``step`` (its loss is the first NaN)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


def test_a_nan_loss_read_late_as_on_a_gpu_names_its_step(configs):
    module = make_module(configs)
    as_on_a_gpu = NonFiniteLossGuard(losses_read_each_step_on=())
    fit = trainer(as_on_a_gpu, max_steps=6, log_every_n_steps=4, callbacks=[PoisonAtStep(1)])
    loader = DataLoader([sampled_batch(seed) for seed in range(6)], batch_size=None)
    with pytest.raises(NonFiniteLossError, match="at step 1 "):
        fit.fit(module, loader)
    assert fit.global_step == 3  # read at the fourth step, with the loss of the fourth log


def test_a_nan_loss_read_late_stops_training_before_the_next_checkpoint(configs, tmp_path):
    module = make_module(configs)
    every_step = ModelCheckpoint(
        dirpath=tmp_path, save_last=True, save_top_k=0, every_n_train_steps=1
    )
    with pytest.raises(NonFiniteLossError, match="at step 1 "):
        train(
            module,
            steps=6,
            log_every_n_steps=50,
            callbacks=[PoisonAtStep(1), every_step],
            enable_checkpointing=True,
            guard=NonFiniteLossGuard(losses_read_each_step_on=()),
        )
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 1
    assert all(torch.isfinite(value).all() for value in saved["state_dict"].values())


class PoisonAfterStep(pl.Callback):
    """NaN weights after step ``step``'s update, as another rank's NaN gradient would make them."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step + 1:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


def test_non_finite_weights_are_never_saved_even_after_finite_losses(configs, tmp_path):
    module = make_module(configs)
    every_step = ModelCheckpoint(
        dirpath=tmp_path, save_last=True, save_top_k=0, every_n_train_steps=1
    )
    with pytest.raises(NonFiniteLossError, match="weights are not finite at step 2 "):
        train(
            module, steps=4, callbacks=[PoisonAfterStep(1), every_step], enable_checkpointing=True
        )
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 1
