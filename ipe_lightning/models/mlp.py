"""Decoder MLPs: LIIF's plain MLP and IPE-LIIF's skip MLP (METHOD.md §2)."""

from __future__ import annotations

import itertools

import torch
from torch import nn


class PlainMLP(nn.Module):
    """``in → hidden… → out`` with ReLU between layers and no output activation.

    Layers live in ``self.layers`` as ``[Linear, ReLU, …, Linear]`` so the state-dict keys are the
    LIIF code base's (``layers.0``, ``layers.2``, …).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: list[int] | tuple[int, ...]) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        width = in_dim
        for size in hidden:
            modules += [nn.Linear(width, size), nn.ReLU()]
            width = size
        modules.append(nn.Linear(width, out_dim))
        self.layers = nn.Sequential(*modules)

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.layers if isinstance(m, nn.Linear)]

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.layers(inputs)


class SkipMLP(nn.Module):
    """IPE-LIIF's MLP: every hidden layer after the first also sees the full input.

    ``h1 = relu(W1 u)``, ``h_{k+1} = relu(W_{k+1} [h_k, u])``, ``out = W_last h_last``; the skip
    input is concatenated *after* the hidden state.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: list[int] | tuple[int, ...]) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("the skip MLP needs at least one hidden layer")
        layers = [nn.Linear(in_dim, hidden[0])]
        for previous, size in itertools.pairwise(hidden):
            layers.append(nn.Linear(previous + in_dim, size))
        layers.append(nn.Linear(hidden[-1], out_dim))
        self.layers = nn.ModuleList(layers)

    @property
    def linears(self) -> list[nn.Linear]:
        return list(self.layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        *hidden_layers, output_layer = self.layers
        hidden = torch.relu(hidden_layers[0](inputs))
        for layer in hidden_layers[1:]:
            hidden = torch.relu(layer(torch.cat([hidden, inputs], dim=-1)))
        return output_layer(hidden)


MLPS: dict[str, type[nn.Module]] = {"plain": PlainMLP, "skip": SkipMLP}


def build_mlp(kind: str, in_dim: int, out_dim: int, hidden: list[int] | tuple[int, ...]):
    if kind not in MLPS:
        raise ValueError(f"unknown MLP kind {kind!r}; choose one of {sorted(MLPS)}")
    return MLPS[kind](in_dim, out_dim, list(hidden))
