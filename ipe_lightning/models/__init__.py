"""Encoders, coordinate encodings, decoder MLPs, LIIF decoders and the implicit heads (LIIF
family, MetaSR, LTE), the fixed-scale networks and the grid decoders (SRNO)."""

from ipe_lightning.models.base import ImplicitSR
from ipe_lightning.models.checkpoint import (
    NetworkInfo,
    from_liif_checkpoint,
    load_network,
    load_weights_only,
    read_checkpoint,
    upgrade_network_config,
)
from ipe_lightning.models.decoders import FastDecoder, NaiveDecoder
from ipe_lightning.models.encoders import RDN, EDSRBaseline
from ipe_lightning.models.encodings import IPE, PE, Cell, IPECell, MetaPlain, NoEncoding
from ipe_lightning.models.fixed_scale import FixedScaleSR
from ipe_lightning.models.galerkin import GalerkinAttention, GridSR
from ipe_lightning.models.liif import LIIF
from ipe_lightning.models.lte import LTE, IntegratedBasis, PointBasis
from ipe_lightning.models.metasr import MetaSR
from ipe_lightning.models.mlp import PlainMLP, SkipMLP
from ipe_lightning.models.srno import SRNO

__all__ = [
    "IPE",
    "LIIF",
    "LTE",
    "PE",
    "RDN",
    "SRNO",
    "Cell",
    "EDSRBaseline",
    "FastDecoder",
    "FixedScaleSR",
    "GalerkinAttention",
    "GridSR",
    "IPECell",
    "ImplicitSR",
    "IntegratedBasis",
    "MetaPlain",
    "MetaSR",
    "NaiveDecoder",
    "NetworkInfo",
    "NoEncoding",
    "PlainMLP",
    "PointBasis",
    "SkipMLP",
    "from_liif_checkpoint",
    "load_network",
    "load_weights_only",
    "read_checkpoint",
    "upgrade_network_config",
]
