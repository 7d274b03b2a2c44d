"""Data: image sources (DIV2K, benchmarks, folders, bundled photos) read through the decoded cache
→ degradation (Pillow bicubic) → training samples and evaluation sets → the LightningDataModule
(docs/method.md §3-§5).

``SRDataModule`` is imported on first use: the rest of the package (the sources, the resizes,
``python -m ipe_lightning.data.tiny_tree`` and ``make_lr``) loads without Lightning."""

from typing import Any

from ipe_lightning.data.bundled import HELD_OUT_PHOTOS, TRAIN_PHOTOS, photo_path
from ipe_lightning.data.cache import DecodedCache, default_cache_dir
from ipe_lightning.data.crops import Augmentation, TrainingPatches, training_sample
from ipe_lightning.data.degrade import generate_lr, generated_lr_size, resize_bicubic
from ipe_lightning.data.eval_sets import (
    EvalImages,
    EvalSetSpec,
    build_eval_datasets,
    collate_eval,
    resolve_shave,
)
from ipe_lightning.data.images import (
    BadImageError,
    DataWarning,
    ImageReader,
    decode_rgb,
    list_images,
    scan_images,
)
from ipe_lightning.data.layouts import DatasetNotFoundError
from ipe_lightning.data.sampler import EpochSampler
from ipe_lightning.data.sources import (
    DIV2K,
    Benchmark,
    BundledPhotos,
    ImageFolders,
    ImageSource,
)

__all__ = [
    "DIV2K",
    "HELD_OUT_PHOTOS",
    "TRAIN_PHOTOS",
    "Augmentation",
    "BadImageError",
    "Benchmark",
    "BundledPhotos",
    "DataWarning",
    "DatasetNotFoundError",
    "DecodedCache",
    "EpochSampler",
    "EvalImages",
    "EvalSetSpec",
    "ImageFolders",
    "ImageReader",
    "ImageSource",
    "SRDataModule",
    "TrainingPatches",
    "build_eval_datasets",
    "collate_eval",
    "decode_rgb",
    "default_cache_dir",
    "generate_lr",
    "generated_lr_size",
    "list_images",
    "photo_path",
    "resize_bicubic",
    "resolve_shave",
    "scan_images",
    "training_sample",
]


def __getattr__(name: str) -> Any:
    if name == "SRDataModule":
        from ipe_lightning.data.datamodule import SRDataModule

        return SRDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
