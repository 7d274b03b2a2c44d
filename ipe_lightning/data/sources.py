"""Image sources: where one dataset's HR images are, per split, and its provided LR files.

One small object per dataset layout (docs/method.md §5), chosen in config by ``_target_``
(``data.images`` for training, ``eval.sets.<name>.images`` for evaluation):

- ``DIV2K(root)``: trains on ``DIV2K_train_HR``, validates on ``DIV2K_valid_HR``, which is also
  its test set, with the provided LR of ``DIV2K_valid_LR_bicubic``;
- ``Benchmark(root, subdir)``: a test set only, ``benchmark/<subdir>/HR`` with ``LR_bicubic``;
- ``ImageFolders(train_dir, val_dir, test_dir)``: plain folders, no LR files (LR is generated);
- ``BundledPhotos()``: the scikit-image photos of the embedded default, no LR files.

Nothing is read when a source is built; each method checks what it returns and raises a
:class:`~ipe_lightning.data.layouts.DatasetNotFoundError` that names the setting or the path and
shows the expected layout. Training and validation images are configured under ``data``, test
images under ``eval``, so the messages name ``data.root`` / ``data.train_dir`` / ``data.val_dir``
for the former and ``eval.root`` for the latter.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ipe_lightning.data import bundled
from ipe_lightning.data.layouts import (
    FOLDER_LAYOUT,
    benchmark_dir,
    div2k_dir,
    require_images,
    require_root,
)

# The scales at which DIV2K and the benchmarks ship bicubic LR files (docs/method.md §4, §5).
PAIRED_SCALES = (2, 3, 4)

_DATA_ROOT_ENV = "IPE_DATA_ROOT"


class ImageSource:
    """The HR images of a dataset per split, and where its provided LR files are.

    ``what`` names the dataset in messages (``"training images of <what>"``). A source without
    provided LR files has no ``paired_scales``; its test images are degraded on the fly.
    """

    what: str = "this source"
    paired_scales: tuple[int, ...] = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in vars(self).items() if key != "what")
        return f"{type(self).__name__}({fields})"

    def train_images(self) -> list[Path]:
        """The training HR files, sorted by name."""
        raise ValueError(f"{self.what} is a test set: it has no training images")

    def val_images(self) -> list[Path]:
        """The validation HR files, sorted by name (the data module keeps the first ``k``)."""
        raise ValueError(f"{self.what} is a test set: it has no validation images")

    def test_images(self, set_name: str) -> list[Path]:
        """The HR files of eval set ``set_name`` (the name is for messages)."""
        raise ValueError(f"eval set {set_name!r}: {self.what} has no test images")

    def lr_dir(self, scale: int) -> Path:
        """The folder of the provided LR files at ``scale`` (one of :attr:`paired_scales`)."""
        raise ValueError(f"{self.what} ships no LR files")

    def lr_file(self, hr: Path, scale: int) -> Path:
        """``<lr_dir>/<name>x<s>.png``: how both DIV2K and the benchmarks name their LR files."""
        return self.lr_dir(scale) / f"{hr.stem}x{scale}.png"


def require_source(value: object, what: str) -> ImageSource:
    """``value`` if it is an image source, else an error that says what ``what`` must be."""
    if isinstance(value, ImageSource):
        return value
    hint = (
        " (a config node: hydra.utils.instantiate builds it together with the data module)"
        if isinstance(value, Mapping)
        else ""
    )
    raise ValueError(
        f"{what} must be an image source (DIV2K, Benchmark, ImageFolders, BundledPhotos), "
        f"got {value!r}{hint}"
    )


def _eval_root(root: str | Path | None, set_name: str) -> Path:
    return require_root(
        root,
        "eval.root",
        f"eval set {set_name!r} needs the folder that holds DIV2K/ and benchmark/ "
        "(eval.root defaults to data.root)",
        env_var=_DATA_ROOT_ENV,
    )


class DIV2K(ImageSource):
    """``<root>/DIV2K``: 800 training HR, 100 validation HR with bicubic LR at ×2, ×3, ×4.

    The validation HR are both the validation images of training (LIIF: the first 10) and the
    ``div2k`` test set.
    """

    what = "DIV2K"
    paired_scales = PAIRED_SCALES

    def __init__(self, root: str | Path | None) -> None:
        self.root = root

    def _data_root(self) -> Path:
        return require_root(
            self.root,
            "data.root",
            "data=div2k needs the folder that holds DIV2K/ (and benchmark/)",
            env_var=_DATA_ROOT_ENV,
        )

    def train_images(self) -> list[Path]:
        folder = div2k_dir(self._data_root()) / "DIV2K_train_HR"
        return require_images(folder, "DIV2K training HR")

    def val_images(self) -> list[Path]:
        folder = div2k_dir(self._data_root()) / "DIV2K_valid_HR"
        return require_images(folder, "DIV2K validation HR")

    def test_images(self, set_name: str) -> list[Path]:
        folder = div2k_dir(_eval_root(self.root, set_name)) / "DIV2K_valid_HR"
        return require_images(folder, f"DIV2K validation HR of eval set {set_name!r}")

    def lr_dir(self, scale: int) -> Path:
        return div2k_dir(self.root) / "DIV2K_valid_LR_bicubic" / f"X{scale}"


class Benchmark(ImageSource):
    """``<root>/benchmark/<subdir>`` (``Set5``, ``Set14``, ``B100``, ``Urban100``): HR images
    with bicubic LR at ×2, ×3, ×4. A test set only."""

    paired_scales = PAIRED_SCALES

    def __init__(self, root: str | Path | None, subdir: str) -> None:
        if not subdir:
            raise ValueError("a benchmark needs subdir (e.g. Set5)")
        self.root = root
        self.subdir = subdir
        self.what = f"the benchmark {subdir}"

    def test_images(self, set_name: str) -> list[Path]:
        folder = benchmark_dir(_eval_root(self.root, set_name)) / self.subdir / "HR"
        return require_images(folder, f"{self.subdir} HR of eval set {set_name!r}")

    def lr_dir(self, scale: int) -> Path:
        return benchmark_dir(self.root) / self.subdir / "LR_bicubic" / f"X{scale}"


class ImageFolders(ImageSource):
    """Plain folders of HR images (any PNG/JPEG/BMP/TIFF/WebP directly inside), one per split.

    A split whose folder is not given is an error when asked for. No LR files: every test scale
    is degraded on the fly.
    """

    what = "the folders"

    def __init__(
        self,
        train_dir: str | Path | None = None,
        val_dir: str | Path | None = None,
        test_dir: str | Path | None = None,
    ) -> None:
        self.train_dir = train_dir
        self.val_dir = val_dir
        self.test_dir = test_dir

    def train_images(self) -> list[Path]:
        return _folder_images(
            self.train_dir, "data.train_dir", "data=folder needs a folder of training HR images"
        )

    def val_images(self) -> list[Path]:
        return _folder_images(
            self.val_dir, "data.val_dir", "data=folder needs a folder of validation HR images"
        )

    def test_images(self, set_name: str) -> list[Path]:
        return _folder_images(
            self.test_dir,
            "eval.root",
            f"eval set {set_name!r} (eval=folder) needs a folder of HR images",
            what=f"eval set {set_name!r} (eval.root)",
        )


def _folder_images(
    folder: str | None, key: str, purpose: str, what: str | None = None
) -> list[Path]:
    """The images of the HR folder set by ``key`` (errors name ``key`` and the layout)."""
    path = require_root(folder, key, purpose, layout=FOLDER_LAYOUT)
    return require_images(path, what or key, FOLDER_LAYOUT)


class BundledPhotos(ImageSource):
    """The scikit-image photos of :mod:`ipe_lightning.data.bundled`: the embedded default.

    Training on the training photos; validation and test on the held-out photos (too few photos
    for a third split: validation there only tracks training, it selects nothing).
    """

    what = "the bundled photos"

    def train_images(self) -> list[Path]:
        return bundled.train_photos()

    def val_images(self) -> list[Path]:
        return bundled.held_out_photos()

    def test_images(self, set_name: str) -> list[Path]:
        return bundled.held_out_photos()
