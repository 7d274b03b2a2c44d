"""A decoded-image cache: decode a file once, memory-map the pixels on every later read.

A 2K PNG takes tens of milliseconds to decode, while a training sample only needs a 48·s crop of
it; reading the crop from a memory-mapped ``.npy`` file keeps the dataloader off the CPU budget.

Entries are ``<key>.npy`` files (RGB uint8 ``(H, W, 3)``, after :func:`decode_rgb`). The key hashes
the absolute path, the size and the modification time (ns) of the source, so an edited file is
re-decoded; the old entry is left behind, unused (delete the cache directory to reclaim space).

Several dataloader workers and DDP ranks may fill the cache at the same time. A writer writes a
private temporary file in the cache directory and publishes it with ``os.replace`` (atomic on POSIX
and Windows), so a reader sees either no entry or a complete one, and two writers of the same entry
publish identical bytes. A writer killed mid-write leaves only its ``*.tmp`` file, which no reader
looks at and :meth:`DecodedCache.remove_stale_temp_files` deletes later.

:meth:`DecodedCache.verify` is the data module's setup scan when the cache is on: it decodes every
file that has no entry yet (in a thread pool: Pillow and zlib release the GIL while decoding), so
pixel data cut short is found before training, and the decode is paid once, not at every setup.
A failed write to the cache is a :class:`CacheWriteError` naming the entry and the way out, never
mistaken for a bad image.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import platformdirs

from ipe_lightning.data.images import ScanResult, decode_rgb, scan_images

# Part of every key: bump it when decode_rgb changes what it returns, so old entries go unused.
DECODER_VERSION = 1

_TEMP_SUFFIX = ".tmp"

# Decoding threads of verify(); more than a few mostly wait on the disk.
MAX_VERIFY_WORKERS = 8


class CacheWriteError(OSError):
    """The decoded cache could not be written (read-only or full directory, ...).

    The message names the entry, the source image, the errno and the settings that avoid it.
    """


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_cache_dir() -> Path:
    """``<user cache dir>/ipe-lightning/decoded`` (``~/.cache/...`` on Linux)."""
    return Path(platformdirs.user_cache_dir("ipe-lightning")) / "decoded"


def cache_key(path: str | Path) -> str:
    """Hex key of the file's absolute path, size and mtime (ns), and the decoder version."""
    path = Path(path).resolve()
    stat = path.stat()
    identity = f"v{DECODER_VERSION}\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(identity.encode()).hexdigest()[:40]


def write_atomic(target: Path, pixels: np.ndarray) -> None:
    """Write ``pixels`` as ``.npy`` to ``target`` via a temporary file and ``os.replace``."""
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=target.stem, suffix=_TEMP_SUFFIX)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, pixels, allow_pickle=False)
            stream.flush()
            # Without fsync a power loss after the rename could publish an empty file.
            os.fsync(stream.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes 0600; a shared cache_dir must stay readable
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class DecodedCache:
    """``cache(path)`` → read-only RGB uint8 ``(H, W, 3)`` memmap, equal to ``decode(path)``.

    Picklable, so dataloader workers get their own copy. ``decode`` must be a module-level function.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        decode: Callable[[Path], np.ndarray] = decode_rgb,
    ) -> None:
        self.directory = Path(directory).expanduser() if directory else default_cache_dir()
        self.decode = decode

    def entry_path(self, path: str | Path) -> Path:
        """Where the entry for ``path`` (in its current version) lives."""
        return self.directory / f"{cache_key(path)}.npy"

    def __call__(self, path: str | Path) -> np.ndarray:
        return self.load(path)

    def load(self, path: str | Path) -> np.ndarray:
        """Memory-map the entry for ``path``, decoding and publishing it first if there is none."""
        entry = self.entry_path(path)
        try:
            return np.load(entry, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, EOFError):
            # Unreadable entry: not written by us (our writes are atomic), e.g. a copy cut short
            # by a full disk. Decoding again and replacing it is always safe.
            pass
        pixels = self.decode(Path(path))
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomic(entry, pixels)
        except OSError as err:
            code = f"errno {err.errno} ({os.strerror(err.errno)})" if err.errno else str(err)
            failure = CacheWriteError(
                f"could not write the decoded cache entry {entry} for {path}: {code}. "
                "Set data.cache_dir=<a writable folder>, or data.cache=false to decode the "
                "images at every read instead"
            )
            failure.errno = err.errno
            raise failure from err
        return np.load(entry, mmap_mode="r", allow_pickle=False)

    def verify(self, paths: Iterable[str | Path], workers: int | None = None) -> ScanResult:
        """A header scan, then a full decode into the cache of every file that passed it.

        Sizes are those of the header scan (as stored, before EXIF orientation). A file whose
        pixels cannot be decoded (truncated, corrupt) moves to ``bad`` with the reason; a file
        that already has an entry is not decoded again. A :class:`CacheWriteError` is raised, not
        recorded: the image is fine, the cache directory is not. ``workers`` decoding threads
        (default: the available CPUs, at most :data:`MAX_VERIFY_WORKERS`).
        """
        found = scan_images(paths)
        readable = list(found.sizes)
        workers = workers or min(MAX_VERIFY_WORKERS, _available_cpus())
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(readable) or 1))) as pool:
            errors = list(pool.map(self._decode_error, readable))
        for path, error in zip(readable, errors, strict=True):
            if error is not None:
                del found.sizes[path]
                found.bad[path] = error
        return found

    def _decode_error(self, path: Path) -> str | None:
        """``None`` once ``path`` has an entry, else why its pixels could not be decoded."""
        try:
            self.load(path)
        except CacheWriteError:
            raise
        except Exception as err:  # any decoding failure makes the file "bad"
            return f"{type(err).__name__}: {err}"
        return None

    def remove_stale_temp_files(self, older_than_s: float = 3600.0) -> list[Path]:
        """Delete ``*.tmp`` files left by killed writers; returns what was removed.

        Only files older than ``older_than_s`` are touched, so a writer still at work in another
        process keeps its file.
        """
        if not self.directory.is_dir():
            return []
        now = time.time()
        removed = []
        for temp in self.directory.glob(f"*{_TEMP_SUFFIX}"):
            try:
                if now - temp.stat().st_mtime > older_than_s:
                    temp.unlink()
                    removed.append(temp)
            except FileNotFoundError:  # another process removed it first
                continue
        return removed
