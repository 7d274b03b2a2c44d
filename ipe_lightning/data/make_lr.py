"""Write an HR folder's bicubic LR images in DIV2K's layout: ``DST/X{s}/<name>x{s}.png``.

    python -m ipe_lightning.data.make_lr SRC DST --scales 2 3 4 [--method matlab|pillow]

``matlab`` (the default) is MATLAB ``imresize(hr, 1/s, 'bicubic')`` of the uint8 image, as the
DIV2K ``*_LR_bicubic`` and SR-benchmark LR files were made (``data/matlab_resize.py``); ``pillow``
is the LIIF protocol's Pillow bicubic (``data/degrade.py``). Before resizing, the HR is cropped
from the top-left corner to a multiple of ``s`` in height and width (the benchmark scripts'
``modcrop``: the last ``H mod s`` rows and ``W mod s`` columns are dropped), so the LR is exactly
``(H // s, W // s)`` and ``LR·s`` is the HR the suite pairs it with (docs/method.md §4,
``crop_to_paired_lr``).

Errors in the input (a missing SRC, a scale that is not an integer >= 2, an unreadable or too
small image) are printed as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ipe_lightning.data.degrade import resize_bicubic
from ipe_lightning.data.images import decode_rgb, list_images
from ipe_lightning.data.matlab_resize import imresize_matlab_uint8

METHODS = ("matlab", "pillow")


class InputError(ValueError):
    """Something in the command line or the HR folder that cannot work; told in one line."""


def modcrop(hr: np.ndarray, scale: int) -> np.ndarray:
    """The top-left ``(H - H mod s, W - W mod s)`` of ``hr`` (benchmark scripts' ``modcrop``)."""
    height, width = hr.shape[0] - hr.shape[0] % scale, hr.shape[1] - hr.shape[1] % scale
    return np.ascontiguousarray(hr[:height, :width])


def downscale(hr: np.ndarray, scale: int, method: str = "matlab") -> np.ndarray:
    """The ``(H // s, W // s, 3)`` uint8 LR of RGB uint8 ``hr`` by ``method`` (module docstring)."""
    crop = modcrop(hr, scale)
    if min(crop.shape[:2]) < 1:
        raise InputError(f"an image of {hr.shape[0]}x{hr.shape[1]} is too small for scale {scale}")
    if method == "pillow":
        return resize_bicubic(crop, (crop.shape[0] // scale, crop.shape[1] // scale))
    if method != "matlab":
        raise InputError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    chw = torch.tensor(crop).permute(2, 0, 1)  # a copy: decoded arrays may be read-only
    return imresize_matlab_uint8(chw, 1 / scale).permute(1, 2, 0).numpy()


def lr_path(dst: Path, hr_path: Path, scale: int) -> Path:
    """``DST/X{s}/<stem>x{s}.png``, as DIV2K's ``DIV2K_train_LR_bicubic/X2/0001x2.png``."""
    return dst / f"X{scale}" / f"{hr_path.stem}x{scale}.png"


def parse_scale(text: str) -> int:
    """An integer scale >= 2 from the command line (``"3"``; ``"3.0"`` is accepted as 3)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value.is_integer() and value >= 2):
        raise InputError(f"a scale must be an integer >= 2, not {text!r}")
    return int(value)


def make_lr(src: Path, dst: Path, scales: Sequence[int], method: str = "matlab") -> list[Path]:
    """Write every image of ``src`` at every scale (module docstring); the written paths."""
    if not src.is_dir():
        raise InputError(f"SRC is not a folder: {src}")
    images = list_images(src)
    if not images:
        raise InputError(f"no image files in {src}")
    written = []
    for hr_path in images:
        try:
            hr = decode_rgb(hr_path)
        except Exception as err:  # any decoder failure is a bad input file, told by its name
            raise InputError(f"cannot read {hr_path}: {type(err).__name__}: {err}") from err
        for scale in scales:
            target = lr_path(dst, hr_path, scale)
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(downscale(hr, scale, method)).save(target)
            written.append(target)
    return written


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ipe_lightning.data.make_lr",
        description="Write DST/X{s}/<name>x{s}.png bicubic LR images of the HR images in SRC.",
    )
    parser.add_argument("src", type=Path, metavar="SRC", help="folder of HR images")
    parser.add_argument("dst", type=Path, metavar="DST", help="output folder (X{s}/ inside)")
    parser.add_argument("--scales", nargs="+", default=["2", "3", "4"], help="integers >= 2")
    parser.add_argument("--method", choices=METHODS, default="matlab")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        scales = [parse_scale(text) for text in args.scales]
        written = make_lr(args.src, args.dst, scales, args.method)
    except InputError as err:
        print(f"make_lr: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} LR images under {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
