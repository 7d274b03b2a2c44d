"""Training-sample throughput of the data pipeline, from the decoded cache and from raw PNG.

    python -m ipe_lightning.bench data [--size 2040x1356] [--images 4] [--n 400] [--n-raw 24]
                                       [--workers 2] [--json out.json]

Writes ``--images`` photo-like PNGs of ``--size`` (bundled photos upscaled with Pillow bicubic
plus mild sensor-like noise, so they compress and decode like DIV2K's 2K PNGs) to a temporary
folder, then times docs/method.md §3 training samples (random-scale crop, Pillow bicubic LR,
augmentation, ``sample_q`` queries) in this process, i.e. per dataloader worker:

- ``raw``: every sample decodes its PNG (``decode_rgb``), as without the cache;
- ``cache_fill``: the first read of each image (decode + atomic ``.npy`` write);
- ``cache``: samples read from the memory-mapped cache (the page cache warm, as in training).

With ``--workers W > 0`` it also times whole batches of 16 through ``SRDataModule``'s training
loader with ``W`` worker processes (batches/s · 16 / W = samples/s per worker).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ipe_lightning.data import bundled
from ipe_lightning.data.cache import DecodedCache
from ipe_lightning.data.crops import TrainingPatches
from ipe_lightning.data.datamodule import SRDataModule
from ipe_lightning.data.degrade import resize_bicubic
from ipe_lightning.data.images import decode_rgb
from ipe_lightning.data.sampler import EpochSampler
from ipe_lightning.data.sources import ImageFolders


def parse_size(text: str) -> tuple[int, int]:
    """``"2040x1356"`` (width x height, as image sizes are written) → ``(H, W)``."""
    width, height = (int(part) for part in text.lower().split("x"))
    return height, width


def write_photo_like_pngs(
    folder: Path, count: int, size: tuple[int, int], seed: int = 0
) -> list[Path]:
    """``count`` RGB PNGs of ``size = (H, W)``: bundled photos upscaled, plus Gaussian noise σ=2."""
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        photo = decode_rgb(bundled.train_photos()[index % len(bundled.TRAIN_PHOTOS)])
        big = resize_bicubic(photo, size).astype(np.float32)
        # Upscaled photos are smoother than real 2K photos and compress far better; noise brings
        # the PNG size (and so the decode cost) to DIV2K's range (3-6 MB).
        noisy = np.clip(big + rng.normal(0, 2.0, big.shape), 0, 255).round().astype(np.uint8)
        path = folder / f"{index:04d}.png"
        Image.fromarray(noisy).save(path)
        paths.append(path)
    return paths


def time_samples(dataset: TrainingPatches, count: int, seed: int = 0) -> float:
    """Samples per second over ``count`` items of the first epoch(s) of an EpochSampler."""
    sampler = EpochSampler(len(dataset), seed=seed)
    keys = []
    while len(keys) < count:
        sampler.set_epoch(len(keys) // len(dataset))
        keys.extend(sampler.epoch_pairs())
    start = time.perf_counter()
    for key in keys[:count]:
        dataset[key]
    return count / (time.perf_counter() - start)


def time_loader(folder: Path, cache_dir: Path, workers: int, batches: int) -> float:
    """Samples per second through SRDataModule's training loader (batch 16, ``workers``)."""
    images = len(list(folder.iterdir()))
    module = SRDataModule(
        images=ImageFolders(train_dir=folder, val_dir=folder),
        num_workers=workers,
        batch_size=16,
        repeat=math.ceil((batches + 1) * 16 / images),  # one epoch holds every timed batch
        cache_dir=str(cache_dir),
    )
    module.check()
    iterator = iter(module.train_dataloader())
    next(iterator)  # worker start-up is not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * 16 / (time.perf_counter() - start)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ipe_lightning.bench data", description=__doc__)
    parser.add_argument("--size", default="2040x1356", help="image size WxH (default: DIV2K's)")
    parser.add_argument("--images", type=int, default=4, help="number of synthetic images")
    parser.add_argument("--n", type=int, default=400, help="samples timed from the cache")
    parser.add_argument("--n-raw", type=int, default=24, help="samples timed from raw PNG")
    parser.add_argument("--scale-max", type=float, default=4.0, help="s ~ U(1, scale_max)")
    parser.add_argument("--workers", type=int, default=0, help="also time a DataLoader")
    parser.add_argument("--batches", type=int, default=50, help="batches timed with --workers")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args(argv)

    size = parse_size(args.size)
    with tempfile.TemporaryDirectory(prefix="ipe-bench-data-") as temp:
        folder, cache_dir = Path(temp) / "hr", Path(temp) / "cache"
        folder.mkdir()
        paths = write_photo_like_pngs(folder, args.images, size)
        options = {"scale_max": args.scale_max}
        results: dict[str, float | int | str] = {
            "size": f"{size[1]}x{size[0]}",
            "images": args.images,
            "png_mb": round(float(np.mean([p.stat().st_size for p in paths])) / 1e6, 2),
            "scale_range": f"U(1, {args.scale_max:g})",
        }
        raw = time_samples(TrainingPatches(paths, decode_rgb, **options), args.n_raw)
        cache = DecodedCache(cache_dir)
        start = time.perf_counter()
        for path in paths:
            cache(path)
        results["cache_fill_s_per_image"] = round((time.perf_counter() - start) / len(paths), 4)
        results["raw_samples_per_s"] = round(raw, 1)
        cached = time_samples(TrainingPatches(paths, cache, **options), args.n)
        results["cache_samples_per_s"] = round(cached, 1)
        if args.workers > 0:
            total = time_loader(folder, cache_dir, args.workers, args.batches)
            results["loader_workers"] = args.workers
            results["loader_samples_per_s"] = round(total, 1)
            results["loader_samples_per_s_per_worker"] = round(total / args.workers, 1)

    for key, value in results.items():
        print(f"{key:>34}: {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0
