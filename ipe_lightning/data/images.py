"""Image files → RGB uint8 ``(H, W, 3)`` arrays, folder listing and a header-only scan.

Every supported file becomes the same thing, so the rest of the pipeline never sees a mode:
grayscale and palette images are expanded to RGB, alpha is dropped (not composited), 16-bit
samples are scaled to 8 bits with ``round(v · 255 / 65535)`` (not truncated to the high byte, which
is what Pillow does on its own), and the EXIF orientation is applied.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ipe_lightning.errors import UserError

# The formats we read; anything else in a folder (``.txt``, ``Thumbs.db``) is ignored.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

# Pillow modes we turn into RGB uint8. "F" (float) and "I" (32-bit int) have no agreed 8-bit
# mapping, so they are reported as bad input instead of being guessed at.
SUPPORTED_MODES = frozenset(
    {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
    | {"I;16", "I;16B", "I;16L", "I;16N"}
)

# Anything that turns a file into RGB uint8 (H, W, 3): decode_rgb itself or a DecodedCache.
ImageReader = Callable[[Path], np.ndarray]

# EXIF tag 0x0112 (TIFF/EXIF "Orientation").
_ORIENTATION_TAG = 0x0112


def is_image_file(path: Path) -> bool:
    """A visible file with one of :data:`IMAGE_SUFFIXES` (case-insensitive).

    Dot-files are skipped: macOS leaves ``._0001.png`` metadata files next to real images.
    """
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name (LIIF's ``image-folder``).

    A link named like an image that leads nowhere (dangling, or a loop) is listed too: reading it
    fails, so the checks report it as they report a corrupt file, instead of its being left out
    unseen. Folders are never listed, whatever their name.
    """
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if is_image_file(p) and _file_or_broken_link(p))


def _file_or_broken_link(path: Path) -> bool:
    # exists() is False for a dangling link and for a loop of links (ELOOP)
    return path.is_file() or (path.is_symlink() and not path.exists())


def scale_16bit_to_8bit(values: np.ndarray) -> np.ndarray:
    """``round(v · 255 / 65535)`` as uint8.

    ``v · 255 / 65535`` is never exactly ``k + 1/2`` (65535 is odd), so the rounding has no ties.
    """
    wide = np.asarray(values).astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Undo EXIF orientation 1..8 on an ``(H, W, ...)`` array, as ``ImageOps.exif_transpose``."""
    if orientation == 2:  # mirrored left-right
        return pixels[:, ::-1]
    if orientation == 3:  # rotated 180
        return pixels[::-1, ::-1]
    if orientation == 4:  # mirrored top-bottom
        return pixels[::-1]
    if orientation == 5:  # transposed (mirror about the main diagonal)
        return pixels.swapaxes(0, 1)
    if orientation == 6:  # rotated 90° clockwise to display
        return np.rot90(pixels, k=-1)
    if orientation == 7:  # transverse (mirror about the anti-diagonal)
        return pixels[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:  # rotated 90° counter-clockwise to display
        return np.rot90(pixels, k=1)
    return pixels


def _as_rgb(pixels: np.ndarray) -> np.ndarray:
    """``(H, W)``/``(H, W, 1..4)`` uint8 → ``(H, W, 3)``: gray expanded, alpha dropped."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    channels = pixels.shape[-1]
    if channels in (1, 2):  # gray (+ alpha)
        return np.repeat(pixels[..., :1], 3, axis=-1)
    return pixels[..., :3]


def _rawmode(image: Image.Image) -> str:
    args = image.tile[0][3] if image.tile else ""
    return args if isinstance(args, str) else str(args[0]) if args else ""


def _is_16bit_colour(image: Image.Image) -> bool:
    # Pillow decodes 16-bit colour PNG/TIFF to 8-bit RGB(A) by keeping the high byte; the tile's
    # raw mode ("RGB;16B", "LA;16B", ...) is the only place the source bit depth survives.
    return image.mode in ("RGB", "RGBA") and ";16" in _rawmode(image)


def _decode_16bit_png(path: Path, image: Image.Image) -> np.ndarray:
    """Full 16-bit samples of a colour PNG, read with Pillow's own PNG decoder.

    Pillow unfilters PNG rows by the raw mode's bits per pixel and then keeps one byte per sample.
    Decoding twice with raw modes of the same bit width recovers both bytes: the big-endian mode
    keeps the high byte, its little-endian twin reads the low byte of the same big-endian data.
    Gray + alpha ("LA;16B", 4 bytes a pixel) has no little-endian twin, so it is read as "RGBA"
    (also 4 bytes a pixel): R, G = high and low byte of the gray sample, B, A = those of alpha.
    """
    codec, extents, offset, rawmode = image.tile[0]
    if rawmode == "LA;16B":
        byte_modes = [("RGBA", "RGBA")]
    else:
        byte_modes = [(image.mode, rawmode), (image.mode, rawmode.replace(";16B", ";16L"))]
    planes = []
    for mode, raw in byte_modes:
        with Image.open(path) as again:
            again.tile = [(codec, extents, offset, raw)]
            if again.mode != mode:
                raise ValueError(f"unexpected 16-bit PNG layout {rawmode!r} in {path}")
            again.load()
            planes.append(np.asarray(again).astype(np.uint16))
    if rawmode == "LA;16B":
        both = planes[0]
        return np.stack([both[..., 0] * 256 + both[..., 1]] * 3, axis=-1)
    high, low = planes
    return (high * 256 + low)[..., :3]


def _decode_16bit_tiff(path: Path) -> np.ndarray:
    import tifffile  # a dependency of scikit-image; only 16-bit colour TIFFs need it

    pixels = np.asarray(tifffile.imread(path, key=0))
    if pixels.dtype != np.uint16:
        raise ValueError(f"expected 16-bit samples in {path}, found {pixels.dtype}")
    return _as_rgb(pixels)


def _decode_with_pillow(image: Image.Image) -> np.ndarray:
    if image.mode.startswith("I;16"):  # 16-bit gray: Pillow keeps all 16 bits here
        return _as_rgb(scale_16bit_to_8bit(np.asarray(image)))
    if image.mode == "RGB":
        return np.asarray(image)
    # Palette, gray, CMYK, ...: Pillow's conversion; for "RGBA"/"LA"/"PA" it drops alpha.
    return np.asarray(image.convert("RGB"))


def decode_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` to a C-contiguous RGB uint8 ``(H, W, 3)`` array (module docstring).

    A file of several frames (an animated GIF, PNG or WebP, a multi-page TIFF) gives its first
    frame, with a :class:`DataWarning` that says so.
    """
    path = Path(path)
    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            warnings.warn(
                f"{path} holds {frames} frames (an animation or a multi-page file): only its "
                "first frame is read",
                DataWarning,
                stacklevel=2,
            )
        if image.mode not in SUPPORTED_MODES:
            raise ValueError(f"unsupported pixel format {image.mode!r} in {path}")
        if _is_16bit_colour(image):
            sixteen = (
                _decode_16bit_png(path, image)
                if image.format == "PNG"
                else _decode_16bit_tiff(path)
            )
            pixels = scale_16bit_to_8bit(sixteen)
        else:
            image.load()
            pixels = _decode_with_pillow(image)
        orientation = image.getexif().get(_ORIENTATION_TAG, 1)
    return np.ascontiguousarray(apply_orientation(pixels, orientation), dtype=np.uint8)


@dataclass
class ScanResult:
    """What a header scan found: stored ``(H, W)`` of the readable files, reasons for the rest.

    Sizes are as stored in the file (before EXIF orientation): the checks that use them (square
    training crops, LR = HR // s of a paired set) do not depend on a rotation.
    """

    sizes: dict[Path, tuple[int, int]] = field(default_factory=dict)
    bad: dict[Path, str] = field(default_factory=dict)


def scan_images(paths: Iterable[str | Path]) -> ScanResult:
    """Open every file, read only its header, and sort it into readable and bad.

    Costs one header parse per file (Pillow decodes pixels lazily). A file whose header is valid but
    whose pixel data is truncated passes the scan; decoding it later raises an error that names it.
    """
    result = ScanResult()
    for path in map(Path, paths):
        try:
            with Image.open(path) as image:
                if image.mode not in SUPPORTED_MODES:
                    raise ValueError(f"unsupported pixel format {image.mode!r}")
                width, height = image.size
                if width < 1 or height < 1:
                    raise ValueError(f"empty image {width}x{height}")
        except Exception as err:  # any failure to parse a header makes the file "bad"
            result.bad[path] = f"{type(err).__name__}: {err}"

            continue
        result.sizes[path] = (height, width)
    return result


class BadImageError(UserError, ValueError):
    """Image files that cannot be read; the message lists them."""


class DataWarning(UserWarning):
    """Input was skipped (bad or too small images); the message lists or counts it."""


# How files are checked before use: paths in, sizes of the good ones and reasons for the rest.
Scan = Callable[[Iterable[Path]], ScanResult]


def check_images(
    paths: Iterable[str | Path], *, skip_bad: bool, what: str, scan: Scan = scan_images
) -> ScanResult:
    """``scan`` ``paths`` (a header scan by default): the ``(H, W)`` of the readable ones, in
    order, and in ``bad`` the files skipped with ``skip_bad``, each with why (what a record
    keeps: a result over fewer images than its set says so).

    Unreadable files raise :class:`BadImageError` listing them, or with ``skip_bad`` are dropped
    with one :class:`DataWarning` that counts and lists them.
    """
    found = scan(map(Path, paths))
    if found.bad:
        listing = "\n".join(f"  {path}: {reason}" for path, reason in found.bad.items())
        count = f"{len(found.bad)} unreadable or corrupt image file(s) in {what}"
        if not skip_bad:
            raise BadImageError(
                f"{count}:\n{listing}\nFix or remove them, or set data.skip_bad=true to skip them."
            )
        warnings.warn(
            f"skipping {count} (data.skip_bad=true):\n{listing}", DataWarning, stacklevel=3
        )
    return found


def readable_images(
    paths: Iterable[str | Path], *, skip_bad: bool, what: str, scan: Scan = scan_images
) -> dict[Path, tuple[int, int]]:
    """The ``(H, W)`` of the readable files of ``paths``, in order (:func:`check_images`)."""
    return check_images(paths, skip_bad=skip_bad, what=what, scan=scan).sizes


def unique_stems(files: Sequence[Path]) -> list[str]:
    """One name per file, all distinct, also on case-insensitive file systems: its stem, or, for
    files that share a stem (ignoring case: ``same.PNG``, ``same.jpg``), the stem and the suffix
    (``same_PNG``, ``same_jpg``); a name still taken after that gets ``_2``, ``_3``, ... in input
    order."""
    counts: dict[str, int] = {}
    for path in files:
        counts[path.stem.casefold()] = counts.get(path.stem.casefold(), 0) + 1
    stems, taken = [], set()
    for path in files:
        shared = counts[path.stem.casefold()] > 1 and path.suffix
        stem = base = f"{path.stem}_{path.suffix[1:]}" if shared else path.stem
        number = 1
        while stem.casefold() in taken:
            number += 1
            stem = f"{base}_{number}"
        taken.add(stem.casefold())
        stems.append(stem)
    return stems
