"""Whether this process is global rank 0 of its job: the one answer every part asks.

Global rank 0 alone writes the record and ``per_image.csv``, takes the run directory's lock and
has a W&B run; the other DDP ranks run in the same directory and leave those to it.
"""

from __future__ import annotations

import os

# The environment variables that give a process's rank in a DDP job (torchrun's RANK and
# GROUP_RANK, Lightning's launcher's NODE_RANK and LOCAL_RANK, srun's SLURM_PROCID).
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


def is_rank_zero() -> bool:
    """Global rank 0 (a process outside DDP is): every variable of :data:`RANK_VARIABLES` unset
    or ``"0"``, and Lightning's rank ``0`` too (its strategy sets it to the global rank, also in
    processes it starts without those variables)."""
    if any(os.environ.get(name, "0") not in ("", "0") for name in RANK_VARIABLES):
        return False
    from lightning_fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0
