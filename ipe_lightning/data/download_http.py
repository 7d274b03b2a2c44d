"""One file fetched over HTTP(S) so that a dropped connection costs nothing: rerun, and it resumes.

- The bytes go to ``<name>.part``; a rerun asks for the rest (``Range: bytes=<have>-``, HTTP 206).
  A server that ignores the range (200) is read again from the start.
- ``<name>.part`` becomes ``<name>`` only once it has every byte the server announced.
- Progress (:class:`Progress`): on a terminal one line redrawn in place; in a log (a SLURM job, a
  pipe) a plain line at every 10 %.
- Failures are one line each, user errors (exit 2): an unreachable host or an HTTP error
  (:class:`NetworkError`), a connection cut short (run again to resume), a full disk
  (:class:`~ipe_lightning.data.archives.DiskFullError`).
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO
from urllib.parse import urlsplit

from ipe_lightning.data.archives import DiskFullError
from ipe_lightning.errors import UserError

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60  # per socket operation: a stalled server is an error, not a hang


class NetworkError(UserError):
    """A host that cannot be reached, an HTTP error, or a connection cut short."""


@dataclass(frozen=True)
class Fetched:
    """A complete file: its path, size, SHA-256, how many bytes an earlier run had fetched, and
    whether the server announced the size it was checked against."""

    path: Path
    size: int
    sha256: str
    resumed_from: int
    announced: bool


def human_bytes(count: float) -> str:
    """``3.5 GB``, ``925.4 MB``, ``12 B`` (decimal units, as servers and browsers show sizes)."""
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """A download's progress on ``stream``: a bar redrawn in place on a terminal (``tty``), else
    one plain line at every 10 % (or every 30 s when the size is unknown), for logs."""

    def __init__(
        self, name: str, total: int | None, start: int = 0, *, stream: IO[str] | None = None
    ) -> None:
        self.name, self.total, self.start = name, total, start
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.began = self.last = time.monotonic()
        self.next_tenth = (start * 10 // total + 1) if total else 0
        if start:
            self._say(f"{name}: resuming at {human_bytes(start)}")

    def _say(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def _status(self, done: int, now: float) -> str:
        rate = (done - self.start) / max(now - self.began, 1e-9)
        if not self.total:
            return f"{human_bytes(done)}, {human_bytes(rate)}/s"
        eta = (self.total - done) / rate if rate > 0 else 0
        return (
            f"{100 * done // self.total:3d}% of {human_bytes(self.total)}, "
            f"{human_bytes(rate)}/s, ETA {_duration(eta)}"
        )

    def update(self, done: int) -> None:
        """Report ``done`` bytes of the file so far."""
        now = time.monotonic()
        if self.tty:
            if now - self.last >= 0.2:
                self.last = now
                bar = "#" * (30 * done // self.total) if self.total else ""
                self.stream.write(f"\r{self.name} [{bar:<30}] {self._status(done, now)}  ")
                self.stream.flush()
        elif self.total and done * 10 >= self.next_tenth * self.total:
            self.next_tenth = done * 10 // self.total + 1
            self._say(f"{self.name}: {self._status(done, now)}")
        elif not self.total and now - self.last >= 30:
            self.last = now
            self._say(f"{self.name}: {self._status(done, now)}")

    def finish(self, done: int) -> None:
        """The closing line: the size and the time taken."""
        took = _duration(time.monotonic() - self.began)
        self._say(f"{chr(13) if self.tty else ''}{self.name}: {human_bytes(done)} in {took}")


def _open(url: str, start: int, unreachable_hint: str) -> http.client.HTTPResponse:
    headers = {"User-Agent": "ipe-lightning", **({"Range": f"bytes={start}-"} if start else {})}
    try:
        return urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S
        )
    except urllib.error.HTTPError as err:
        if err.code == 416:  # the range starts at the end: the .part file is already whole
            return err  # type: ignore[return-value]
        raise NetworkError(f"{url} answered HTTP {err.code} {err.reason}") from err
    except (OSError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", None) or err
        host = urlsplit(url).netloc
        raise NetworkError(f"cannot reach {host} ({reason}){unreachable_hint}") from err


_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


def _range_of(response: http.client.HTTPResponse, have: int) -> tuple[int, int | None]:
    """``(first byte sent, total size or None)`` of a 200, 206 or 416 answer."""
    if response.status == 416:
        match = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("Content-Range", ""))
        return (have, int(match.group(1))) if match else (0, None)
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
        if match:
            total = None if match.group(2) == "*" else int(match.group(2))
            return int(match.group(1)), total
    length = response.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def _hash_of(path: Path, length: int) -> hashlib._Hash:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while length > 0 and (block := handle.read(min(CHUNK_BYTES, length))):
            digest.update(block)
            length -= len(block)
    return digest


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """A :class:`DiskFullError` now, rather than after hours, when ``folder``'s disk has less
    than ``needed`` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DiskFullError(
            f"not enough free space in {folder} for {what}: it needs about "
            f"{human_bytes(needed)}, {human_bytes(free)} are free; free some space, or download "
            "into another --root"
        )


def write_chunk(handle: BinaryIO, chunk: bytes) -> None:
    """Append ``chunk`` (one place for every write, so a full disk is told the same way)."""
    handle.write(chunk)


def _stream(
    response: http.client.HTTPResponse,
    part: Path,
    have: int,
    digest: hashlib._Hash,
    progress: Progress,
) -> int:
    """Append the response body to ``part`` (which holds ``have`` bytes) and to ``digest``; the
    bytes ``part`` then holds. A cut connection just ends the body: the caller checks the size."""
    try:
        with part.open("ab" if have else "wb") as handle:
            while True:
                try:
                    chunk = response.read(CHUNK_BYTES)
                except (OSError, http.client.HTTPException):
                    break
                if not chunk:
                    break
                write_chunk(handle, chunk)
                digest.update(chunk)
                have += len(chunk)
                progress.update(have)
    except OSError as err:  # the write or the final flush
        if err.errno == errno.ENOSPC:
            raise DiskFullError(
                f"no space left on the device while writing {part}: free some space and run "
                "the same command again (it resumes), or download into another --root"
            ) from err
        raise
    return have


def fetch(
    url: str,
    dest: Path,
    *,
    expected_size: int | None = None,
    room_factor: float = 0.0,
    unreachable_hint: str = "",
    stream: IO[str] | None = None,
) -> Fetched:
    """Download ``url`` to ``dest``, resuming ``dest.part`` (module docstring).

    ``expected_size``: the published size, checked against what the server announces.
    ``room_factor``: room needed on the disk beyond the download, as a multiple of its size (its
    extraction), checked before the first byte is fetched. A ``dest`` already there is an
    earlier complete download.
    """
    if dest.is_file():  # renamed from .part only once it held every announced byte
        size = dest.stat().st_size
        return Fetched(dest, size, _hash_of(dest, size).hexdigest(), size, announced=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    response = _open(url, have, unreachable_hint)
    try:
        first, total = _range_of(response, have)
        if response.status == 416 and total is None:  # cannot tell what the .part holds
            part.unlink()
            return fetch(
                url,
                dest,
                expected_size=expected_size,
                room_factor=room_factor,
                unreachable_hint=unreachable_hint,
                stream=stream,
            )
        have = have if first == have else 0  # a server that ignores the range sends it all
        if expected_size is not None and total is not None and total != expected_size:
            raise NetworkError(
                f"{url} is {total} bytes, but {dest.name} was published with {expected_size}: "
                "not the published file (a changed server, or a wrong --*-url)"
            )
        if total is not None:
            needed = total - have + round(room_factor * total)
            check_free_space(dest.parent, needed, dest.name)
        resumed_from = have
        digest = _hash_of(part, have) if have else hashlib.sha256()
        progress = Progress(dest.name, total, have, stream=stream)
        if response.status != 416:
            have = _stream(response, part, have, digest, progress)
    finally:
        response.close()
    if total is not None and have != total:
        raise NetworkError(
            f"the download of {dest.name} stopped at {human_bytes(have)} of "
            f"{human_bytes(total)} (connection lost): run the same command again to resume"
        )
    progress.finish(have)
    part.replace(dest)
    return Fetched(dest, have, digest.hexdigest(), resumed_from, announced=total is not None)
