"""``python -m ipe_lightning.data.make_lr``: DIV2K's LR layout, MATLAB's pixels, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from ipe_lightning.data.degrade import resize_bicubic
from ipe_lightning.data.make_lr import main, modcrop
from ipe_lightning.data.matlab_resize import imresize_matlab_uint8

REPO = Path(__file__).resolve().parents[2]


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "ipe_lightning.data.make_lr", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


@pytest.fixture
def hr_folder(tmp_path: Path) -> Path:
    """Two small HR PNGs: 26x37 (divisible by neither 3 nor 4) and 24x24."""
    photo = skimage.data.astronaut()
    folder = tmp_path / "HR"
    folder.mkdir()
    Image.fromarray(photo[100:126, 200:237]).save(folder / "0001.png")
    Image.fromarray(photo[300:324, 100:124]).save(folder / "0002.png")
    return folder


def matlab_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    chw = torch.tensor(hr).permute(2, 0, 1)
    return imresize_matlab_uint8(chw, 1 / scale).permute(1, 2, 0).numpy()


def test_writes_div2k_layout_with_matlab_pixels_of_the_modcropped_hr(hr_folder, tmp_path):
    dst = tmp_path / "LR"
    assert main([str(hr_folder), str(dst), "--scales", "2", "3", "4"]) == 0
    written = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.png"))
    assert written == [f"X{s}/000{i}x{s}.png" for s in (2, 3, 4) for i in (1, 2)]
    for name in ("0001", "0002"):
        hr = np.asarray(Image.open(hr_folder / f"{name}.png"))
        for scale in (2, 3, 4):
            lr = np.asarray(Image.open(dst / f"X{scale}" / f"{name}x{scale}.png"))
            assert lr.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3)
            np.testing.assert_array_equal(lr, matlab_lr(modcrop(hr, scale), scale))


def test_pillow_method_uses_the_protocol_pillow_bicubic(hr_folder, tmp_path):
    assert main([str(hr_folder), str(tmp_path / "LR"), "--scales", "3", "--method", "pillow"]) == 0
    hr = np.asarray(Image.open(hr_folder / "0001.png"))
    lr = np.asarray(Image.open(tmp_path / "LR" / "X3" / "0001x3.png"))
    np.testing.assert_array_equal(lr, resize_bicubic(hr[:24, :36], (8, 12)))


def test_modcrop_drops_the_last_rows_and_columns():
    hr = np.arange(7 * 10).reshape(7, 10)
    np.testing.assert_array_equal(modcrop(hr, 3), hr[:6, :9])


@pytest.mark.parametrize(
    ("scales", "message"),
    [(["1"], "integer >= 2"), (["2.5"], "integer >= 2"), (["x"], "integer >= 2")],
)
def test_a_bad_scale_is_one_line_and_exit_2(hr_folder, tmp_path, capsys, scales, message):
    assert main([str(hr_folder), str(tmp_path / "LR"), "--scales", *scales]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_a_missing_src_is_one_line_and_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "absent"), str(tmp_path / "LR")]) == 2
    error = capsys.readouterr().err.strip()
    assert "SRC is not a folder" in error and len(error.splitlines()) == 1


def test_an_unreadable_image_is_one_line_and_exit_2_without_traceback(hr_folder, tmp_path):
    (hr_folder / "0003.png").write_bytes(b"not a png")
    done = run_module(str(hr_folder), str(tmp_path / "LR"), "--scales", "2")
    assert done.returncode == 2
    error = done.stderr.strip()
    assert "0003.png" in error and "Traceback" not in error and len(error.splitlines()) == 1


@pytest.mark.parametrize("module", ["ipe_lightning.data.make_lr", "ipe_lightning.data.tiny_tree"])
def test_the_data_commands_load_without_lightning(module):
    code = f"import sys, {module}; print('pytorch_lightning' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.stdout.strip() == "False", done.stderr


def test_make_lr_and_matlab_resize_import_nothing_beyond_numpy_torch_pillow_and_data():
    import ast

    allowed = {"__future__", "argparse", "sys", "math", "numbers", "collections.abc", "pathlib"}
    allowed |= {"numpy", "torch", "PIL"}
    allowed |= {f"ipe_lightning.data.{name}" for name in ("degrade", "images", "matlab_resize")}
    for name in ("make_lr.py", "matlab_resize.py"):
        tree = ast.parse((REPO / "ipe_lightning" / "data" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = (
                    [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                )
                assert set(modules) <= allowed, (name, modules)
