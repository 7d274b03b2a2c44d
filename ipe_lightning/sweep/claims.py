"""Which jobs of a sweep another live process has: a second ``sweep.py`` on one sweep directory
launches only the others.

A job is another process's while it holds either lock:

- the job's run directory lock (``<sweep_dir>/<job>/run.lock``), taken by the job itself while it
  trains or tests (``runtime/lock.py``);
- the job's claim (``<sweep_dir>/.claims/<job>.lock``), taken by the ``sweep.py`` that launched it
  for as long as it waits on it: a job queued on SLURM has no run directory lock yet.

Planning and claiming happen under the sweep directory's own lock (``sweep.lock``), so two sweeps
started together do not both claim a job.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ipe_lightning.runtime.lock import DirectoryInUse, DirectoryLock, Holder
from ipe_lightning.sweep.resume import Decision

CLAIMS_DIR = ".claims"
SWEEP_LOCK_WAIT_S = 120  # another sweep plans on the same directory for at most about this long


def sweep_lock(sweep_dir: Path) -> DirectoryLock:
    return DirectoryLock(sweep_dir, "sweep", what=f"sweep directory {sweep_dir}")


@contextlib.contextmanager
def planning_lock(sweep_dir: Path) -> Iterator[None]:
    """The sweep directory's lock; another sweep planning on it is waited for, and named."""
    lock = sweep_lock(sweep_dir)
    try:
        lock.acquire()
    except DirectoryInUse as busy:
        print(f"[sweep] waiting up to {SWEEP_LOCK_WAIT_S} s: {busy}", file=sys.stderr)
        lock.acquire(timeout=SWEEP_LOCK_WAIT_S)
    try:
        yield
    finally:
        lock.release()


def claim_lock(sweep_dir: Path, job: str) -> DirectoryLock:
    return DirectoryLock(Path(sweep_dir) / CLAIMS_DIR, job, what=f"job {job} of {sweep_dir}")


def holder_of(sweep_dir: Path, job: str) -> Holder | bool:
    """Who runs or launched ``job`` now (``True``: a process that left no record), or ``False``."""
    for lock in (DirectoryLock(Path(sweep_dir) / job, "run"), claim_lock(sweep_dir, job)):
        holder = lock.held_elsewhere()
        if holder:
            return holder
    return False


def defer_held(sweep_dir: Path, decisions: Sequence[Decision]) -> list[Decision]:
    """``decisions`` with those to launch whose job another live process has turned to ``held``."""
    deferred = []
    for decision in decisions:
        holder = holder_of(sweep_dir, decision.name) if decision.action in LAUNCHED else False
        if holder:
            who = holder.describe() if isinstance(holder, Holder) else "a process without record"
            decision = Decision(decision.name, "held", f"run by another process: {who}")
        deferred.append(decision)
    return deferred


LAUNCHED = ("run", "resume", "rerun")


class Claims(contextlib.ExitStack):
    """The claims of the jobs this sweep launches, held until it is done with them."""

    def __init__(self, sweep_dir: Path) -> None:
        super().__init__()
        self.sweep_dir = Path(sweep_dir)

    def take(self, jobs: Iterable[str]) -> tuple[list[str], dict[str, str]]:
        """Claim ``jobs``: those claimed, and those another process claimed first (→ holder)."""
        claimed, held = [], {}
        for job in jobs:
            lock = claim_lock(self.sweep_dir, job)
            try:
                lock.acquire()
            except DirectoryInUse as error:
                held[job] = str(error)
                continue
            self.callback(lock.release)
            claimed.append(job)
        return claimed, held
