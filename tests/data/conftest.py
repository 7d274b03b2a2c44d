"""Fixtures for the data tests: tiny images and folders in the real layouts (docs/method.md §5)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image


def save_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def _paeth(left: np.ndarray, up: np.ndarray, up_left: np.ndarray) -> np.ndarray:
    estimate = left + up - up_left
    dist_left, dist_up, dist_up_left = (np.abs(estimate - v) for v in (left, up, up_left))
    return np.where(
        (dist_left <= dist_up) & (dist_left <= dist_up_left),
        left,
        np.where(dist_up <= dist_up_left, up, up_left),
    )


def write_png16(path: Path, samples: np.ndarray) -> Path:
    """A 16-bit PNG written byte by byte (no Pillow): gray, gray+alpha, RGB or RGBA.

    Rows cycle through the five PNG filter types (none, Sub, Up, Average, Paeth), so a decoder
    that unfilters with the wrong bytes-per-pixel gives wrong samples.
    """
    if samples.ndim == 2:
        samples = samples[..., None]
    height, width, channels = samples.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    bpp = 2 * channels
    raw = samples.astype(">u2").view(np.uint8).reshape(height, width * bpp).astype(np.int32)
    filtered_rows = []
    for i in range(height):
        row = raw[i]
        up = raw[i - 1] if i > 0 else np.zeros_like(row)
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        up_left = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
        kind = i % 5
        predictor = [
            np.zeros_like(row),
            left,
            up,
            (left + up) // 2,
            _paeth(left, up, up_left),
        ][kind]
        filtered_rows.append(bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes())

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(filtered_rows)))
        + chunk(b"IEND", b"")
    )
    return path


def random_rgb(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth-plus-noise RGB uint8, so bicubic resizing has something to do."""
    ys, xs = np.mgrid[0:height, 0:width]
    base = 128 + 60 * np.sin(ys[..., None] / 5.0 + np.arange(3)) * np.cos(xs[..., None] / 7.0)
    return np.clip(base + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)


def position_coded(height: int, width: int) -> np.ndarray:
    """RGB uint8 whose pixel (r, c) is (r, c, 0) for r, c < 256: a value names its position."""
    assert height <= 256 and width <= 256
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows, cols, np.full_like(rows, 77)], axis=-1).astype(np.uint8)


def save_truncated_png(path: Path, pixels: np.ndarray) -> Path:
    """A PNG cut in the middle of its pixel data: its header opens, decoding it fails."""
    save_png(path, pixels)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def make() -> SimpleNamespace:
    """The image helpers above, as a fixture (test modules cannot import a conftest reliably)."""
    return SimpleNamespace(
        save_png=save_png,
        save_truncated_png=save_truncated_png,
        write_png16=write_png16,
        random_rgb=random_rgb,
        position_coded=position_coded,
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def data_root(tmp_path: Path, rng: np.random.Generator) -> Path:
    """``<root>/DIV2K`` and ``<root>/benchmark/{Set5,Set14,B100,Urban100}`` with paired LR files.

    HR sizes are odd on purpose (LR = HR // s drops a row or column), and the LR files are Pillow
    bicubic of the HR cropped to LR·s, as in the distributed sets.
    """
    root = tmp_path / "datasets"
    sizes = [(70, 66), (67, 75), (64, 64)]

    def hr_and_lr(hr_dir: Path, lr_root: Path, names: list[str]) -> None:
        for name, (h, w) in zip(names, sizes * 3, strict=False):
            hr = random_rgb(rng, h, w)
            save_png(hr_dir / f"{name}.png", hr)
            for s in (2, 3, 4):
                crop = hr[: h // s * s, : w // s * s]
                lr = Image.fromarray(crop).resize((w // s, h // s), Image.Resampling.BICUBIC)
                save_png(lr_root / f"X{s}" / f"{name}x{s}.png", np.asarray(lr))

    for name, (h, w) in zip(["0001", "0002", "0003"], sizes, strict=True):
        save_png(root / "DIV2K" / "DIV2K_train_HR" / f"{name}.png", random_rgb(rng, h, w))
    hr_and_lr(
        root / "DIV2K" / "DIV2K_valid_HR",
        root / "DIV2K" / "DIV2K_valid_LR_bicubic",
        ["0801", "0802"],
    )
    for subdir, names in {
        "Set5": ["baby", "bird"],
        "Set14": ["lenna"],
        "B100": ["3096"],
        "Urban100": ["img_001"],
    }.items():
        bench = root / "benchmark" / subdir
        hr_and_lr(bench / "HR", bench / "LR_bicubic", names)
    return root


@pytest.fixture
def hr_folder(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A plain folder of HR images (PNG, JPEG, BMP) plus files that are not images."""
    folder = tmp_path / "hr"
    save_png(folder / "a.png", random_rgb(rng, 60, 50))
    Image.fromarray(random_rgb(rng, 48, 64)).save(folder / "b.jpg", quality=95)
    Image.fromarray(random_rgb(rng, 52, 52)).save(folder / "c.bmp")
    (folder / "notes.txt").write_text("not an image")
    (folder / "Thumbs.db").write_bytes(b"\0" * 64)
    return folder
