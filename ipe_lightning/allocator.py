"""Keep freed tensor buffers in the process's heap instead of handing them back to the kernel.

A training step frees and reallocates the same large tensors every step. Out of the box glibc
serves each block above its mmap threshold (128 KiB, raised as blocks are freed, to at most
32 MiB) with a fresh ``mmap`` and unmaps it on ``free``, and it trims the top of the heap as soon
as more than the trim threshold lies free there; either way the next step faults every page back
in. Measured on the paper's training step (EDSR-baseline IPE-LIIF, 16 x 48² patches, 2304 queries,
Adam; ``python -m ipe_lightning.bench train``): 0.2-1 M minor page faults and 1.5-2.7 s of system
time per step (beside about 14 s of user time); with the settings below, none to a few thousand
faults and under 0.1 s once the heap has grown to the step's peak.

The settings, and why these two:

- ``M_MMAP_MAX = 0``: no block gets its own mapping, so every buffer comes from the heap and is
  reused there. Raising ``M_MMAP_THRESHOLD`` instead removes the faults as well where glibc
  accepts the value (2.36 here does), but some glibc releases refuse thresholds above
  ``HEAP_MAX_SIZE / 2`` (32 MiB on 64-bit; the step's activations reach 150 MB), and ``mallopt``
  takes an ``int``, so no threshold above 2 GiB; ``M_MMAP_MAX`` has neither limit.
- ``M_TRIM_THRESHOLD = -1``: never trim the heap's top. A finite threshold is a bet on the largest
  batch: 128 MiB and 512 MiB still trimmed (and faulted back) 25-176 k pages in some steps of the
  paper's batch. The price is that a process's heap stays at its peak until it exits, which for a
  training, test or predict job is what the next step or image needs anyway.

How: ``mallopt`` through ``ctypes`` for this process, when an entry point calls
``keep_freed_memory()``: ``run.py`` first thing, before torch is imported, the sweep jobs, and
``python -m ipe_lightning.bench``. Importing ``ipe_lightning`` does not (a notebook or another
program that imports the library keeps its own allocator); where torch came first, the settings
hold for every block allocated after the call. Processes forked from a tuned one (DataLoader
workers) share its settings. A process that execs a new interpreter (DDP ranks started by
Lightning, submitit's local jobs, spawned workers) starts with glibc's defaults, so the same two
settings go into ``os.environ`` too (glibc reads ``MALLOC_MMAP_MAX_`` and
``MALLOC_TRIM_THRESHOLD_`` at start-up, before any Python code runs): DataLoader workers need no
call of their own. Programs other than Python started from our processes get them as well, which
costs them nothing but a heap that does not shrink. One case stays as it was: a block larger than
a thread arena's 64 MiB heap, allocated by a thread other than the main one, still gets its own
mapping (glibc has nowhere else to put it); the training step allocates on the main thread.

Off switch: ``IPE_LIGHTNING_MALLOC_TUNING=0`` (or ``off``, ``false``, ``no``) in the environment
before the process starts leaves glibc and the environment untouched, in this process and in its
children. Malloc settings already in the environment (``MALLOC_MMAP_MAX_``,
``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, or ``glibc.malloc``
tunables in ``GLIBC_TUNABLES``) win: glibc applied them at start-up and nothing here overrides
them. Other C libraries (musl, macOS, Windows) are left alone. Pure Python: no torch here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field

SWITCH = "IPE_LIGHTNING_MALLOC_TUNING"
_OFF_VALUES = ("0", "off", "false", "no")

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_SETTINGS = {"M_MMAP_MAX": (M_MMAP_MAX, 0), "M_TRIM_THRESHOLD": (M_TRIM_THRESHOLD, -1)}

# The environment equivalents of the settings above. glibc reads the trim threshold as a size_t
# and refuses values above its maximum, so "never" is SIZE_MAX (what mallopt's -1 becomes).
_SIZE_MAX = 2 * sys.maxsize + 1
CHILD_ENVIRONMENT = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(_SIZE_MAX)}
_MALLOC_ENVIRONMENT = (*CHILD_ENVIRONMENT, "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")


@dataclass(frozen=True)
class Tuning:
    """What ``keep_freed_memory`` did in this process.

    ``state``: ``"mallopt"`` (set here, and in ``os.environ`` for children), ``"environment"``
    (malloc settings came with the environment; glibc applied them at start-up), ``"off"`` (the
    switch), ``"unsupported"`` (not glibc), or ``"failed"`` (glibc refused a setting; nothing set
    for children). ``libc``: e.g. ``"glibc 2.36"``. ``mallopt``: each setting's return value
    (1 = accepted, 0 = refused).
    """

    state: str
    libc: str | None = None
    mallopt: dict[str, int] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Whether this process runs with malloc settings other than glibc's defaults."""
        return self.state in ("mallopt", "environment")


def switched_off(environ: Mapping[str, str]) -> bool:
    return environ.get(SWITCH, "").strip().lower() in _OFF_VALUES


def malloc_settings_in(environ: Mapping[str, str]) -> bool:
    """Whether the environment carries malloc settings already (a parent's or the user's)."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    return any(name in environ for name in _MALLOC_ENVIRONMENT) or "glibc.malloc." in tunables


def glibc_version() -> str | None:
    """``"glibc 2.36"`` when this process runs on glibc, else ``None``.

    ``confstr`` answers without loading anything; musl and macOS do not know the name
    (``ValueError``), Windows has no ``confstr``.
    """
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None
    return version if version and version.startswith("glibc") else None


def _mallopt():
    """glibc's ``mallopt(int, int) -> int``, looked up in the running process."""
    import ctypes

    function = ctypes.CDLL(None).mallopt
    function.argtypes = [ctypes.c_int, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


def _tune(environ: MutableMapping[str, str]) -> Tuning:
    if switched_off(environ):
        return Tuning("off")
    libc = glibc_version()
    if libc is None:
        return Tuning("unsupported")
    if malloc_settings_in(environ):
        return Tuning("environment", libc)
    mallopt = _mallopt()
    results = {name: mallopt(param, value) for name, (param, value) in _SETTINGS.items()}
    if not all(results.values()):
        return Tuning("failed", libc, results)
    environ.update(CHILD_ENVIRONMENT)
    return Tuning("mallopt", libc, results)


_done: Tuning | None = None


def keep_freed_memory() -> Tuning:
    """Apply the settings above to this process and its future children, once; never raises.

    Later calls return the first call's answer: the settings are per process and already set.
    """
    global _done
    if _done is None:
        try:
            _done = _tune(os.environ)
        except Exception:  # a helper run first thing must not stop the program
            _done = Tuning("failed", glibc_version())
    return _done


def tuning() -> Tuning | None:
    """What :func:`keep_freed_memory` did in this process, or ``None`` if nothing called it."""
    return _done


def child_environment(tuned: bool, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a fresh Python process that applies the tuning itself (``tuned``) or
    runs with glibc's defaults, whatever this process did: the malloc variables are dropped, and
    the switch is cleared or set to ``0``. For comparing the two in one benchmark run."""
    env = {
        name: value
        for name, value in (os.environ if environ is None else environ).items()
        if name not in _MALLOC_ENVIRONMENT and name != SWITCH
    }
    if not tuned:
        env[SWITCH] = "0"
    return env
