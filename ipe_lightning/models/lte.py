"""LTE (Lee & Jin, CVPR 2022) and IPE-LTE: the local texture estimator on our encoders.

As the LTE code base (github jaewon-lee-b/lte, ``models/lte.py``): two 3x3 convolutions of the
features give an amplitude map ``coef`` and a frequency map ``freq`` (``hidden_dim`` channels
each), a bias-free linear map of the relative cell gives a phase. Per query and local-ensemble
branch (LIIF's shifts, lookup and area weights) the 128 frequency pairs ``f_k = (f_y, f_x)`` give
``θ_k = f_k · c_t + phase_k``, the basis ``[cos πθ, sin πθ]`` times the amplitude is decoded by a
plain MLP, and the bilinear sample of the LR image is added to the ensemble output.
IPE-LTE replaces the point basis by its mean over the query pixel (docs/method.md §2.10).

There is no fast decoder like LIIF's: the MLP input ``coef ⊙ basis`` depends on the query, so no
layer's product can be computed once per LR position; the convolutions already are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import torch
from torch import nn

from ipe_lightning.models.base import ImplicitSR, check_lr, check_queries
from ipe_lightning.models.grid import LatentGrid, Window, window_table
from ipe_lightning.models.lookup import ensemble_lookup, ensemble_weights, take_rows
from ipe_lightning.models.mlp import MLPFactory, PlainMLP

# Channels the LR image adds to LTE's features (its bilinear term reads them).
IMAGE_CHANNELS = 3


# ---------------------------------------------------------------- the basis (pure functions)


def fourier_basis(theta: torch.Tensor) -> torch.Tensor:
    """LTE's basis ``[cos πθ, sin πθ]`` (``(..., K)`` → ``(..., 2K)``), a point sample at ``c``."""
    return torch.cat([torch.cos(math.pi * theta), torch.sin(math.pi * theta)], dim=-1)


def integrated_fourier_basis(
    theta: torch.Tensor, freq: torch.Tensor, radius: torch.Tensor, damping_gradient: bool = True
) -> torch.Tensor:
    """:func:`fourier_basis` averaged over the box ``[c - r, c + r]`` (docs/method.md §2.10).

    ``θ(c + u) = θ(c) + f·u``, and over a box the mean of ``exp(iπ f·u)`` is
    ``sinc(π f_y r_y) · sinc(π f_x r_x)`` (unnormalised sinc, real since the box is symmetric), so
    both halves of the basis are damped by it. ``torch.sinc(x)`` is ``sin(πx) / (πx)``, hence
    ``torch.sinc(f r)``. ``freq (..., K, 2)`` holds the pairs ``(f_y, f_x)``, ``radius (..., 2)``
    the half-widths ``(r_y, r_x)`` in the units of ``c``. ``damping_gradient=False`` computes the
    same values but passes no gradient from the damping back to ``freq`` (it still reaches ``freq``
    through ``theta``).
    """
    damped = freq if damping_gradient else freq.detach()
    damping = torch.sinc(damped[..., 0] * radius[..., None, 0]) * torch.sinc(
        damped[..., 1] * radius[..., None, 1]
    )
    angle = math.pi * theta
    return torch.cat([torch.cos(angle) * damping, torch.sin(angle) * damping], dim=-1)


class Basis(Protocol):
    """What LTE needs of a basis: ``basis(theta (..., K), freq (..., K, 2), radius (..., 2))``
    → ``(..., 2K)``."""

    def __call__(
        self, theta: torch.Tensor, freq: torch.Tensor, radius: torch.Tensor
    ) -> torch.Tensor: ...


@dataclass(frozen=True)
class PointBasis:
    """LTE's basis at the query centre: ``[cos πθ, sin πθ]``."""

    def __call__(self, theta: torch.Tensor, freq: torch.Tensor, radius: torch.Tensor):
        return fourier_basis(theta)


@dataclass(frozen=True)
class IntegratedBasis:
    """IPE-LTE's basis: LTE's averaged over the query pixel ``[c - r, c + r]``.

    ``damping_gradient`` (default off): whether the frequencies also learn through the damping
    ``sinc(π f r)``; off, they learn through ``θ`` alone, as LTE's do. With it on they ran away on
    the embedded schedule and silenced the texture term (docs/method.md §2.10 has the
    measurements). The values are the same either way, so checkpoints do not depend on it.
    """

    damping_gradient: bool = False

    def __call__(self, theta: torch.Tensor, freq: torch.Tensor, radius: torch.Tensor):
        return integrated_fourier_basis(theta, freq, radius, self.damping_gradient)


# ---------------------------------------------------------------- the bilinear LR term


def bilinear_taps(coord: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-major LR indices ``(4, ...)`` and weights ``(4, ...)`` of a bilinear sample at ``coord``.

    The arithmetic of ``grid_sample(mode="bilinear", padding_mode="border",
    align_corners=False)``: the sample point is clipped to the outermost pixel centres and the
    neighbour beyond the last pixel (weight 0 there) is clamped back onto it.
    """
    height, width = size
    limit = coord.new_tensor([height - 1, width - 1])
    position = ((coord + 1) * coord.new_tensor(size) - 1) / 2
    position = torch.minimum(position.clamp(min=0), limit)
    low = position.floor()
    high_weight = position - low
    low_weight = low + 1 - position
    low = low.long()
    high = torch.minimum(low + 1, limit.long())
    rows = ((low[..., 0], low_weight[..., 0]), (high[..., 0], high_weight[..., 0]))
    cols = ((low[..., 1], low_weight[..., 1]), (high[..., 1], high_weight[..., 1]))
    index = torch.stack([row * width + col for row, _ in rows for col, _ in cols])
    weight = torch.stack([wy * wx for _, wy in rows for _, wx in cols])
    return index, weight


# ---------------------------------------------------------------- the head

# LTE code: the MLP 256 → 256 → 256 → 256 → 3 (imnet ``hidden_list: [256, 256, 256]``).
LTE_HIDDEN = (256, 256, 256)
LTE_MLP = partial(PlainMLP, hidden=LTE_HIDDEN)


def split_features_and_image(
    feat: torch.Tensor, channels: int, model: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's ``channels`` features and the LR image of what ``encode`` returned
    (``torch.cat([encoder(lr), lr])``: LTE and SRNO); else an error naming ``model``."""
    expected = channels + IMAGE_CHANNELS
    if feat.dim() != 4 or feat.shape[1] != expected:
        raise ValueError(
            f"{model} features must be (B, {expected}, h, w) as returned by encode (the "
            f"encoder's {channels} channels and the LR image), got shape {tuple(feat.shape)}"
        )
    features, image = feat.split([channels, IMAGE_CHANNELS], dim=1)
    return features, image


class LTE(ImplicitSR):
    """Local texture estimator: amplitude, frequency and phase decoded by a plain MLP.

    ``encode`` returns the encoder's channels followed by the normalised LR image: the bilinear
    term needs the image, and carrying it with the features keeps every crop of them (tiled
    inference crops features) self-contained. ``basis`` is :class:`PointBasis` (LTE) or
    :class:`IntegratedBasis` (IPE-LTE); ``phase=False`` drops the phase term (an ablation);
    ``mlp(hidden_dim, 3)`` builds the decoder MLP (LTE's: :class:`PlainMLP` 256 x 3).
    """

    # The ensemble's lookups and the bilinear taps are the LR pixel nearest the query or a
    # neighbour of it.
    lookup_reach = 1
    # coef and freq are 3x3 convolutions of the features.
    table_reach = 1

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 256,
        mlp: MLPFactory = LTE_MLP,
        basis: Basis = PointBasis(),
        phase: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(hidden_dim, bool) or hidden_dim < 2 or hidden_dim % 2:
            raise ValueError(f"hidden_dim must be a positive even number, got {hidden_dim!r}")
        self.encoder = encoder
        self.hidden_dim = int(hidden_dim)
        self.coef = nn.Conv2d(encoder.out_dim, self.hidden_dim, 3, padding=1)
        self.freq = nn.Conv2d(encoder.out_dim, self.hidden_dim, 3, padding=1)
        # LTE code: the phase is a bias-free function of the relative cell alone
        self.phase = nn.Linear(2, self.hidden_dim // 2, bias=False) if phase else None
        self.basis = basis
        self.mlp = mlp(self.hidden_dim, 3)

    def encode(self, lr: torch.Tensor) -> torch.Tensor:
        """``(B, C + 3, h, w)``: the encoder's features and the normalised ``lr`` itself."""
        check_lr(lr)
        # cat promotes: under autocast the image keeps its own (full) precision
        return torch.cat([self.encoder(lr), lr], dim=1)

    def tables(self, feat: torch.Tensor, window: Window) -> tuple[torch.Tensor, ...]:
        """``[coef, freq] (B, N, 2 hidden_dim)`` and the LR image ``(B, N, 3)`` per position of
        ``window``."""
        features, image = split_features_and_image(feat, self.encoder.out_dim, "LTE")
        texture = torch.cat([self.coef(features), self.freq(features)], dim=1)
        return window_table(texture, window), window_table(image, window)

    def query_grid(self, grid: LatentGrid, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Normalised RGB ``(B, Q, 3)`` at ``coord`` with ``cell``: LTE's local ensemble plus the
        bilinear LR sample."""
        texture, image = grid.tables
        check_queries(texture, coord, cell)
        size = grid.lr_size
        lr_size = coord.new_tensor(size)
        rel_cell = cell * lr_size  # (2 / s_h, 2 / s_w): the query cell in LR-pixel units
        radius = rel_cell / 2  # the query pixel's half-width, as IPE
        phase = 0 if self.phase is None else self.phase(rel_cell)
        indices, rel_coords = ensemble_lookup(coord, size, local_ensemble=True)
        predictions = []
        for index, rel_coord in zip(grid.local_index(indices), rel_coords, strict=True):
            coef, freq = take_rows(texture, index).split(self.hidden_dim, dim=-1)
            freq = freq.unflatten(-1, (-1, 2))  # pair k = channels (2k, 2k+1) = (f_y, f_x)
            theta = (freq * rel_coord.unsqueeze(-2)).sum(dim=-1) + phase
            predictions.append(self.mlp(coef * self.basis(theta, freq, radius)))
        weights = ensemble_weights(rel_coords)
        ensemble = sum(w.unsqueeze(-1) * p for w, p in zip(weights, predictions, strict=True))
        return ensemble + self._bilinear_image(grid, image, coord)

    @staticmethod
    def _bilinear_image(grid: LatentGrid, image: torch.Tensor, coord: torch.Tensor) -> torch.Tensor:
        """The LR image sampled bilinearly at ``coord`` from the window's pixels ``(B, Q, 3)``."""
        index, weight = bilinear_taps(coord, grid.lr_size)
        taps = [take_rows(image, i) for i in grid.local_index(index)]
        return sum(w.unsqueeze(-1) * tap for w, tap in zip(weight, taps, strict=True))


# ---------------------------------------------------------------- official checkpoints

_TARGET = f"{__name__}.LTE"


def lte_network_config(args: Mapping[str, Any], encoder: Mapping[str, Any]) -> dict[str, Any]:
    """Our network config for the ``args`` of an LTE code-base ``lte`` model.

    ``encoder`` is our config of its ``encoder_spec`` (as for LIIF checkpoints). The official
    ``imnet_spec`` is an MLP ``hidden_dim → hidden_list → 3``; LTE always uses the point basis, the
    phase and the local ensemble.
    """
    imnet_args = dict((args.get("imnet_spec") or {}).get("args") or {})
    if imnet_args.get("out_dim", 3) != 3:
        raise ValueError(f"an LTE imnet must predict 3 channels, got {imnet_args['out_dim']}")
    return {
        "_target_": _TARGET,
        "encoder": dict(encoder),
        "hidden_dim": int(args.get("hidden_dim", 256)),
        "mlp": {
            "_target_": f"{PlainMLP.__module__}.PlainMLP",
            "_partial_": True,
            "hidden": list(imnet_args.get("hidden_list", LTE_HIDDEN)),
        },
        "basis": {"_target_": f"{__name__}.PointBasis"},
        "phase": True,
    }
