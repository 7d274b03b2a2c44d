"""IPE-LIIF arbitrary-scale super-resolution: models, data, metrics and the Lightning suite."""

# First, before any module of the package imports torch: every process that imports
# ipe_lightning (run.py, sweep jobs, spawned DataLoader workers, the benchmarks) keeps its freed
# tensor buffers instead of faulting them back in each step. IPE_LIGHTNING_MALLOC_TUNING=0 turns
# it off; see allocator.py.
from ipe_lightning.allocator import keep_freed_memory

keep_freed_memory()

__version__ = "0.1.0"
