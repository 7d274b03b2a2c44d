"""The GPU paths: the decoders, metrics, training with bf16 mixed precision, the compiled training
step and the deferred NaN check, and bf16 prediction.

Skipped without CUDA (CI has none); run them on a GPU machine with ``pytest -m gpu tests/gpu``.
"""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ipe_lightning.configs import plain
from ipe_lightning.inference import upsample
from ipe_lightning.metrics import psnr_per_image, ssim_per_image
from ipe_lightning.models import (
    IPE,
    LIIF,
    PE,
    Cell,
    EDSRBaseline,
    MetaSR,
    NoEncoding,
    PlainMLP,
    SkipMLP,
)
from ipe_lightning.models.decoders import FastDecoder, NaiveDecoder
from ipe_lightning.module import NonFiniteLossError, SRModule
from ipe_lightning.runtime.nonfinite import NonFiniteLossGuard
from tests.support.runs import compose_config, read_record, run_script, tiny_overrides

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _exact_fp32():
    """No TF32: fp32 on the GPU then agrees with the CPU to rounding."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


ENCODINGS = {"ipe": IPE(10), "pe": PE(10), "cell": Cell(), "none": NoEncoding()}
MLPS = {"skip": SkipMLP, "plain": PlainMLP}
DECODERS = {"fast": FastDecoder, "naive": NaiveDecoder}


def liif(impl: str, encoding: str = "ipe", mlp: str = "skip", seed: int = 0) -> LIIF:
    torch.manual_seed(seed)
    return LIIF(
        EDSRBaseline(n_resblocks=2),
        encoding=ENCODINGS[encoding],
        mlp=MLPS[mlp],
        decoder=DECODERS[impl],
    )


def batch(seed: int = 0, size: int = 20, queries: int = 300):
    generator = torch.Generator().manual_seed(seed)
    lr = torch.rand(2, 3, size, size, generator=generator) * 2 - 1
    coord = torch.rand(2, queries, 2, generator=generator) * 2 - 1
    cell = torch.full((2, queries, 2), 2 / (3 * size))
    return lr, coord, cell


@pytest.mark.parametrize(
    "encoding, mlp", [("ipe", "skip"), ("pe", "plain"), ("cell", "plain"), ("none", "plain")]
)
def test_fast_decoder_on_cuda_matches_the_naive_one_and_the_cpu(encoding, mlp):
    lr, coord, cell = batch()
    outputs = {}
    for device in ("cpu", "cuda"):
        for impl in ("naive", "fast"):
            net = liif(impl, encoding, mlp).to(device)
            args = [t.to(device) for t in (lr, coord, cell)]
            out = net(*args)
            out.square().sum().backward()
            grad = next(net.encoder.parameters()).grad
            outputs[device, impl] = out.detach().cpu().double(), grad.cpu().double()
    reference_out, reference_grad = outputs["cpu", "naive"]
    for key, (out, grad) in outputs.items():
        assert torch.allclose(out, reference_out, atol=1e-4, rtol=1e-4), key
        assert torch.allclose(grad, reference_grad, atol=1e-3, rtol=1e-3), key


def test_bf16_autocast_decoding_stays_close_to_fp32():
    net = liif("fast").to(CUDA).eval()
    image = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(1)).to(CUDA)
    with torch.no_grad():
        full = upsample(net, image * 2 - 1, scale=3.0)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            half = upsample(net, image * 2 - 1, scale=3.0)
    assert half.shape == full.shape == (1, 3, 120, 144)
    assert torch.isfinite(half.float()).all()
    # bf16 keeps 8 bits of mantissa: far from exact, far closer than any two SR methods differ.
    gap = psnr_per_image(
        (half.float() / 2 + 0.5).clamp(0, 1), (full / 2 + 0.5).clamp(0, 1), shave=0, channel="rgb"
    )
    assert gap.item() > 35, gap


def test_metasr_runs_on_cuda_like_on_the_cpu():
    torch.manual_seed(0)
    net = MetaSR(EDSRBaseline(n_resblocks=2), encoding=IPE(4))
    lr, coord, cell = batch(queries=100)
    expected = net(lr, coord, cell)
    got = net.to(CUDA)(lr.to(CUDA), coord.to(CUDA), cell.to(CUDA)).cpu()
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_metrics_on_cuda_equal_the_cpu_values():
    generator = torch.Generator().manual_seed(2)
    hr = torch.rand(3, 3, 40, 40, generator=generator)
    sr = (hr + 0.05 * torch.randn(3, 3, 40, 40, generator=generator)).clamp(0, 1)
    for metric in (psnr_per_image, ssim_per_image):
        for channel in ("rgb", "y"):
            cpu = metric(sr, hr, shave=4, channel=channel)
            gpu = metric(sr.to(CUDA), hr.to(CUDA), shave=4, channel=channel).cpu()
            assert torch.allclose(gpu, cpu, atol=1e-5), (metric.__name__, channel)


def test_run_py_trains_with_bf16_mixed_on_the_gpu_and_its_checkpoint_loads_on_cpu(
    tiny_hr_dir, tmp_path
):
    """trainer=gpu with bf16-mixed: the loss stays finite, the test pass reports PSNR near the
    fp32 CPU run's, and the bicubic baseline (never autocast) equals the CPU's to rounding."""
    common = tiny_overrides(tiny_hr_dir, tmp_path / "cache")
    runs = {
        "cpu": ["trainer=cpu"],
        "gpu": ["trainer=gpu", "trainer.precision=bf16-mixed"],
    }
    records = {}
    for name, extra in runs.items():
        out = tmp_path / name
        result = run_script("run.py", [*common, *extra], out, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        records[name] = read_record(out)
        assert records[name]["status"] == "finished"
    for key, cpu in records["cpu"]["metrics"].items():
        gpu = records["gpu"]["metrics"][key]
        assert np.isfinite(gpu["psnr"]) and np.isfinite(gpu["ssim"]), key
        assert gpu["bicubic_psnr"] == pytest.approx(cpu["bicubic_psnr"], abs=1e-3), key
        assert gpu["psnr"] == pytest.approx(cpu["psnr"], abs=1.0), key
    last = records["gpu"]["checkpoints"]["last"]
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    assert all(t.device.type == "cpu" for t in checkpoint["state_dict"].values())


def test_predict_in_bf16_on_the_gpu_is_close_to_fp32(tiny_hr_dir, tmp_path):
    train_out = tmp_path / "train"
    result = run_script(
        "run.py", [*tiny_overrides(tiny_hr_dir, tmp_path / "cache"), "trainer=gpu"], train_out
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = read_record(train_out)["checkpoints"]["last"]
    images = {}
    for precision in ("32", "bf16"):
        out = tmp_path / f"pred_{precision}"
        overrides = [
            "mode=predict",
            f"ckpt_path={checkpoint}",
            f"predict.input={tiny_hr_dir}",
            f"predict.output_dir={out}",
            "predict.scale=2.5",
            "predict.device=cuda",
            f"predict.precision={precision}",
        ]
        result = run_script("run.py", overrides, tmp_path / f"hydra_{precision}")
        assert result.returncode == 0, result.stderr[-3000:]
        images[precision] = sorted(out.glob("*.png"))
        assert len(images[precision]) == 3
    for full, half in zip(images["32"], images["bf16"], strict=True):
        a = torch.from_numpy(np.asarray(Image.open(full), dtype=np.float32) / 255)
        b = torch.from_numpy(np.asarray(Image.open(half), dtype=np.float32) / 255)
        assert a.shape == b.shape == (180, 200, 3)
        gap = psnr_per_image(
            b.permute(2, 0, 1)[None], a.permute(2, 0, 1)[None], shave=0, channel="rgb"
        )
        assert gap.item() > 35, (full.name, gap)


SGD = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}  # tests/test_compiled_step.py


def sr_module(**kwargs) -> SRModule:
    cfg = compose_config(["model.net.encoder.n_resblocks=1", "model.net.encoder.n_feats=8"])
    torch.manual_seed(0)
    return SRModule(net=plain(cfg.model.net), scheduler=plain(cfg.scheduler), **kwargs)


def sr_batches(steps: int, queries: int = 50) -> DataLoader:
    batches = []
    for seed in range(steps):
        lr, coord, cell = batch(seed, size=8, queries=queries)
        gt = torch.rand(2, queries, 3, generator=torch.Generator().manual_seed(seed))
        batches.append({"lr": (lr + 1) / 2, "coord": coord, "cell": cell, "gt": gt})
    return DataLoader(batches, batch_size=None)


def fit_on_gpu(module: SRModule, steps: int, **kwargs) -> pl.Trainer:
    trainer = pl.Trainer(
        accelerator="gpu",
        devices=1,
        max_steps=steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )
    trainer.fit(module, sr_batches(steps))
    return trainer


class Losses(pl.Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.values.append(outputs["loss"].item())


def test_the_compiled_step_with_cuda_graphs_trains_as_the_eager_one():
    """compile=reduce-overhead (Inductor's kernels, replayed as CUDA graphs) under Lightning:
    3 SGD steps give the eager losses and weights (no TF32: both are fp32 to rounding)."""
    runs = {}
    for setting in (None, "reduce-overhead"):
        torch._dynamo.reset()
        module, losses = sr_module(optimizer=SGD, compile=setting), Losses()
        fit_on_gpu(module, 3, callbacks=[losses])
        runs[setting] = losses.values, {k: v.cpu() for k, v in module.net.state_dict().items()}
    (eager_losses, eager), (losses, compiled) = runs[None], runs["reduce-overhead"]
    assert losses == pytest.approx(eager_losses, rel=1e-5)
    assert compiled.keys() == eager.keys()
    for name, value in compiled.items():
        torch.testing.assert_close(value, eager[name], rtol=0, atol=1e-5, msg=name)


def test_a_nan_loss_on_the_gpu_is_read_at_the_next_log_step_and_named():
    class PoisonAtStep1(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == 1:
                with torch.no_grad():
                    next(pl_module.parameters()).fill_(float("nan"))

    module = sr_module(optimizer=SGD)
    with pytest.raises(NonFiniteLossError, match="at step 1 "):
        fit_on_gpu(
            module, 6, log_every_n_steps=4, callbacks=[PoisonAtStep1(), NonFiniteLossGuard()]
        )
    assert module.trainer.global_step == 3  # read with the fourth step's log, not at step 1
