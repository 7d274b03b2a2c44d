"""One writer per directory: a run directory (``run.py``, a sweep's job) or a sweep directory.

The lock is ``filelock``'s (``flock`` on POSIX): the kernel drops it when its holder dies, however
it dies (``kill -9``, a node lost), so a dead holder never blocks the next run. Beside the lock
file, ``<name>.lock.json`` names the holder (pid, host, when it started, its command line), so a
second writer is told who has the directory. That record outlives a killed holder; it is only
read while the lock is held, and a record whose process is gone (same host, the pid no longer
running the process that wrote it) is called stale in the message: then a process the holder
started (a DataLoader worker, a DDP rank) still holds the lock.

Only global rank 0 of a job takes the run directory's lock: the other DDP ranks run in the same
directory by design (``runtime/ddp.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from ipe_lightning.runtime.rank import is_rank_zero


@dataclass(frozen=True)
class Holder:
    """Who holds a directory's lock, as it wrote it down."""

    pid: int
    host: str
    started: float  # time.time() when it took the lock
    process_start: str | None = None  # /proc/<pid>/stat start time: tells a reused pid apart
    command: str = ""

    def alive(self) -> bool | None:
        """Whether the process that wrote this is still running (``None``: another host)."""
        if self.host != socket.gethostname():
            return None
        return process_start_time(self.pid) == self.process_start and _pid_exists(self.pid)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        text = f"pid {self.pid} on {self.host} since {when}"
        if self.command:
            text += f" ({self.command})"
        if self.alive() is False:
            text += "; that process is gone, so a process it started still holds the lock"
        return text


class DirectoryInUse(RuntimeError):
    """Another live process holds the directory's lock."""

    def __init__(self, subject: str, holder: Holder | None) -> None:
        self.holder = holder
        who = holder.describe() if holder else "a process that left no record of itself"
        super().__init__(f"{subject} is in use by {who}")


class RunDirectoryInUse(SystemExit):
    """``run.py`` on a run directory another process writes: exit status 2, after the message.

    A ``SystemExit`` so that no failure handler records ``metrics.json`` in a directory that
    belongs to the other process."""

    def __init__(self, error: DirectoryInUse) -> None:
        super().__init__(2)
        self.error = error


def current_holder() -> Holder:
    return Holder(
        pid=os.getpid(),
        host=socket.gethostname(),
        started=time.time(),
        process_start=process_start_time(os.getpid()),
        command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300] if sys.argv else "",
    )


def process_start_time(pid: int) -> str | None:
    """Field 22 of ``/proc/<pid>/stat`` (Linux): with the pid, it names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class DirectoryLock:
    """The lock of ``directory`` (``<directory>/<name>.lock``, holder in ``<name>.lock.json``)."""

    def __init__(self, directory: str | Path, name: str = "run", what: str | None = None) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"{name}.lock"
        self.record = self.directory / f"{name}.lock.json"
        self.what = what or f"directory {self.directory}"  # who is refused is told this
        self._lock: FileLock | None = None

    def holder(self) -> Holder | None:
        try:
            return Holder(**json.loads(self.record.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def held_elsewhere(self) -> Holder | bool:
        """The holder if another process holds the lock now (``True`` if it left no record),
        else ``False``; takes and drops the lock to find out."""
        if not self.path.exists():
            return False
        try:
            self.acquire()
        except DirectoryInUse as error:
            return error.holder or True
        self.release()
        return False

    def acquire(self, timeout: float = 0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; ``DirectoryInUse`` naming the holder
        if it stays held."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.path), timeout=timeout)
        try:
            lock.acquire()
        except Timeout:
            raise DirectoryInUse(self.what, self.holder()) from None
        self._lock = lock
        with contextlib.suppress(OSError):
            self.record.write_text(json.dumps(asdict(current_holder())))

    def release(self) -> None:
        if self._lock is None:
            return
        with contextlib.suppress(OSError):
            self.record.unlink()
        self._lock.release()
        self._lock = None

    @contextlib.contextmanager
    def held(self, timeout: float = 0) -> Iterator[DirectoryLock]:
        self.acquire(timeout)
        try:
            yield self
        finally:
            self.release()


@contextlib.contextmanager
def run_directory_lock(output_dir: str | Path) -> Iterator[None]:
    """Hold ``output_dir``'s lock for a train/test job (global rank 0 only; module doc). A second
    job on the same directory prints who holds it and exits with status 2."""
    if not is_rank_zero():
        yield
        return
    lock = DirectoryLock(output_dir, "run", what=f"run directory {output_dir}")
    try:
        lock.acquire()
    except DirectoryInUse as error:
        print(f"[ipe-lightning] {error}; not starting a second writer.", file=sys.stderr)
        raise RunDirectoryInUse(error) from None
    try:
        yield
    finally:
        lock.release()
