"""Feature lookup on the LR grid and LIIF's local ensemble, as pure functions (docs/method.md §2).

Nearest lookup reproduces ``grid_sample(mode="nearest", align_corners=False)`` on the
``(x, y)``-flipped coordinate, but returns the flat index of the LR pixel so that features *and*
the pixel's centre (:func:`ipe_lightning.coords.coord_of_indices`) come from the same lookup.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ipe_lightning.coords import coord_of_indices

# LIIF code: queries are clamped just inside (-1, 1) so the nearest LR pixel always exists.
BORDER_EPS = 1e-6
# LIIF code: a tiny positive shift so queries on an LR pixel boundary pick a definite side.
SHIFT_EPS = 1e-6
# LIIF code: keeps the ensemble's area weights well defined when a query sits on a centre.
AREA_EPS = 1e-9


def unfold_features(feat: torch.Tensor) -> torch.Tensor:
    """Each LR position carries its zero-padded 3x3 neighbourhood: ``(B, 9C, h, w)``.

    Channel order ``c * 9 + (ky * 3 + kx)``, as ``F.unfold``.
    """
    batch, channels, height, width = feat.shape
    return F.unfold(feat, 3, padding=1).view(batch, channels * 9, height, width)


def nearest_index(coord: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Row-major index of the LR pixel nearest to each ``coord (..., 2)`` on an ``h x w`` grid.

    Same arithmetic as ``grid_sample`` (unnormalise with ``align_corners=False``, round half to
    even), so ties resolve exactly as in the LIIF code base.
    """
    height, width = size
    row = torch.round(((coord[..., 0] + 1) * height - 1) / 2).long().clamp_(0, height - 1)
    col = torch.round(((coord[..., 1] + 1) * width - 1) / 2).long().clamp_(0, width - 1)
    return row * width + col


def take_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The rows of ``table (B, N, D)`` at ``index (B, Q)``, per batch item → ``(B, Q, D)``."""
    batch = torch.arange(table.shape[0], device=table.device)[:, None]
    return table[batch, index]


def feature_table(feat_map: torch.Tensor) -> torch.Tensor:
    """``(B, D, h, w)`` → ``(B, h * w, D)``: one row per LR position, row-major."""
    return feat_map.flatten(2).transpose(1, 2)


def ensemble_shifts(size: tuple[int, int], local_ensemble: bool) -> list[tuple[float, float]]:
    """Query shifts of the four ensemble branches, order ``(-1,-1), (-1,+1), (+1,-1), (+1,+1)``.

    Each shift is half an LR pixel (``1/h`` units) plus ``SHIFT_EPS``; without the ensemble there
    is one unshifted branch.
    """
    if not local_ensemble:
        return [(0.0, 0.0)]
    height, width = size
    half_y, half_x = 2 / height / 2, 2 / width / 2
    return [(vy * half_y + SHIFT_EPS, vx * half_x + SHIFT_EPS) for vy in (-1, 1) for vx in (-1, 1)]


def ensemble_lookup(
    coord: torch.Tensor, size: tuple[int, int], local_ensemble: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The LR pixel each ensemble branch of each query reads, and the query's offset from it
    (paper Eq. 8, LIIF's local ensemble).

    Per branch (:func:`ensemble_shifts`): the query ``coord (B, Q, 2)`` is shifted, clamped just
    inside the image (:data:`BORDER_EPS`) and looked up (:func:`nearest_index`); the relative
    coordinate is the *unshifted* query minus that pixel's centre, in LR-pixel units. Returns the
    row-major indices ``(K, B, Q)`` on the ``h x w`` grid ``size`` and the relative coordinates
    ``(K, B, Q, 2)``, ``K`` = 4 branches (1 without the ensemble).
    """
    lr_size = coord.new_tensor(size)
    indices, rel_coords = [], []
    for shift in ensemble_shifts(size, local_ensemble):
        shifted = (coord + coord.new_tensor(shift)).clamp_(-1 + BORDER_EPS, 1 - BORDER_EPS)
        index = nearest_index(shifted, size)
        centre = coord_of_indices(index, size, dtype=coord.dtype)
        rel_coords.append((coord - centre) * lr_size)
        indices.append(index)
    return torch.stack(indices), torch.stack(rel_coords)


def ensemble_weights(rel_coords: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
    """Bilinear-style weights of the ensemble branches (LIIF Eq. 4, paper Eq. 8).

    ``rel_coords`` are the four branches' ``(..., 2)`` offsets in LR-pixel units (stacked or a
    list); each branch is weighted by the area of the rectangle spanned by the *diagonally
    opposite* branch's offset.
    Returns ``(4, ...)`` weights summing to one.
    """
    areas = torch.stack([(rel[..., 0] * rel[..., 1]).abs() + AREA_EPS for rel in rel_coords])
    if len(rel_coords) == 1:
        return torch.ones_like(areas)
    opposite = areas.flip(0)  # branch k (shift order of ensemble_shifts) faces branch 3 - k
    return opposite / opposite.sum(dim=0, keepdim=True)
