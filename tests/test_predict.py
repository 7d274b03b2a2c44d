"""mode=predict: image files in, 8-bit PNGs out; bad inputs reported and skipped."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from ipe_lightning.inference import upsample
from ipe_lightning.models import LIIF, Cell, EDSRBaseline, PlainMLP
from tests.conftest import bundled_photo
from tests.support.runs import run_script

pytestmark = pytest.mark.slow


@pytest.fixture
def liif_checkpoint(tmp_path):
    """A small network saved in the official LIIF layout, and the network itself."""
    torch.manual_seed(0)
    encoder = EDSRBaseline(n_resblocks=1, n_feats=8)
    net = LIIF(encoder, encoding=Cell(), mlp=partial(PlainMLP, hidden=[16]))
    sd = {("imnet." + k[4:] if k.startswith("mlp.") else k): v for k, v in net.state_dict().items()}
    args = {
        "encoder_spec": {"name": "edsr-baseline", "args": {"n_resblocks": 1, "n_feats": 8}},
        "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [16]}},
    }
    path = tmp_path / "liif.pth"
    torch.save({"model": {"name": "liif", "args": args, "sd": sd}}, path)
    return path, net.eval()


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    photo = bundled_photo("coffee.png")[:30, :40]
    Image.fromarray(photo).save(folder / "rgb.png")
    Image.fromarray(photo).convert("RGBA").save(folder / "rgba.png")
    rotated = Image.fromarray(photo).convert("L")
    exif = rotated.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90° clockwise to display
    rotated.save(folder / "gray_rotated.jpg", exif=exif)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (folder / "notes.txt").write_text("not an image")
    return folder, photo


def predict(checkpoint, folder, out, *extra):
    overrides = [
        "mode=predict",
        f"ckpt_path={checkpoint}",
        f"predict.input={folder}",
        f"predict.output_dir={out}",
        *extra,
    ]
    return run_script("run.py", overrides, out.parent / "hydra")


def test_predict_writes_pngs_skips_unreadable_files_and_fails_at_the_end(
    liif_checkpoint, inputs, tmp_path
):
    checkpoint, net = liif_checkpoint
    folder, photo = inputs
    out = tmp_path / "out"
    result = predict(checkpoint, folder, out, "predict.scale=2.5")
    assert result.returncode != 0
    assert "broken.png" in result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "gray_rotated_x2.5.png",
        "rgb_x2.5.png",
        "rgba_x2.5.png",
    ]
    rgb = np.array(Image.open(out / "rgb_x2.5.png"))
    assert rgb.shape == (75, 100, 3) and rgb.dtype == np.uint8
    image = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    expected = upsample(net, image, scale=2.5)[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(rgb.astype(float) - expected).max() <= 0.5 + 1e-3  # only the 8-bit rounding
    assert np.array_equal(np.array(Image.open(out / "rgba_x2.5.png")), rgb)  # alpha dropped
    gray = np.array(Image.open(out / "gray_rotated_x2.5.png"))
    assert gray.shape == (100, 75, 3)  # EXIF orientation applied before upsampling


def test_existing_outputs_are_kept_unless_overwrite(liif_checkpoint, inputs, tmp_path):
    checkpoint, _ = liif_checkpoint
    folder, _ = inputs
    (folder / "broken.png").unlink()
    out = tmp_path / "out"
    first = predict(checkpoint, folder, out, "predict.scale=[2,3]")
    assert first.returncode == 0, first.stderr[-2000:]
    target = out / "rgb_x2x3.png"
    assert np.array(Image.open(target)).shape == (60, 120, 3)
    target.write_bytes(b"sentinel")
    kept = predict(checkpoint, folder, out, "predict.scale=[2,3]")
    assert kept.returncode == 0 and target.read_bytes() == b"sentinel"
    assert "overwrite=true" in kept.stdout
    replaced = predict(checkpoint, folder, out, "predict.scale=[2,3]", "predict.overwrite=true")
    assert replaced.returncode == 0 and target.read_bytes() != b"sentinel"


def test_predict_to_a_size(liif_checkpoint, inputs, tmp_path):
    checkpoint, _ = liif_checkpoint
    folder, _ = inputs
    single = folder / "rgb.png"
    out = tmp_path / "out"
    result = predict(checkpoint, single, out, "predict.size=[64,50]")
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.array(Image.open(out / "rgb_64x50.png")).shape == (64, 50, 3)
