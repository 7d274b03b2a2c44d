"""Coordinate encodings of the implicit decoders (docs/method.md §2, paper Eqs. 3-7).

The math is pure functions of a coordinate ``c`` (``(..., 2)``, ``(y, x)``) and a radius ``r``.
Frequencies are ``ω_k = 2^k`` for ``k = 0..L-1`` with no π (paper Eq. 3).

The parts below wrap them for the heads: each knows its ``width`` (values it adds to the decoder
input) and is called as ``encoding(offset, radius)`` with two ``(..., 2)`` tensors:

- ``offset``: where the query lies relative to the LR pixel it reads, in the head's units. LIIF:
  the relative coordinate ``c_t = (x_q - p_t) * (h, w)`` (an LR pixel spans 2 units). MetaSR: the
  offset ``o`` in ``[0, 1)²`` from the LR pixel's top-left corner (an LR pixel spans 1).
- ``radius``: half the query pixel in LIIF's relative-coordinate units, ``(1/s_h, 1/s_w)``
  (LIIF's ``rel_cell / 2``). MetaSR passes the same ``(1/s_h, 1/s_w)``, as paper Eq. 10 writes
  ``γ̂(o, 1/s)``.

A config chooses one by ``_target_`` (``conf/model/encoding/``); a new encoding is a new class with
``width`` and ``__call__``, and every head can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

from ipe_lightning.errors import SettingError


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


class CoordinateEncoding(Protocol):
    """What a head needs of an encoding: its width and ``encoding(offset, radius)``."""

    @property
    def width(self) -> int: ...

    def __call__(self, offset: torch.Tensor, radius: torch.Tensor) -> torch.Tensor: ...


def _cell(radius: torch.Tensor) -> torch.Tensor:
    # LIIF's rel_cell = (2/s_h, 2/s_w), the query's full width; doubling is exact in floating point
    return 2 * radius


@dataclass(frozen=True)
class NoEncoding:
    """The offset itself (the official LIIF with ``cell_decode=False``)."""

    @property
    def width(self) -> int:
        return 2

    def __call__(self, offset: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        return offset


@dataclass(frozen=True)
class Cell:
    """LIIF's cell decoding: ``[c_t, rel_cell]``."""

    @property
    def width(self) -> int:
        return 4

    def __call__(self, offset: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        return torch.cat([offset, _cell(radius)], dim=-1)


@dataclass(frozen=True)
class MetaPlain:
    """MetaSR's meta input ``(o_y, o_x, 1/s_h)`` (paper Eq. 9)."""

    @property
    def width(self) -> int:
        return 3

    def __call__(self, offset: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        return torch.cat([offset, radius[..., :1]], dim=-1)


@dataclass(frozen=True)
class _Banded:
    """An encoding with ``L = bandwidth`` frequencies."""

    bandwidth: int = 10  # docs/method.md §2: L = 10 by default

    def __post_init__(self) -> None:
        value = self.bandwidth
        integral = isinstance(value, int | float) and float(value).is_integer()
        if isinstance(value, bool) or not integral or value < 1:
            raise SettingError(
                f"model.net.encoding.bandwidth: bandwidth L must be a positive integer (the "
                f"number of frequencies), got {value!r}"
            )
        object.__setattr__(self, "bandwidth", int(value))

    @property
    def width(self) -> int:
        return 4 * self.bandwidth


@dataclass(frozen=True)
class PE(_Banded):
    """``γ(offset)``: LIIF w/ PE, MetaSR w/ PE (paper Eq. 3)."""

    def __call__(self, offset: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        return positional_encoding(offset, self.bandwidth)


@dataclass(frozen=True)
class IPE(_Banded):
    """``γ̂(offset, radius)``: IPE-LIIF (paper Eq. 6), IPE-MetaSR (paper Eq. 10)."""

    def __call__(self, offset: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        return integrated_positional_encoding(offset, radius, self.bandwidth)


@dataclass(frozen=True)
class IPECell(_Banded):
    """``[γ̂(c_t, r), rel_cell]``: the Table 4 ablation IPE-LIIF + cell."""

    @property
    def width(self) -> int:
        return 4 * self.bandwidth + 2

    def __call__(self, offset: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
        ipe = integrated_positional_encoding(offset, radius, self.bandwidth)
        return torch.cat([ipe, _cell(radius)], dim=-1)
