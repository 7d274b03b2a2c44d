"""SRNO (Wei & Zhang, CVPR 2023) and IPE-SRNO: the super-resolution neural operator, a grid decoder.

As the SRNO code base (github 2y7c3/Super-Resolution-Neural-Operator, ``models/sronet.py`` and
``models/galerkin.py``), docs/method.md §2.11:

- the lifting: per query, LIIF's four ensemble branches (shifts, lookup, area weights) give four
  relative coordinates and four features, each feature weighted by the opposite branch's area;
  ``[c_0..c_3, w_0 z_0..w_3 z_3, rel_cell]`` is projected to ``width`` channels (a 1x1 conv there,
  a linear map here);
- two Galerkin attention blocks over all queries decoded together
  (:class:`~ipe_lightning.models.galerkin.GalerkinAttention`, 16 heads);
- a GELU head ``width → 256 → 3``, plus the LR image sampled bilinearly (border padding).

IPE-SRNO replaces each relative coordinate by its integrated positional encoding over the query
pixel (the coordinate encoding part of IPE-LIIF, ``encoding(c_t, rel_cell / 2)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ipe_lightning.models.base import check_lr
from ipe_lightning.models.encodings import CoordinateEncoding, NoEncoding
from ipe_lightning.models.galerkin import GalerkinAttention, GridSR
from ipe_lightning.models.grid import LatentGrid, Window, window_table
from ipe_lightning.models.lookup import ensemble_lookup, ensemble_weights, take_rows
from ipe_lightning.models.lte import bilinear_taps, split_features_and_image

# SRNO code (configs/train_edsr-sronet.yaml, models/sronet.py): width 256, 16 heads ("blocks"),
# two attention blocks, a 256-wide head.
SRNO_WIDTH, SRNO_HEADS, SRNO_DEPTH, SRNO_HEAD_HIDDEN = 256, 16, 2, 256
_WHOLE: Window = (slice(None), slice(None))
# SRNO's coordinate input: each branch's relative coordinate itself.
RELATIVE_COORDINATE = NoEncoding()


def lifting_input(
    features: torch.Tensor,
    size: tuple[int, int],
    coord: torch.Tensor,
    cell: torch.Tensor,
    encoding: CoordinateEncoding = RELATIVE_COORDINATE,
    cell_input: bool = True,
) -> torch.Tensor:
    """SRNO's lifting input ``(B, Q, 4 E + 4 C [+ 2])`` of queries ``coord``/``cell (B, Q, 2)``.

    ``features (B, h * w, C)`` is the row-major table of an ``h x w = size`` LR grid. Branch ``t``
    of the local ensemble (docs/method.md §2.5) gives ``enc_t = encoding(c_t, rel_cell / 2)``
    (``E`` values; ``c_t`` itself for SRNO) and ``w_t z_t``, its feature times the area of the
    opposite branch; the order is ``[enc_0..enc_3, w_0 z_0..w_3 z_3, rel_cell]`` as the SRNO code's
    channels, with ``rel_cell = cell · (h, w)`` last when ``cell_input``.
    """
    rel_cell = cell * coord.new_tensor(size)
    indices, rel_coords = ensemble_lookup(coord, size, local_ensemble=True)
    weights = ensemble_weights(rel_coords)
    codes = [encoding(rel, rel_cell / 2) for rel in rel_coords]
    latents = [
        w.unsqueeze(-1) * take_rows(features, i) for w, i in zip(weights, indices, strict=True)
    ]
    return torch.cat([*codes, *latents, *([rel_cell] if cell_input else [])], dim=-1)


def bilinear_image(image: torch.Tensor, size: tuple[int, int], coord: torch.Tensor) -> torch.Tensor:
    """The LR image table ``(B, h * w, 3)`` sampled bilinearly at ``coord``, border padding."""
    index, weight = bilinear_taps(coord, size)
    return sum(w.unsqueeze(-1) * take_rows(image, i) for w, i in zip(weight, index, strict=True))


class SRNO(GridSR):
    """Super-resolution neural operator: lifting, Galerkin attention over the grid, GELU head.

    ``encode`` returns the encoder's channels followed by the normalised LR image (the bilinear
    term reads it). ``encoding`` encodes each branch's relative coordinate (SRNO:
    :class:`~ipe_lightning.models.encodings.NoEncoding`, the coordinate itself; IPE-SRNO:
    :class:`~ipe_lightning.models.encodings.IPE`); ``cell_input`` appends ``rel_cell`` to the
    lifting input, as SRNO does. ``heads`` is the SRNO code's ``blocks``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        width: int = SRNO_WIDTH,
        heads: int = SRNO_HEADS,
        depth: int = SRNO_DEPTH,
        head_hidden: int = SRNO_HEAD_HIDDEN,
        encoding: CoordinateEncoding = RELATIVE_COORDINATE,
        cell_input: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoding = encoding
        self.cell_input = bool(cell_input)
        lifted = 4 * encoding.width + 4 * encoder.out_dim + (2 if self.cell_input else 0)
        self.lifting = nn.Linear(lifted, width)
        self.blocks = nn.ModuleList(GalerkinAttention(width, heads) for _ in range(depth))
        self.rgb_head = nn.Sequential(
            nn.Linear(width, head_hidden), nn.GELU(), nn.Linear(head_hidden, 3)
        )

    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        """``(B, C + 3, h, w)``: the encoder's features and the normalised ``lr`` itself."""
        check_lr(lr)
        return torch.cat([self.encoder(lr), lr], dim=1)

    def tables(self, feat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The features ``(B, h * w, C)`` and the LR image ``(B, h * w, 3)``."""
        features, image = split_features_and_image(feat, self.encoder.out_dim, "SRNO")
        return window_table(features, _WHOLE), window_table(image, _WHOLE)

    def lift(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        inputs = lifting_input(
            grid.tables[0], grid.lr_size, coord, cell, self.encoding, self.cell_input
        )
        return self.lifting(inputs)

    def readout(
        self, x: torch.Tensor, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor
    ) -> torch.Tensor:
        return self.rgb_head(x) + bilinear_image(grid.tables[1], grid.lr_size, coord)


# ---------------------------------------------------------------- official checkpoints

_TARGET = f"{__name__}.SRNO"
# SRNO code module names → ours. Its head modules are 1x1 convolutions: weights (out, in, 1, 1).
_HEAD_NAMES = {"conv00": "lifting", "fc1": "rgb_head.0", "fc2": "rgb_head.2"}
_BLOCK_NAMES = {
    "qkv_proj": "qkv",
    "kln": "key_norm",
    "vln": "value_norm",
    "o_proj1": "mix.0",
    "o_proj2": "mix.2",
}
_OFFICIAL_BLOCKS = ("conv0", "conv1")  # SRNO code: self.conv0, self.conv1 (conv2, conv3 unused)
# Mean-shift convolutions of the EDSR code; unused without the upsampling tail.
_MEAN_SHIFTS = ("encoder.sub_mean.", "encoder.add_mean.")


def srno_key(key: str) -> str:
    """Our state-dict key for an SRNO code-base key (``conv0.kln.weight`` → ``blocks.0.key_norm
    .weight``); encoder keys and keys of no known module are returned unchanged."""
    module, _, rest = key.partition(".")
    if module in _HEAD_NAMES:
        return f"{_HEAD_NAMES[module]}.{rest}"
    if module in _OFFICIAL_BLOCKS:
        part, _, leaf = rest.partition(".")
        if part in _BLOCK_NAMES:
            return f"blocks.{_OFFICIAL_BLOCKS.index(module)}.{_BLOCK_NAMES[part]}.{leaf}"
    return key


def srno_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An SRNO code-base ``sd`` in our layout: keys renamed (:func:`srno_key`), the 1x1
    convolutions' weights ``(out, in, 1, 1)`` flattened to linear weights ``(out, in)``, EDSR's
    unused mean shifts dropped."""
    ours = {}
    for key, value in state.items():
        if key.startswith(_MEAN_SHIFTS):
            continue
        is_head_conv = not key.startswith("encoder.") and value.dim() == 4
        ours[srno_key(key)] = value.flatten(1) if is_head_conv else value
    return ours


def srno_network_config(args: Mapping[str, Any], encoder: Mapping[str, Any]) -> dict[str, Any]:
    """Our network config for the ``args`` of an SRNO code-base ``sronet`` model.

    ``encoder`` is our config of its ``encoder_spec`` (as for LIIF checkpoints). Its ``width``
    is ours, its ``blocks`` our ``heads``; depth 2, the 256-wide head, the plain relative
    coordinate and the cell are fixed in its code.
    """
    return {
        "_target_": _TARGET,
        "encoder": dict(encoder),
        "width": int(args.get("width", SRNO_WIDTH)),
        "heads": int(args.get("blocks", SRNO_HEADS)),
        "depth": SRNO_DEPTH,
        "head_hidden": SRNO_HEAD_HIDDEN,
        "encoding": {"_target_": f"{NoEncoding.__module__}.NoEncoding"},
        "cell_input": True,
    }
