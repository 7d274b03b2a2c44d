"""mode=test evaluates our checkpoints and official LIIF checkpoints with the protocol metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from ipe_lightning.data.degrade import generate_lr
from ipe_lightning.inference import upsample
from ipe_lightning.metrics import psnr_per_image
from ipe_lightning.models import LIIF, Cell, EDSRBaseline, PlainMLP
from tests.support.runs import run_in_process, tiny_overrides


@pytest.mark.slow  # a few seconds of subprocesses; runs in make test-slow and CI
def test_mode_test_on_our_checkpoint_reproduces_the_training_runs_numbers(tiny_hr_dir, tmp_path):
    base = tiny_overrides(tiny_hr_dir, tmp_path / "cache")
    trained = run_in_process(base, tmp_path / "train")
    tested = run_in_process(
        [*base, "mode=test", f"ckpt_path={trained['checkpoints']['last']}"], tmp_path / "test"
    )
    assert tested["mode"] == "test" and tested["status"] == "finished"
    assert tested["metrics"].keys() == trained["metrics"].keys()
    for loader, values in trained["metrics"].items():
        for name, value in values.items():
            assert math.isclose(tested["metrics"][loader][name], value, abs_tol=1e-9), (
                loader,
                name,
            )


def _official_liif_checkpoint(net: LIIF) -> dict:
    """The LIIF code base's layout: {'model': {'name', 'args', 'sd'}}, MLP under `imnet.`."""
    sd = {}
    for key, value in net.state_dict().items():
        sd["imnet." + key.removeprefix("mlp.") if key.startswith("mlp.") else key] = value
    sd["encoder.sub_mean.weight"] = torch.eye(3).view(3, 3, 1, 1)  # unused mean shift
    sd["encoder.sub_mean.bias"] = torch.zeros(3)
    return {
        "model": {
            "name": "liif",
            "args": {
                "encoder_spec": {"name": "edsr-baseline", "args": {"no_upsampling": True}},
                "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [256] * 4}},
            },
            "sd": sd,
        }
    }


def test_mode_test_on_an_official_liif_checkpoint_scores_that_network(tiny_hr_dir, tmp_path):
    torch.manual_seed(0)
    net = LIIF(EDSRBaseline(), encoding=Cell(), mlp=PlainMLP).eval()
    path = tmp_path / "epoch-best.pth"
    torch.save(_official_liif_checkpoint(net), path)
    record = run_in_process(
        [*tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[3]"), "mode=test", f"ckpt_path={path}"],
        tmp_path / "test",
    )
    # Oracle: our own upsampling of each generated LR, scored on Y with shave 3.
    scores = []
    for file in sorted(tiny_hr_dir.glob("*.png")):
        hr_pixels = np.array(Image.open(file))
        lr_pixels, hr_crop = generate_lr(hr_pixels, 3)
        lr = torch.from_numpy(lr_pixels).permute(2, 0, 1)[None].float() / 255
        hr = torch.from_numpy(hr_crop).permute(2, 0, 1)[None].float() / 255
        sr = upsample(net, lr, size=hr.shape[-2:])
        scores.append(psnr_per_image(sr, hr, shave=3, channel="y").item())
    assert record["metrics"]["folder/x3"]["psnr"] == pytest.approx(np.mean(scores), abs=1e-6)
