"""Download DIV2K and the SR benchmarks into the layout the suite reads (docs/method.md §5).

    python -m ipe_lightning.data.download div2k benchmarks --root DIR [--dry-run]

``div2k``: the eight archives of the DIV2K site (HR train and valid; bicubic LR x2, x3, x4, train
and valid), ``benchmarks``: ``benchmark.tar`` of the EDSR authors (Set5, Set14, B100, Urban100
with bicubic LR x2, x3, x4). Each archive is

1. fetched into ``DIR/downloads/`` with a progress bar, resuming a partial download
   (:mod:`ipe_lightning.data.download_http`);
2. checked: its size against what the server announces and, for the DIV2K archives fetched from
   their site, size and SHA-256 against the published files' (as TensorFlow Datasets recorded
   them: the site publishes none); the SHA-256 of every archive is written to
   ``DIR/downloads/<archive>.json`` with its URL and size;
3. extracted beside its place and renamed into it (:mod:`ipe_lightning.data.archives`):
   ``DIR/DIV2K/DIV2K_train_HR``, ``DIR/DIV2K/DIV2K_train_LR_bicubic/X2``, ..., ``DIR/benchmark``
   (or the LIIF code base's ``load/div2k``, ``load/benchmark`` where ``DIR`` already uses them);
4. deleted (``--keep-archives`` keeps it).

A folder already in place is skipped, so a rerun finishes what an interrupted run left. Base URLs:
``--div2k-url`` / ``IPE_DIV2K_URL`` and ``--benchmark-url`` / ``IPE_BENCHMARK_URL`` (a mirror).
An unreachable network, a full disk or a corrupt archive is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ipe_lightning.atomic import write_text_atomic
from ipe_lightning.data.archives import CorruptArchiveError, extract_folder
from ipe_lightning.data.download_http import Fetched, fetch, human_bytes
from ipe_lightning.data.layouts import benchmark_dir, div2k_dir
from ipe_lightning.errors import UserError

OFFICIAL_URLS = {
    "div2k": "https://data.vision.ee.ethz.ch/cvl/DIV2K/",  # the NTIRE 2017 DIV2K site
    "benchmarks": "https://cv.snu.ac.kr/research/EDSR/",  # EDSR-PyTorch's README links it
}
URL_ENV = {"div2k": "IPE_DIV2K_URL", "benchmarks": "IPE_BENCHMARK_URL"}
URL_OPTION = {"div2k": "--div2k-url", "benchmarks": "--benchmark-url"}
# The DIV2K site publishes no checksums; these are the published files' sizes and SHA-256 as
# TensorFlow Datasets recorded them (tensorflow_datasets/url_checksums/div2k.txt).
_DIV2K_RECORDED = {
    "train_HR": (3530603713, "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335"),
    "valid_HR": (448993893, "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc"),
    "train_LR_bicubic_X2": (
        925390592,
        "a53a424317575838dadce4bcd97cf7b744d6855f43740ed5f0245af3cf4bd850",
    ),
    "train_LR_bicubic_X3": (
        427847282,
        "ad5c8e5507e2765823d3c2c5bd0934842efcd487c5370604c224090898b3163a",
    ),
    "train_LR_bicubic_X4": (
        246914039,
        "f006b837f4eb52b82909aa01478e6d6d199eefce932179491d0c9dbb706dde3a",
    ),
    "valid_LR_bicubic_X2": (
        117763600,
        "60eed9875c697df51204aa579e2a699e1d5215095788a097ff54dd17e2664d57",
    ),
    "valid_LR_bicubic_X3": (
        54513392,
        "04b9a2ed3b4a0715d3924d3ae8514830c3328fac8d30512ce716d6f419e052a3",
    ),
    "valid_LR_bicubic_X4": (
        31505881,
        "a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553",
    ),
}


@dataclass(frozen=True)
class Archive:
    """One published archive: its file name, the folder inside it, and where that folder goes
    (``place`` is ``div2k`` or ``benchmark``: :func:`~ipe_lightning.data.layouts.div2k_dir`)."""

    dataset: str
    name: str
    inner: str
    place: str
    size: int | None = None
    sha256: str | None = None

    def target(self, root: Path) -> Path:
        """Where the archive's folder goes under ``root`` (in the layout ``root`` already uses)."""
        return div2k_dir(root) / self.inner if self.place == "div2k" else benchmark_dir(root)


def _div2k_archives() -> list[Archive]:
    archives = []
    for split in ("train", "valid"):
        for kind in ("HR", "LR_bicubic_X2", "LR_bicubic_X3", "LR_bicubic_X4"):
            key = f"{split}_{kind}"
            inner = f"DIV2K_{key}" if kind == "HR" else f"DIV2K_{split}_LR_bicubic/{kind[-2:]}"
            size, sha256 = _DIV2K_RECORDED[key]
            archives.append(Archive("div2k", f"DIV2K_{key}.zip", inner, "div2k", size, sha256))
    return archives


ARCHIVES: tuple[Archive, ...] = (
    *_div2k_archives(),
    Archive("benchmarks", "benchmark.tar", "benchmark", "benchmark"),
)
DATASETS = tuple(OFFICIAL_URLS)


@dataclass(frozen=True)
class Step:
    """One archive of the plan: where it comes from, whether its published checksums apply,
    and whether its folder is already in place (skipped)."""

    archive: Archive
    url: str
    target: Path
    checked: bool
    present: bool


def base_urls(options: Mapping[str, str | None], env: Mapping[str, str]) -> dict[str, str]:
    """Each dataset's base URL: its option, else its environment variable, else the official."""
    urls = {}
    for dataset, official in OFFICIAL_URLS.items():
        url = options.get(dataset) or env.get(URL_ENV[dataset]) or official
        urls[dataset] = url if url.endswith("/") else url + "/"
    return urls


def plan(datasets: Sequence[str], root: Path, urls: Mapping[str, str]) -> list[Step]:
    """The archives of ``datasets`` in order, each with its URL and target (a frozen plan)."""
    steps = []
    for archive in ARCHIVES:
        if archive.dataset in datasets:
            target = archive.target(root)
            steps.append(
                Step(
                    archive,
                    urls[archive.dataset] + archive.name,
                    target,
                    checked=archive.sha256 is not None
                    and urls[archive.dataset] == OFFICIAL_URLS[archive.dataset],
                    present=target.is_dir(),
                )
            )
    return steps


def describe(steps: Sequence[Step]) -> str:
    """The plan as lines: what is fetched from where into which folder (``--dry-run``)."""
    lines = []
    for step in steps:
        if step.present:
            lines.append(f"  {step.archive.name}: {step.target} is there, skipped")
        else:
            size = f" ({human_bytes(step.archive.size)})" if step.archive.size else ""
            lines.append(f"  {step.url}{size} -> {step.target}")
    return "\n".join(lines)


def _manifest(step: Step, got: Fetched, extracted: bool, kept: bool) -> str:
    if step.checked:
        checked = "size and SHA-256 against the published file's (TensorFlow Datasets' record)"
    elif got.announced:
        checked = "size against the server's Content-Length; SHA-256 recorded here"
    else:
        checked = "nothing: the server announced no size; SHA-256 recorded here"
    record = {
        "archive": step.archive.name,
        "url": step.url,
        "size": got.size,
        "sha256": got.sha256,
        "checked": checked,
        "fetched": datetime.now(UTC).isoformat(timespec="seconds"),
        "extracted_to": str(step.target) if extracted else None,
        "archive_kept": kept,
    }
    return json.dumps(record, indent=2) + "\n"


def fetch_and_extract(step: Step, root: Path, *, keep_archive: bool = False) -> Path:
    """Run one step of the plan (module docstring, 1-4); returns the folder now in place."""
    archive = step.archive
    downloads = root / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    hint = (
        f"; check the network, or point {URL_OPTION[archive.dataset]} "
        f"(or {URL_ENV[archive.dataset]}) at a mirror"
    )
    got = fetch(
        step.url,
        downloads / archive.name,
        expected_size=archive.size if step.checked else None,
        room_factor=1.0,  # the extracted PNGs take about as much room as the archive
        unreachable_hint=hint,
    )
    if step.checked and got.sha256 != archive.sha256:
        got.path.unlink()
        raise CorruptArchiveError(
            f"{archive.name} is corrupt: its SHA-256 {got.sha256[:16]}... is not the published "
            f"file's {archive.sha256[:16]}...; it was removed: run the same command again"
        )
    manifest = downloads / f"{archive.name}.json"
    write_text_atomic(manifest, _manifest(step, got, extracted=False, kept=True))
    try:
        extract_folder(got.path, archive.inner, step.target)
    except CorruptArchiveError as err:
        got.path.unlink()
        raise CorruptArchiveError(
            f"{err}; the archive was removed: run the same command again to download it anew"
        ) from err
    if not keep_archive:
        got.path.unlink()
    write_text_atomic(manifest, _manifest(step, got, extracted=True, kept=keep_archive))
    return step.target


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ipe_lightning.data.download",
        description="Download DIV2K and the SR benchmarks into the layout the suite reads.",
    )
    parser.add_argument("datasets", nargs="+", choices=DATASETS, metavar="{div2k,benchmarks}")
    parser.add_argument(
        "--root",
        type=Path,
        default=os.environ.get("IPE_DATA_ROOT"),
        help="the folder to fill (data.root; default: $IPE_DATA_ROOT)",
    )
    for dataset, option in URL_OPTION.items():
        parser.add_argument(
            option,
            dest=f"{dataset}_url",
            help=f"base URL of a mirror (or {URL_ENV[dataset]}; default {OFFICIAL_URLS[dataset]})",
        )
    parser.add_argument("--keep-archives", action="store_true", help="keep them in ROOT/downloads")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, fetch nothing")
    return parser


def download(args: argparse.Namespace) -> Path:
    """Carry out the command line ``args``; the root filled."""
    if args.root is None:
        raise UserError("give --root DIR (the folder data.root will name) or set IPE_DATA_ROOT")
    root = Path(args.root).expanduser()
    options = {dataset: getattr(args, f"{dataset}_url") for dataset in DATASETS}
    steps = plan(dict.fromkeys(args.datasets), root, base_urls(options, os.environ))
    print(f"{'plan' if args.dry_run else 'downloading'} into {root}:\n{describe(steps)}")
    if args.dry_run:
        return root
    for step in steps:
        if not step.present:
            target = fetch_and_extract(step, root, keep_archive=args.keep_archives)
            print(f"{step.archive.name} -> {target}")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        root = download(args)
    except KeyboardInterrupt:
        print("download: interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    except (UserError, OSError) as err:  # a full disk, a refused write, an unreachable host
        print(f"download: error: {err}", file=sys.stderr)
        return 2
    if not args.dry_run:
        print(f"done: run with data.root={root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
