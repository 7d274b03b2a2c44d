"""The LightningDataModule: training patches, LIIF-style validation patches, evaluation sets.

``images`` (an image source, :mod:`ipe_lightning.data.sources`) gives the training and validation
images: DIV2K trains on ``DIV2K_train_HR`` and validates on the first ``val_first_k`` images of
``DIV2K_valid_HR`` (LIIF's ``first_k: 10``, ``repeat: 160``); the bundled photos train on the
training photos and validate on the held-out ones; plain folders on their ``train_dir`` and
``val_dir``.
``eval_sets`` maps set names to their specs (:mod:`ipe_lightning.data.eval_sets`), one test loader
per (set, scale) in the mapping's order.

``scale`` switches to paired training (:mod:`ipe_lightning.data.paired`, ``data=div2k_paired``):
crops of the provided LR files at that one scale with their HR, for fixed-scale networks; its
validation crops come from the source's provided validation LR files at the same scale.

Call :meth:`SRDataModule.check` before building a model: it finds missing folders, unreadable
files and too-small images, and raises (or, with ``skip_bad``, skips them with one warning). With
the decoded cache (``cache=True``, the default) every file is decoded once into the cache, so pixel
data cut short is found here; with ``cache=False`` only headers are read (see ``scan``).
``check("test")`` looks at the evaluation sets only (a test run needs no training images);
``setup(stage)`` calls ``check(stage)``.

Randomness lives in :class:`~ipe_lightning.data.sampler.EpochSampler` (see its module): samples
depend on ``seed``, the epoch and the rank, never on ``num_workers``. The DataModule shards by the
attached trainer's ``global_rank``/``world_size``, so trainers must set
``use_distributed_sampler=False``. Resuming from any checkpoint (epoch end or mid-epoch) goes on
with exactly the samples the uninterrupted run would have drawn: ``train_dataloader`` reads the
restored epoch and batch counters. Test loaders are not sharded: every rank sees every image.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from ipe_lightning.configs import plain
from ipe_lightning.data.cache import DecodedCache
from ipe_lightning.data.crops import TrainingPatches, images_fitting_crop
from ipe_lightning.data.degrade import check_degrade
from ipe_lightning.data.eval_sets import (
    EvalImages,
    EvalPair,
    EvalSetSpec,
    build_eval_datasets,
    collate_eval,
)
from ipe_lightning.data.images import (
    ImageReader,
    ScanResult,
    decode_rgb,
    readable_images,
    scan_images,
)
from ipe_lightning.data.paired import (
    PairedPatches,
    checked_pairs,
    pairs_fitting_crop,
    train_lr_dir,
)
from ipe_lightning.data.sampler import TRAIN_STREAM, VAL_STREAM, EpochSampler
from ipe_lightning.data.sources import BundledPhotos, ImageSource, require_source
from ipe_lightning.errors import SettingError

log = logging.getLogger(__name__)


def _paired_scale(scale: object) -> int | None:
    """``data.scale``: ``None`` (random-scale training) or a positive integer (paired)."""
    if scale is not None and (type(scale) is not int or scale < 1):
        raise SettingError(
            f"data.scale (paired training) must be a positive integer or null, got {scale!r}"
        )
    return scale


class SRDataModule(pl.LightningDataModule):
    """Training/validation batches (docs/method.md §3) and one test loader per (set, scale) (§4).

    Training and validation batches are dicts of float32 ``lr (B, 3, inp_size, inp_size)``,
    ``coord (B, Q, 2)``, ``cell (B, Q, 2)``, ``gt (B, Q, 3)``; images in ``[0, 1]``, coordinates
    in the LIIF convention, no normalisation. Test batches: see :func:`collate_eval`.

    The module reads images only through ``images`` and ``eval_sets``; configs build it with
    :meth:`from_config`.
    """

    def __init__(
        self,
        images: ImageSource | None = None,
        scale_min: float = 1.0,
        scale_max: float = 4.0,
        inp_size: int = 48,
        sample_q: int | None = 2304,
        repeat: int = 20,
        batch_size: int = 16,
        num_workers: int = 0,
        val_first_k: int | None = 10,
        val_repeat: int = 160,
        val_batch_size: int | None = None,
        augment: bool = True,
        seed: int = 0,
        cache: bool = True,
        cache_dir: str | None = None,
        skip_bad: bool = False,
        eval_sets: Mapping[str, Mapping[str, Any]] | None = None,
        pin_memory: bool = False,
        persistent_workers: bool = True,
        scale: int | None = None,
        lr_dir: str | None = None,
        degrade: str = "pillow",
    ) -> None:
        super().__init__()
        images = BundledPhotos() if images is None else require_source(images, "data.images")
        if not 0 < scale_min <= scale_max:
            raise ValueError(
                f"need 0 < data.scale_min <= data.scale_max, got {scale_min}, {scale_max}"
            )
        eval_sets = plain(eval_sets) or {}
        if not isinstance(eval_sets, Mapping):
            raise ValueError(
                "eval_sets must map set names to their specs (eval.sets in conf/eval), "
                f"got {type(eval_sets).__name__}"
            )
        self.images = images
        self.scale_min = float(scale_min)
        self.scale_max = float(scale_max)
        self.inp_size = int(inp_size)
        self.sample_q = sample_q
        self.repeat = int(repeat)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.val_first_k = val_first_k
        self.val_repeat = int(val_repeat)
        self.val_batch_size = int(val_batch_size or batch_size)
        self.augment = augment
        self.seed = int(seed)
        self.cache = cache
        self.cache_dir = cache_dir
        self.skip_bad = skip_bad
        self.eval_sets = dict(eval_sets)
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.scale = _paired_scale(scale)
        self.lr_dir = lr_dir
        self.degrade = check_degrade(degrade)
        self.train_paths: list[Path] = []
        self.val_paths: list[Path] = []
        self.train_pairs: list[EvalPair] = []  # paired training (``scale``): HR and LR files
        self.val_pairs: list[EvalPair] = []
        self.eval_datasets: list[tuple[str, EvalImages]] = []
        self.train_sampler: EpochSampler | None = None
        self.val_sampler: EpochSampler | None = None
        self._checked_training = False
        self._checked_eval = False
        self._cleaned_cache = False
        self._said_header_only = False

    @classmethod
    def from_config(
        cls,
        *,
        root: str | None = None,
        train_dir: str | None = None,
        val_dir: str | None = None,
        **settings: Any,
    ) -> SRDataModule:
        """The module of a ``conf/data/*.yaml`` node (its ``_target_``).

        ``root``, ``train_dir`` and ``val_dir`` are where users point the configs
        (``data.root=/data``, ``IPE_DATA_ROOT``, ``data.train_dir=...``): the configs hand them on
        by interpolation to ``images`` and ``eval.root``, so the module does not take them.
        """
        return cls(**settings)

    # -- inputs ---------------------------------------------------------------------------------

    @property
    def reader(self) -> ImageReader:
        """How images are read: the decoded cache, or decoding every time (``cache=False``)."""
        return DecodedCache(self.cache_dir) if self.cache else decode_rgb

    def scan(self, paths: Iterable[Path]) -> ScanResult:
        """How :meth:`check` inspects every file before use (training, validation and test HR,
        provided LR).

        With the cache: a header scan, then a full decode of every file into the cache (a one-time
        cost; later setups find the entries), so a truncated file is bad here, not at step 1.
        Without it (``cache=False``): a header scan only, which a file whose pixel data is cut
        short passes; decoding it later raises an error that names it.
        """
        if self.cache:
            return DecodedCache(self.cache_dir).verify(paths)
        if not self._said_header_only:
            log.info(
                "data.cache=false: image files are checked by their headers only; a file whose "
                "pixel data is cut short is found when it is first read (data.cache=true decodes "
                "every file once at setup)"
            )
            self._said_header_only = True
        return scan_images(paths)

    def _usable(self, paths: list[Path], what: str) -> list[Path]:
        sizes = readable_images(paths, skip_bad=self.skip_bad, what=what, scan=self.scan)
        if not sizes:
            raise ValueError(f"no readable image left in {what}")
        return images_fitting_crop(sizes, self.inp_size, self.scale_max, what=what)

    def _check_pairs(self, train: list[Path], val: list[Path]) -> None:
        """Paired training: each training and validation HR with its provided LR at ``scale``."""
        scale, name = self.scale, self.images.what
        if scale not in self.images.paired_scales:
            shipped = ", ".join(f"x{s}" for s in self.images.paired_scales) or "no scale"
            raise SettingError(
                f"data.scale={scale} (paired training) needs validation LR files at x{scale}; "
                f"{name} ships them at {shipped} (data=div2k_paired: DIV2K at x2, x3, x4)"
            )
        train_dir = Path(self.lr_dir) if self.lr_dir else train_lr_dir(train[0].parent, scale)
        what = f"training images of {name}"
        self.train_pairs = self._usable_pairs(train, train_dir, what, "data.lr_dir")
        what = f"validation images of {name}"
        self.val_pairs = self._usable_pairs(val, self.images.lr_dir(scale), what, "data.root")
        self.train_paths = [pair.hr for pair in self.train_pairs]
        self.val_paths = [pair.hr for pair in self.val_pairs]

    def _usable_pairs(
        self, paths: list[Path], lr_dir: Path, what: str, setting: str
    ) -> list[EvalPair]:
        sizes = readable_images(paths, skip_bad=self.skip_bad, what=what, scan=self.scan)
        if not sizes:
            raise ValueError(f"no readable image left in {what}")
        lr_sizes = checked_pairs(sizes, lr_dir, self.scale, self.scan, what=what, setting=setting)
        return pairs_fitting_crop(lr_sizes, self.inp_size, what=what)

    def check_headers(self, stage: str | None = None) -> None:
        """:meth:`check` by image headers only, without the ``data.cache=false`` note: what a
        sweep's preflight checks before its jobs (which decode the files) start."""
        self.cache = False
        self._said_header_only = True
        self.check(stage)

    def check(self, stage: str | None = None) -> None:
        """Find every input problem now, with :meth:`scan` (each part checked once).

        ``stage`` as in Lightning's ``setup``: ``"fit"``/``"validate"`` check the training and
        validation images, ``"test"`` the evaluation sets, ``None`` both.
        """
        if stage in (None, "fit", "validate") and not self._checked_training:
            train, val = self.images.train_images(), self.images.val_images()
            if self.val_first_k is not None:
                val = val[: self.val_first_k]  # LIIF first_k: the first images by file name
            name = self.images.what
            if self.scale is None:
                self.train_paths = self._usable(train, f"training images of {name}")
                self.val_paths = self._usable(val, f"validation images of {name}")
            else:
                self._check_pairs(train, val)
            self._checked_training = True
        if stage in (None, "test") and not self._checked_eval:
            self.eval_datasets = [
                named
                for name, spec in self.eval_sets.items()
                for named in build_eval_datasets(
                    EvalSetSpec.from_config(name, spec),
                    self.reader,
                    skip_bad=self.skip_bad,
                    scan=self.scan,
                )
            ]
            self._checked_eval = True
        if self.cache and not self._cleaned_cache:
            DecodedCache(self.cache_dir).remove_stale_temp_files()
            self._cleaned_cache = True

    def setup(self, stage: str | None = None) -> None:
        self.check(stage)

    @property
    def test_set_names(self) -> list[str]:
        """``<set>/x<scale>`` for each test loader, in the order of :meth:`test_dataloader`."""
        self.check("test")
        return [name for name, _ in self.eval_datasets]

    # -- loaders --------------------------------------------------------------------------------

    def _rank_and_world_size(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def _training_position(self) -> tuple[int, int]:
        """``(epoch, batches of it already trained)`` where the attached trainer will go on.

        Lightning creates the training iterator, and with workers draws its first indices, right
        after ``train_dataloader()`` returns and before it calls ``set_epoch``. So the epoch, and
        after a mid-epoch resume how far into it the checkpoint was, are read here from the
        restored loop progress, with Lightning's reading of it: a checkpoint taken after the last
        batch of an epoch goes on with the next epoch.
        """
        trainer = self.trainer
        if trainer is None:
            return 0, 0
        try:
            epochs = trainer.fit_loop.epoch_progress.current
            batches = trainer.fit_loop.epoch_loop.batch_progress
        except AttributeError:  # a Lightning without these loop counters: trust set_epoch
            return trainer.current_epoch, 0
        if epochs.processed < epochs.started:  # restored from inside an epoch
            if batches.is_last_batch:
                return epochs.processed + 1, 0
            return epochs.processed, batches.current.ready
        return epochs.processed, 0

    def _patches(
        self, paths: list[Path], repeat: int, augment: bool, pairs: list[EvalPair]
    ) -> TrainingPatches | PairedPatches:
        if self.scale is not None:
            return PairedPatches(
                pairs,
                self.reader,
                scale=self.scale,
                repeat=repeat,
                inp_size=self.inp_size,
                sample_q=self.sample_q,
                augment=augment,
            )
        return TrainingPatches(
            paths,
            self.reader,
            repeat=repeat,
            inp_size=self.inp_size,
            scale_min=self.scale_min,
            scale_max=self.scale_max,
            sample_q=self.sample_q,
            augment=augment,
            degrade=self.degrade,
        )

    def _loader(self, dataset, batch_size: int, **kwargs: Any) -> DataLoader:
        workers = self.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and workers > 0,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        self.check("fit")
        dataset = self._patches(self.train_paths, self.repeat, self.augment, self.train_pairs)
        rank, world_size = self._rank_and_world_size()
        self.train_sampler = EpochSampler(
            len(dataset), seed=self.seed, rank=rank, world_size=world_size, stream=TRAIN_STREAM
        )
        epoch, batches_done = self._training_position()
        self.train_sampler.set_epoch(epoch)
        self.train_sampler.skip = min(batches_done * self.batch_size, len(self.train_sampler))
        return self._loader(dataset, self.batch_size, sampler=self.train_sampler)

    def val_dataloader(self) -> DataLoader:
        """LIIF validation: ``val_repeat`` patches of each image, no augmentation, fixed seeds."""
        self.check("validate")
        dataset = self._patches(self.val_paths, self.val_repeat, False, self.val_pairs)
        rank, world_size = self._rank_and_world_size()
        self.val_sampler = EpochSampler(
            len(dataset),
            seed=self.seed,
            rank=rank,
            world_size=world_size,
            shuffle=False,
            reseed_each_epoch=False,
            stream=VAL_STREAM,
        )
        return self._loader(dataset, self.val_batch_size, sampler=self.val_sampler)

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per (set, scale), named by :attr:`test_set_names`; batch size 1.

        Under DDP each rank takes every ``world_size``-th image, without the padding a
        ``DistributedSampler`` adds, so no image is counted twice in the synchronised means.
        """
        self.check("test")
        rank, world_size = self._rank_and_world_size()
        return [
            DataLoader(
                dataset,
                batch_size=1,
                sampler=range(rank, len(dataset), world_size),
                num_workers=self.num_workers,
                collate_fn=collate_eval,
                pin_memory=self.pin_memory,
            )
            for _, dataset in self.eval_datasets
        ]
