"""Encoders, coordinate encodings, decoder MLPs and the implicit heads (LIIF family, MetaSR)."""

from ipe_lightning.models.base import ImplicitSR
from ipe_lightning.models.checkpoint import (
    from_liif_checkpoint,
    load_network,
    load_weights_only,
    read_checkpoint,
)
from ipe_lightning.models.encoders import RDN, EDSRBaseline
from ipe_lightning.models.liif import LIIF
from ipe_lightning.models.metasr import MetaSR

__all__ = [
    "LIIF",
    "RDN",
    "EDSRBaseline",
    "ImplicitSR",
    "MetaSR",
    "from_liif_checkpoint",
    "load_network",
    "load_weights_only",
    "read_checkpoint",
]
