"""EDSR-PyTorch's published weights (edsr_baseline_x2-1bc95232.pt, ...) load and upsample exactly.

The files are built here in the official layout (github sanghyun-son/EDSR-PyTorch, src/model/edsr.py
and common.py) with random values. Oracle: EDSR-PyTorch's forward written out with
``torch.nn.functional`` on those tensors: ``sub_mean`` → head → body + skip → tail → ``add_mean``
on pixel values in [0, 255].
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ipe_lightning.errors import UserError
from ipe_lightning.inference import upsample
from ipe_lightning.models import edsr_pytorch, load_network, read_checkpoint
from ipe_lightning.models.fixed_scale import EDSRPyTorch

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)  # EDSR-PyTorch common.MeanShift's default rgb_mean


def official_state(scale: int, blocks: int = 16, feats: int = 64, seed: int = 0) -> dict:
    """An EDSR-PyTorch state dict with random weights: mean shifts as MeanShift(255) makes them."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}

    def conv(prefix: str, c_in: int, c_out: int, gain: float = 1.0) -> None:
        std = gain * (c_in * 9) ** -0.5
        state[f"{prefix}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=generator) * std
        state[f"{prefix}.bias"] = torch.randn(c_out, generator=generator) * 0.1

    for name, sign in (("sub_mean", -1), ("add_mean", 1)):
        state[f"{name}.weight"] = torch.eye(3).view(3, 3, 1, 1)
        state[f"{name}.bias"] = sign * 255 * torch.tensor(DIV2K_MEAN)
    conv("head.0", 3, feats)
    for i in range(blocks):
        conv(f"body.{i}.body.0", feats, feats)
        conv(f"body.{i}.body.2", feats, feats)
    conv(f"body.{blocks}", feats, feats)
    stages = [3] if scale == 3 else [2] * (scale // 2)
    for i, r in enumerate(stages):
        conv(f"tail.0.{2 * i}", feats, r * r * feats)
    conv("tail.1", feats, 3, gain=0.02)  # the output stays near the mean: few pixels clamp
    return state


def edsr_forward(state: dict, image: torch.Tensor, res_scale: float = 1.0) -> torch.Tensor:
    """EDSR-PyTorch's ``EDSR.forward`` on ``image`` in [0, 1], returned in [0, 1] (clamped)."""

    def conv(x: torch.Tensor, prefix: str) -> torch.Tensor:
        weight = state[f"{prefix}.weight"].to(x.dtype)
        return F.conv2d(
            x, weight, state[f"{prefix}.bias"].to(x.dtype), padding=weight.shape[-1] // 2
        )

    x = conv(image * 255, "sub_mean")
    x = conv(x, "head.0")
    res = x
    blocks = sum(1 for key in state if key.endswith(".body.0.weight"))
    for i in range(blocks):
        res = res + res_scale * conv(F.relu(conv(res, f"body.{i}.body.0")), f"body.{i}.body.2")
    res = conv(res, f"body.{blocks}") + x
    stage = 0
    while f"tail.0.{stage}.weight" in state:
        res = conv(res, f"tail.0.{stage}")
        r = round((res.shape[1] / state["head.0.weight"].shape[0]) ** 0.5)
        res = F.pixel_shuffle(res, r)
        stage += 2
    x = conv(conv(res, "tail.1"), "add_mean")
    return (x / 255).clamp(0, 1)


def image(height: int = 6, width: int = 7) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    return torch.rand(1, 3, height, width, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_official_weights_upsample_as_edsr_pytorch(scale, tmp_path):
    state = official_state(scale, seed=scale)
    path = tmp_path / f"edsr_baseline_x{scale}-1bc95232.pt"
    torch.save(state, path)
    net, info = load_network(path)
    assert isinstance(net, EDSRPyTorch) and net.scale == scale
    assert info.model_name == f"edsr_baseline_x{scale}" and info.config["scale"] == scale
    lr = image()
    expected = edsr_forward(state, lr)
    clamped = ((expected == 0) | (expected == 1)).double().mean()
    assert clamped < 0.01  # the comparison is of values, not of a clamped image
    net = net.double()
    assert torch.allclose(upsample(net, lr, scale=scale), expected, atol=1e-10)
    assert torch.allclose(upsample(net, lr, scale=scale, tile=2), expected, atol=1e-10)


def test_a_full_edsrs_res_scale_is_kept(tmp_path, monkeypatch):
    """EDSR (32 x 256) scales each block's residual by 0.1: shown on a small body given that rule
    (a 32 x 256 forward takes seconds; the next test reads those shapes)."""
    monkeypatch.setitem(edsr_pytorch.RES_SCALES, (3, 8), 0.1)
    state = official_state(2, blocks=3, feats=8)
    torch.save(state, tmp_path / "small.pt")
    net, info = load_network(tmp_path / "small.pt")
    lr = image()
    expected = edsr_forward(state, lr, res_scale=0.1)
    assert not torch.allclose(expected, edsr_forward(state, lr, res_scale=1.0), atol=1e-3)
    assert torch.allclose(upsample(net.double(), lr, scale=2), expected, atol=1e-10)
    assert info.model_name == "edsr_x2"


def full_edsr_shapes(path) -> None:
    """An EDSR x2 file (32 blocks x 256 features) whose tensors are views of one number each."""
    shapes = {}
    for name in ("sub_mean", "add_mean"):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (3, 3, 1, 1), (3,)
    shapes["head.0.weight"], shapes["head.0.bias"] = (256, 3, 3, 3), (256,)
    for i in range(32):
        for j in (0, 2):
            shapes[f"body.{i}.body.{j}.weight"] = (256, 256, 3, 3)
            shapes[f"body.{i}.body.{j}.bias"] = (256,)
    shapes["body.32.weight"], shapes["body.32.bias"] = (256, 256, 3, 3), (256,)
    shapes["tail.0.0.weight"], shapes["tail.0.0.bias"] = (1024, 256, 3, 3), (1024,)
    shapes["tail.1.weight"], shapes["tail.1.bias"] = (3, 256, 3, 3), (3,)
    torch.save({key: torch.ones(1).expand(*shape) for key, shape in shapes.items()}, path)


def test_a_full_edsr_file_reads_as_edsr_with_its_res_scale(tmp_path):
    full_edsr_shapes(tmp_path / "edsr_x2-0edfb8a3.pt")
    config, state = read_checkpoint(tmp_path / "edsr_x2-0edfb8a3.pt")
    assert config["n_resblocks"] == 32 and config["n_feats"] == 256 and config["scale"] == 2
    assert float(state["encoder.body.5.body.2.bias"][0]) == pytest.approx(0.1)  # folded
    assert float(state["encoder.body.5.body.0.bias"][0]) == 1.0
    assert float(state["encoder.body.32.bias"][0]) == 1.0  # the body's last conv: no res_scale


def refusal(tmp_path, state: dict) -> str:
    path = tmp_path / "weights.pt"
    torch.save(state, path)
    with pytest.raises(UserError) as error:
        load_network(path)
    message = str(error.value)
    assert message.startswith(f"cannot load {str(path)!r} as EDSR-PyTorch weights: ")
    assert "\n" not in message
    return message


def test_missing_keys_are_named(tmp_path):
    state = official_state(2)
    del state["body.3.body.0.weight"], state["add_mean.bias"]
    message = refusal(tmp_path, state)
    assert "missing add_mean.bias, encoder.body.3.body.0.weight" in message
    state = official_state(2)
    del state["tail.0.0.weight"]
    assert "missing key 'tail.0.0.weight'" in refusal(tmp_path, state)


@pytest.mark.parametrize(
    ("tail", "says"),
    [
        ({"tail.0.0.weight": torch.zeros(1024, 64, 3, 3)}, "1024 output channels"),
        ({f"tail.0.{i}.weight": torch.zeros(256, 64, 3, 3) for i in (0, 2, 4)}, "x8"),
    ],
)
def test_another_scales_tail_is_refused(tail, says, tmp_path):
    state = {**official_state(2), **tail}
    assert says in refusal(tmp_path, state)


def test_other_sizes_and_shapes_are_refused(tmp_path):
    message = refusal(tmp_path, official_state(2, blocks=3, feats=8))
    assert "3 residual blocks of 8 features is neither EDSR-baseline" in message
    state = official_state(2)
    state["body.1.body.2.weight"] = torch.zeros(64, 64, 1, 1)
    assert "body.1.body.2.weight has shape (64, 64, 1, 1)" in refusal(tmp_path, state)


def test_a_test_job_runs_the_official_file_named_by_its_model(tmp_path):
    from ipe_lightning.tasks import checkpoint_network
    from tests.support.runs import compose_config

    path = tmp_path / "edsr_baseline_x3-abf2a44e.pt"
    torch.save(official_state(3), path)
    network, name = checkpoint_network(compose_config(["mode=test", f"ckpt_path={path}"], tmp_path))
    assert isinstance(network, EDSRPyTorch) and network.scale == 3 and name == "edsr_baseline_x3"


@pytest.mark.slow  # a tiny test job
def test_mode_test_evaluates_the_official_file_at_its_scale(tiny_hr_dir, tmp_path):
    from tests.support.runs import run_in_process, tiny_overrides

    path = tmp_path / "edsr_baseline_x2-1bc95232.pt"
    torch.save(official_state(2), path)
    overrides = [*tiny_overrides(tiny_hr_dir, tmp_path / "cache", "[2]"), "mode=test"]
    record = run_in_process([*overrides, f"ckpt_path={path}"], tmp_path / "test")
    assert record["status"] == "finished" and record["model"] == "edsr_baseline_x2"
    assert set(record["metrics"]) == {"folder/x2"}
