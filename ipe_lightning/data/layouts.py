"""The dataset layouts (docs/method.md §5), where a root keeps DIV2K and the benchmarks, and the
errors for missing settings, folders and images: each names the setting or the path it looked for,
shows the expected layouts and says how to get the data or run the embedded default instead. The
image sources (:mod:`ipe_lightning.data.sources`) raise them.

A root (``data.root``, ``eval.root``) may hold the trees in either published layout, found without
a flag, one dataset at a time:

- this suite's: ``<root>/DIV2K`` and ``<root>/benchmark``, as the archives extract;
- the LIIF code base's: ``<root>/load/div2k`` and ``<root>/load/benchmark`` (its configs read
  ``./load/div2k/DIV2K_valid_HR``, ``./load/benchmark/Set5/LR_bicubic/X2``), or that ``load/``
  folder itself given as the root (``<root>/div2k``, ``<root>/benchmark``).
"""

from __future__ import annotations

from pathlib import Path

from ipe_lightning.data.images import IMAGE_SUFFIXES, list_images
from ipe_lightning.errors import UserError

# Where a root may keep each dataset, in the order looked for; the first is named when none exists.
DIV2K_PLACES = ("DIV2K", "load/div2k", "div2k")
BENCHMARK_PLACES = ("benchmark", "load/benchmark")

DOWNLOAD_HINT = (
    "To download both: python -m ipe_lightning.data.download div2k benchmarks --root <root>"
)

EXPECTED_LAYOUT = f"""\
<root>/
  DIV2K/DIV2K_train_HR/0001.png ... 0800.png
  DIV2K/DIV2K_train_LR_bicubic/X2/0001x2.png ...   (also X3, X4)
  DIV2K/DIV2K_valid_HR/0801.png ... 0900.png
  DIV2K/DIV2K_valid_LR_bicubic/X2/0801x2.png ...   (also X3, X4)
  benchmark/{{Set5,Set14,B100,Urban100}}/HR/<name>.png
  benchmark/{{Set5,Set14,B100,Urban100}}/LR_bicubic/X2/<name>x2.png ...   (also X3, X4)
or the LIIF code base's (<root> holds load/, or is that load/ folder):
<root>/load/
  div2k/DIV2K_train_HR/, div2k/DIV2K_valid_HR/, div2k/DIV2K_valid_LR_bicubic/X2/ ...
  benchmark/{{Set5,Set14,B100,Urban100}}/HR/, .../LR_bicubic/X2/ ...
{DOWNLOAD_HINT}"""

FOLDER_LAYOUT = (
    "<folder>/<name>.png ... (any PNG/JPEG/BMP/TIFF/WebP images directly inside; "
    "other files are ignored)"
)

EMBEDDED_DEFAULT_HINT = (
    "To run the embedded default instead (bundled scikit-image photos, no download), "
    "run plain `python run.py`."
)


class DatasetNotFoundError(FileNotFoundError, UserError):
    """A dataset root, folder or file is missing; the message says what was expected."""


def require_root(
    root: str | Path | None,
    key: str,
    purpose: str,
    *,
    layout: str = EXPECTED_LAYOUT,
    env_var: str | None = None,
) -> Path:
    """``root`` as a Path, or a :class:`DatasetNotFoundError` that explains how to set ``key``."""
    env_hint = f" or the environment variable {env_var}" if env_var else ""
    if root is None or str(root) == "":
        raise DatasetNotFoundError(
            f"{key} is not set: {purpose}.\n"
            f"Set {key}=/path/to/folder{env_hint}. Expected layout:\n{layout}\n"
            f"{EMBEDDED_DEFAULT_HINT}"
        )
    return require_dir(Path(root).expanduser(), key, layout)


def require_dir(path: Path, what: str, layout: str = EXPECTED_LAYOUT) -> Path:
    """``path`` if it is a folder, else a :class:`DatasetNotFoundError` naming it."""
    if not path.is_dir():
        raise DatasetNotFoundError(
            f"{what} not found: looked for the folder {path}.\n"
            f"Expected layout:\n{layout}\n{EMBEDDED_DEFAULT_HINT}"
        )
    return path


def require_images(folder: Path, what: str, layout: str = EXPECTED_LAYOUT) -> list[Path]:
    """The images in ``folder`` (which must exist and hold at least one)."""
    images = list_images(require_dir(folder, what, layout))
    if not images:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise DatasetNotFoundError(
            f"{what} has no images: {folder} holds no {suffixes} files.\n"
            f"Expected layout:\n{layout}\n{EMBEDDED_DEFAULT_HINT}"
        )
    return images


def _first_dir(root: Path, places: tuple[str, ...]) -> Path:
    """``root / place`` for the first place that is a folder, else ``root / places[0]``."""
    for place in places:
        if (root / place).is_dir():
            return root / place
    return root / places[0]


def div2k_dir(root: str | Path) -> Path:
    """The folder holding ``DIV2K_train_HR``, ``DIV2K_valid_HR``, ... under ``root`` (either
    layout, module docstring); ``<root>/DIV2K`` when neither is there, for the error to name."""
    return _first_dir(Path(root).expanduser(), DIV2K_PLACES)


def benchmark_dir(root: str | Path) -> Path:
    """The folder holding ``Set5``, ``Set14``, ``B100``, ``Urban100`` under ``root`` (either
    layout); ``<root>/benchmark`` when neither is there."""
    return _first_dir(Path(root).expanduser(), BENCHMARK_PLACES)
