"""IPE-LIIF arbitrary-scale super-resolution: models, data, metrics and the Lightning suite.

Importing the package, or any module of it, changes nothing in the process: the entry points
(``run.py``, the sweep jobs, the benchmarks) tune the allocator themselves
(:func:`ipe_lightning.allocator.keep_freed_memory`).
"""

__version__ = "0.1.0"
