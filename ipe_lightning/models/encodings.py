"""Coordinate encodings of the implicit decoder (METHOD.md §2, paper Eqs. 3-7).

Pure functions of the relative coordinate ``c`` (``(..., 2)``, LR-pixel units, ``(y, x)``) and the
relative cell. Frequencies are ``ω_k = 2^k`` for ``k = 0..L-1`` with no π (paper Eq. 3).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def frequencies(bandwidth: int, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """``ω_k = 2^k``, k = 0..L-1 (paper Eq. 3; no factor π)."""
    if bandwidth < 1:
        raise ValueError(f"bandwidth L must be a positive integer, got {bandwidth}")
    return 2.0 ** torch.arange(bandwidth, device=device, dtype=dtype)


def _interleave(sines: torch.Tensor, cosines: torch.Tensor) -> torch.Tensor:
    # (..., L, 2) each -> concat_k [sin y, sin x, cos y, cos x]: (..., 4L)
    return torch.cat([sines, cosines], dim=-1).flatten(-2)


def positional_encoding(coord: torch.Tensor, bandwidth: int) -> torch.Tensor:
    """``γ(c) = concat_k [sin ω_k c_y, sin ω_k c_x, cos ω_k c_y, cos ω_k c_x]``, width 4L."""
    phase = (
        coord.unsqueeze(-2)
        * frequencies(bandwidth, device=coord.device, dtype=coord.dtype)[:, None]
    )
    return _interleave(torch.sin(phase), torch.cos(phase))


def integrated_positional_encoding(
    coord: torch.Tensor, radius: torch.Tensor, bandwidth: int
) -> torch.Tensor:
    """``γ̂(c, r)``: the mean of ``γ`` over the box ``[c - r, c + r]`` (paper Eq. 6).

    Per axis ``E[sin ω x] = sin(ω c) · sinc(ω r)`` with the unnormalised sinc; ``torch.sinc`` is
    normalised (``sin πx / πx``), hence the division by π. Width 4L.
    """
    omega = frequencies(bandwidth, device=coord.device, dtype=coord.dtype)[:, None]
    phase = coord.unsqueeze(-2) * omega
    damping = torch.sinc(radius.unsqueeze(-2) * omega / math.pi)
    return _interleave(torch.sin(phase) * damping, torch.cos(phase) * damping)


# Each encoding maps (rel_coord, rel_cell, bandwidth) to the decoder's coordinate input.
# rel_cell is the query cell in LR-pixel units (2 units per LR pixel): (2 / s_h, 2 / s_w).
Encoding = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def encode_none(rel_coord: torch.Tensor, rel_cell: torch.Tensor, bandwidth: int) -> torch.Tensor:
    return rel_coord


def encode_cell(rel_coord: torch.Tensor, rel_cell: torch.Tensor, bandwidth: int) -> torch.Tensor:
    return torch.cat([rel_coord, rel_cell], dim=-1)  # LIIF cell decoding


def encode_pe(rel_coord: torch.Tensor, rel_cell: torch.Tensor, bandwidth: int) -> torch.Tensor:
    return positional_encoding(rel_coord, bandwidth)


def encode_ipe(rel_coord: torch.Tensor, rel_cell: torch.Tensor, bandwidth: int) -> torch.Tensor:
    # The pixel box has half-width rel_cell / 2 = (1 / s_h, 1 / s_w) in these units.
    return integrated_positional_encoding(rel_coord, rel_cell / 2, bandwidth)


def encode_ipe_cell(
    rel_coord: torch.Tensor, rel_cell: torch.Tensor, bandwidth: int
) -> torch.Tensor:
    return torch.cat([encode_ipe(rel_coord, rel_cell, bandwidth), rel_cell], dim=-1)


ENCODINGS: dict[str, Encoding] = {
    "none": encode_none,
    "cell": encode_cell,
    "pe": encode_pe,
    "ipe": encode_ipe,
    "ipe_cell": encode_ipe_cell,
}

_WIDTHS: dict[str, Callable[[int], int]] = {
    "none": lambda L: 2,
    "cell": lambda L: 4,
    "pe": lambda L: 4 * L,
    "ipe": lambda L: 4 * L,
    "ipe_cell": lambda L: 4 * L + 2,
}


def get_encoding(name: str) -> Encoding:
    if name not in ENCODINGS:
        raise ValueError(f"unknown coordinate encoding {name!r}; choose one of {sorted(ENCODINGS)}")
    return ENCODINGS[name]


def encoding_width(name: str, bandwidth: int) -> int:
    """Number of values the encoding ``name`` adds to the decoder input."""
    get_encoding(name)
    return _WIDTHS[name](bandwidth)
