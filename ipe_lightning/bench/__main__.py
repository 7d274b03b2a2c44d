"""``python -m ipe_lightning.bench <name> [args]``: run the benchmark module ``<name>``."""

from __future__ import annotations

# First, before a benchmark imports torch: the allocator of a training job (run.py does the same).
from ipe_lightning.allocator import keep_freed_memory

keep_freed_memory()

import importlib  # noqa: E402
import pkgutil  # noqa: E402
import sys  # noqa: E402

import ipe_lightning.bench as package  # noqa: E402


def available() -> list[str]:
    """The benchmark modules in this package: those with ``main(argv) -> int`` (``roofline`` is a
    helper of ``decode``, not a benchmark of its own)."""
    names = [
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.ispkg and not info.name.startswith("_")
    ]
    return sorted(
        name
        for name in names
        if callable(getattr(importlib.import_module(f"{package.__name__}.{name}"), "main", None))
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = available()
    usage = f"usage: python -m ipe_lightning.bench {{{','.join(names)}}} [args]"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"unknown benchmark {name!r}\n{usage}", file=sys.stderr)
        return 2
    return importlib.import_module(f"{package.__name__}.{name}").main(rest)


if __name__ == "__main__":
    sys.exit(main())
