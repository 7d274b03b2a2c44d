"""Decoder MLPs: LIIF's plain MLP and IPE-LIIF's skip MLP (docs/method.md §2).

A head builds its MLP as ``mlp(in_dim, out_dim)``: a config names the class with ``_partial_: true``
and its ``hidden`` widths (``conf/model/mlp/``). Every MLP declares, per linear layer, whether the
layer reads the decoder input (:attr:`reads_input`), so the fast LIIF decoder can split its weights
without knowing the class.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import nn

PAPER_HIDDEN = (256, 256, 256, 256)  # docs/method.md §2: four hidden layers of width 256


class DecoderMLP(Protocol):
    """What the decoders need of an MLP besides ``forward``.

    ``linears`` are its linear layers in order. A layer that reads the decoder input ``u`` sees
    ``[h, u]`` (``h`` the previous layer's output, absent for the first layer), one that does not
    sees ``h`` alone; every hidden layer is followed by a ReLU, the last one by nothing.
    """

    @property
    def linears(self) -> list[nn.Linear]: ...

    @property
    def reads_input(self) -> tuple[bool, ...]: ...


# How a head builds its MLP: (in_dim, out_dim) -> module.
MLPFactory = Callable[[int, int], nn.Module]


class PlainMLP(nn.Module):
    """``in → hidden… → out`` with ReLU between layers and no output activation.

    Layers live in ``self.layers`` as ``[Linear, ReLU, …, Linear]`` so the state-dict keys are the
    LIIF code base's (``layers.0``, ``layers.2``, …).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = PAPER_HIDDEN) -> None:
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

    @property
    def reads_input(self) -> tuple[bool, ...]:
        return (True,) + (False,) * (len(self.linears) - 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.layers(inputs)


class SkipMLP(nn.Module):
    """IPE-LIIF's MLP: every hidden layer after the first also sees the full input.

    ``h1 = relu(W1 u)``, ``h_{k+1} = relu(W_{k+1} [h_k, u])``, ``out = W_last h_last``; the skip
    input is concatenated *after* the hidden state.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = PAPER_HIDDEN) -> None:
        super().__init__()
        hidden = list(hidden)
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

    @property
    def reads_input(self) -> tuple[bool, ...]:
        return (True,) * (len(self.layers) - 1) + (False,)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        *hidden_layers, output_layer = self.layers
        hidden = torch.relu(hidden_layers[0](inputs))
        for layer in hidden_layers[1:]:
            hidden = torch.relu(layer(torch.cat([hidden, inputs], dim=-1)))
        return output_layer(hidden)
