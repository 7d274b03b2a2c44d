"""Files that are replaced whole: a reader, or a rerun after a kill or a full disk, sees the old
content or the new, never a torn mix.

The new content goes to a temporary file *in the destination directory* (so the final rename
never crosses filesystems: a cross-device move is a copy that truncates the destination first),
is flushed to the disk (``fsync``), and only then renamed over the destination (``os.replace``,
atomic on POSIX). A write that fails removes its temporary file and leaves the destination as it
was. The temporary file is created with mode ``0o666`` less the umask, so the result has the
permissions any other new file would have (``tempfile`` makes them ``0o600``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

# `.<name>.<pid>-<random>.tmp`: hidden, and told apart from every file of ours by the pattern.
_TEMPORARY_SUFFIX = ".tmp"


def temporary_path(path: Path) -> Path:
    """A fresh temporary name beside ``path`` (``.<name>.<pid>-<random>.tmp``)."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return path.with_name(f".{path.name}.{token}{_TEMPORARY_SUFFIX}")


def leftover_temporaries(directory: str | os.PathLike, name: str = "*") -> list[Path]:
    """Temporary files of :func:`atomic_open` that a killed writer left in ``directory`` (for
    destinations matching the glob ``name``)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f".{name}.*-*{_TEMPORARY_SUFFIX}"))


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; some filesystems cannot open or sync a directory."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _keep_previous(path: Path, previous: Path) -> None:
    """``previous`` becomes the current ``path`` (a hard link: ``path`` stays in place)."""
    if not path.is_file():
        return
    link = temporary_path(previous)
    try:
        os.link(path, link)
    except OSError:  # a filesystem without hard links: copy-free fallback, a moment without path
        os.replace(path, previous)
        return
    os.replace(link, previous)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike,
    mode: str = "w",
    *,
    previous: str | os.PathLike | None = None,
    **open_kwargs: Any,
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on a clean exit it replaces ``path``.

    ``mode``: ``"w"`` or ``"wb"`` (and ``open``'s other keywords: ``newline``, ``encoding``).
    ``previous``: where the file that is being replaced is kept (e.g. ``last.prev.ckpt``),
    swapped in only once the new content is complete.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temporary = temporary_path(path)
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # pragma: no cover (a clash of random names)
            continue
    try:
        with os.fdopen(descriptor, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if previous is not None:
            _keep_previous(path, Path(previous))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)


def write_text_atomic(path: str | os.PathLike, text: str, **open_kwargs: Any) -> None:
    """Write ``text`` to ``path`` with :func:`atomic_open`."""
    with atomic_open(path, "w", **open_kwargs) as handle:
        handle.write(text)


def savefig_atomic(figure: Any, path: str | os.PathLike, **savefig: Any) -> None:
    """A matplotlib ``figure.savefig`` to ``path`` through :func:`atomic_open`, in the format its
    suffix names (``.png``, ``.pdf``): a kill or a full disk never leaves a torn picture."""
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format=path.suffix.lstrip("."), **savefig)
