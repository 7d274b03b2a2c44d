"""Tiny DIV2K and benchmark folders (the layout of docs/method.md §5) for ``debug=tiny`` sweeps.

    python -m ipe_lightning.data.tiny_tree /tmp/tiny          # prints the root it wrote
    python sweep.py table1 debug=tiny data.root=/tmp/tiny

Crops of the scikit-image photos (no download), with the paired bicubic LR files: for the
validation and benchmark images Pillow bicubic of the HR cropped to ``LR·s``; for the training
images, which the fixed-scale networks train on in pairs (``data=div2k_paired``),
``DIV2K_train_LR_bicubic/X{2,3,4}/0001x2.png ...`` by MATLAB's bicubic ``imresize`` as DIV2K made
them (:func:`ipe_lightning.data.make_lr.downscale`). Sizes are chosen so that
every table's scales can be evaluated: DIV2K valid is 96x96, which holds ×30 with the LIIF shave
(``floor(96/30) = 3`` LR pixels, HR 90, minus 2·36 leaves 18 ≥ the 11-pixel SSIM window);
the benchmarks are about 64-70 pixels (×8 with shave 8). Numbers measured on them mean nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from ipe_lightning.data import bundled
from ipe_lightning.data.degrade import resize_bicubic
from ipe_lightning.data.images import decode_rgb
from ipe_lightning.data.make_lr import downscale

PAIRED_SCALES = (2, 3, 4)
DIV2K_SIDE = 96
TRAIN_NAMES = ("0001", "0002", "0003")
VALID_NAMES = ("0801", "0802")
BENCHMARKS = {  # benchmark → (name, (H, W)); odd sizes on purpose (LR = HR // s drops pixels)
    "Set5": [("baby", (64, 66)), ("bird", (70, 64))],
    "Set14": [("lenna", (67, 72))],
    "B100": [("3096", (64, 70))],
    "Urban100": [("img_001", (66, 66))],
}


def _photos() -> list[np.ndarray]:
    return [decode_rgb(path) for path in (*bundled.train_photos(), *bundled.held_out_photos())]


def _crop(photo: np.ndarray, size: tuple[int, int], index: int) -> np.ndarray:
    """A ``size`` crop from the photo's centre, shifted per index so crops differ."""
    height, width = size
    top = max(0, (photo.shape[0] - height) // 2 - 17 * index)
    left = max(0, (photo.shape[1] - width) // 2 + 13 * index)
    return np.ascontiguousarray(photo[top : top + height, left : left + width])


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _save_with_lr(hr_path: Path, lr_root: Path, hr: np.ndarray) -> None:
    _save(hr_path, hr)
    for scale in PAIRED_SCALES:
        lr_size = (hr.shape[0] // scale, hr.shape[1] // scale)
        crop = hr[: lr_size[0] * scale, : lr_size[1] * scale]
        _save(lr_root / f"X{scale}" / f"{hr_path.stem}x{scale}.png", resize_bicubic(crop, lr_size))


def _save_train_lr(hr_path: Path, lr_root: Path, hr: np.ndarray) -> None:
    for scale in PAIRED_SCALES:
        _save(lr_root / f"X{scale}" / f"{hr_path.stem}x{scale}.png", downscale(hr, scale))


def write_tiny_datasets(root: str | Path) -> Path:
    """Write the tiny DIV2K and benchmark folders under ``root``; return ``root``."""
    root = Path(root)
    photos = _photos()
    counter = 0

    def next_crop(size: tuple[int, int]) -> np.ndarray:
        nonlocal counter
        photo = photos[counter % len(photos)]
        counter += 1
        return _crop(photo, size, counter // len(photos))

    side = (DIV2K_SIDE, DIV2K_SIDE)
    for name in TRAIN_NAMES:
        hr_path, hr = root / "DIV2K" / "DIV2K_train_HR" / f"{name}.png", next_crop(side)
        _save(hr_path, hr)
        _save_train_lr(hr_path, root / "DIV2K" / "DIV2K_train_LR_bicubic", hr)
    for name in VALID_NAMES:
        _save_with_lr(
            root / "DIV2K" / "DIV2K_valid_HR" / f"{name}.png",
            root / "DIV2K" / "DIV2K_valid_LR_bicubic",
            next_crop(side),
        )
    for benchmark, images in BENCHMARKS.items():
        folder = root / "benchmark" / benchmark
        for name, size in images:
            _save_with_lr(folder / "HR" / f"{name}.png", folder / "LR_bicubic", next_crop(size))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="the folder to write DIV2K/ and benchmark/ into")
    print(write_tiny_datasets(parser.parse_args().root))


if __name__ == "__main__":
    main()
