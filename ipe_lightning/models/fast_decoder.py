"""The exact fast LIIF-family decoder: latent projections computed once per LR position.

Every MLP layer that sees the decoder input ``u = [z, enc]`` (the first layer; with the skip MLP
every hidden layer) computes ``W u = W_z z + W_enc enc``. ``z`` is the 3x3-unfolded latent, and
unfold followed by a linear map is a 3x3 convolution, so ``W_z z + b`` is computed once per LR
position (``conv3x3(feat)``) and gathered per query instead of being recomputed for every query
and every ensemble branch. Only ``W_enc enc`` (4L inputs) and the hidden-to-hidden products stay per
query. The algebra is exact; the naive decoder (``NaiveDecoder``) is the oracle it is tested
against. The weights are the MLP's own, so checkpoints are shared by both implementations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ipe_lightning.models.grid import Window, window_table

# Queries are decoded in blocks of rows (ensemble branches flattened), so a block's gathered rows
# and hidden states stay in cache between the layers. Training: 16384-row blocks (measured on a
# 2-core CPU loaded by other work, 2-3x faster than 4096-row ones: a quarter of the ops, so of the
# waits at thread barriers). Inference, by default: 4096-row blocks, whose 4 MB buffers stay in the
# cache on a quiet machine: measured 1.2-1.3x faster than 16384 rows for a x4 decode (python -m
# ipe_lightning.bench decode; README "Speed and memory"). On a CPU the inference layout is measured
# per machine instead (ipe_lightning.models.decode_calibration), among this one and larger ones.
ROW_BLOCK = 16384
INFERENCE_ROW_BLOCK = 4096


@dataclass(frozen=True)
class DecodeLayout:
    """How the inference decode groups its products; every layout computes the same function.

    ``row_block``: rows (queries times ensemble branches) decoded at a time. ``stacked_inputs``:
    the layers that read the decoder input gather their projections in one wide buffer and take
    ``W_enc enc`` from one product (``(rows, E) x (E, D)``, D = 1024 for the skip MLP) instead of
    one gather and one product per layer: fewer, larger products. Which is fastest depends on the
    machine's caches and BLAS (:mod:`ipe_lightning.models.decode_calibration` measures it).
    """

    row_block: int = INFERENCE_ROW_BLOCK
    stacked_inputs: bool = False


DEFAULT_LAYOUT = DecodeLayout()


@dataclass(frozen=True)
class LayerSplit:
    """How one linear layer's weight splits over its inputs ``[h, z, enc]``.

    ``hidden_width`` inputs come from the previous layer (0 for the first layer); when
    ``reads_input`` the next ``latent_dim`` columns multiply ``z`` and the rest ``enc``.
    """

    layer: nn.Linear
    hidden_width: int
    reads_input: bool


def layer_splits(mlp: nn.Module, latent_dim: int) -> list[LayerSplit]:
    """How each linear layer of a LIIF decoder MLP splits over ``[h, z, enc]`` (docs/method.md §2).

    The MLP declares which layers read the decoder input (``mlp.reads_input``, see
    :class:`~ipe_lightning.models.mlp.DecoderMLP`): the plain MLP only the first, the skip MLP the
    first and every later hidden layer (``[h_k, u]``, the skip input after the hidden state).
    """
    linears = getattr(mlp, "linears", None)
    reads = getattr(mlp, "reads_input", None)
    if linears is None or reads is None:
        raise TypeError(
            f"the fast decoder needs an MLP that declares its `linears` and which of them "
            f"`reads_input` (ipe_lightning.models.mlp.DecoderMLP); {type(mlp).__name__} does not"
        )
    splits, previous = [], 0
    for position, (layer, reads_input) in enumerate(zip(linears, reads, strict=True)):
        hidden_width = 0 if position == 0 else previous
        too_narrow = layer.in_features < hidden_width + latent_dim
        if (reads_input and too_narrow) or (not reads_input and layer.in_features != hidden_width):
            raise ValueError(
                f"layer {position} of the MLP has {layer.in_features} inputs, which do not fit "
                f"{hidden_width} hidden values{' plus the decoder input' if reads_input else ''}"
            )
        splits.append(LayerSplit(layer, hidden_width, reads_input))
        previous = layer.out_features
    return splits


def _latent_parts(splits: list[LayerSplit], latent_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked ``W_z`` and biases of the layers that see the decoder input."""
    seeing = [s for s in splits if s.reads_input]
    latent_weight = torch.cat(
        [s.layer.weight[:, s.hidden_width : s.hidden_width + latent_dim] for s in seeing]
    )
    return latent_weight, torch.cat([s.layer.bias for s in seeing])


def projection_map(
    mlp: nn.Module, feat: torch.Tensor, latent_dim: int, feat_unfold: bool
) -> torch.Tensor:
    """``W_z z + b`` at every LR position for every layer that sees ``z``: ``(B, D, h, w)``.

    ``z = unfold(feat, 3x3, zero padding 1)`` has channel order ``c * 9 + (ky * 3 + kx)``
    (docs/method.md §2), which is exactly a conv weight ``(out, C, 3, 3)`` viewed flat, so the
    product is a 3x3 convolution with zero padding 1 (1x1 without the unfold). ``D`` is the sum of
    those layers' widths (1024 for the skip MLP); the biases are folded in here.
    """
    latent_weight, bias = _latent_parts(layer_splits(mlp, latent_dim), latent_dim)
    kernel = 3 if feat_unfold else 1
    weight = latent_weight.reshape(len(latent_weight), feat.shape[1], kernel, kernel)
    return F.conv2d(feat, weight.to(feat.dtype), bias.to(feat.dtype), padding=kernel // 2)


def projection_tables(
    mlp: nn.Module,
    feat: torch.Tensor,
    latent_dim: int,
    feat_unfold: bool,
    window: Window,
) -> tuple[torch.Tensor, ...]:
    """One contiguous ``(B, N, width)`` table of :func:`projection_map` rows per input layer.

    Separate per-layer tables let each layer gather exactly its rows into a buffer of its own
    width, where its products are accumulated in place.
    """
    projections = projection_map(mlp, feat, latent_dim, feat_unfold)
    widths = [s.layer.out_features for s in layer_splits(mlp, latent_dim) if s.reads_input]
    return tuple(window_table(part, window) for part in projections.split(widths, dim=1))


def decode_projections(
    mlp: nn.Module,
    tables: tuple[torch.Tensor, ...],
    index: torch.Tensor,
    coord_input: torch.Tensor,
    latent_dim: int,
    row_block: int | None = None,
    layout: DecodeLayout = DEFAULT_LAYOUT,
) -> torch.Tensor:
    """Evaluate the MLP on ``[z, enc]`` from the projection tables; exact, autograd-friendly.

    ``tables`` are :func:`projection_tables` (``(B, N, width)`` each, ``N`` LR positions),
    ``index (K, B, Q)`` the position of each branch's query in them, ``coord_input (K, B, Q, E)``
    each branch's coordinate encoding. Returns ``(K, B, Q, out)``. ``row_block`` rows are decoded
    at a time (default :data:`ROW_BLOCK` when training, ``layout.row_block`` otherwise);
    ``layout`` groups the products of the inference decode (:class:`DecodeLayout`).
    """
    splits = layer_splits(mlp, latent_dim)
    batch, positions, _ = tables[0].shape
    branches, _, queries = index.shape
    offsets = torch.arange(batch, device=index.device) * positions
    flat_index = (index + offsets[:, None]).reshape(-1)
    flat_tables = [table.reshape(batch * positions, -1) for table in tables]
    dtype = tables[0].dtype  # bf16 under autocast: keep every product in the tables' dtype
    encodings = coord_input.reshape(flat_index.shape[0], -1).to(dtype)
    layers = [_LayerWeights.of(split, latent_dim, dtype) for split in splits]
    if needs_autograd(mlp, tables, coord_input):
        # Training: one gather per table, so the backward pass scatters into each table's
        # gradient once (a scatter per block would zero-fill a table-sized buffer per block).
        row_block = row_block or ROW_BLOCK
        input_layers = [layer for layer in layers if layer.encoding_weight is not None]
        gathered = [
            table.index_select(0, flat_index).addmm_(encodings, layer.encoding_weight)
            for table, layer in zip(flat_tables, input_layers, strict=True)
        ]
        blocks = zip(*(part.split(row_block) for part in gathered), strict=True)
        outputs = [_layers_out_of_place(layers, list(block)) for block in blocks]
    else:
        # Inference: block by block in reused buffers, every product accumulated in place.
        if row_block:
            layout = replace(layout, row_block=row_block)
        outputs = [_decode_in_place(layers, flat_tables, flat_index, encodings, layout)]
    return torch.cat(outputs).view(branches, batch, queries, -1)


def needs_autograd(
    mlp: nn.Module, tables: tuple[torch.Tensor, ...], coord_input: torch.Tensor
) -> bool:
    """Whether a decode must be differentiable: the training path, else the inference one."""
    differentiable = (coord_input, *tables, *mlp.parameters())
    return torch.is_grad_enabled() and any(tensor.requires_grad for tensor in differentiable)


@dataclass(frozen=True)
class _LayerWeights:
    """One layer's weight blocks, transposed for ``addmm`` (``x @ W.T``), in the compute dtype."""

    width: int  # output features
    hidden_weight: torch.Tensor | None  # multiplies h (None for the first layer)
    encoding_weight: torch.Tensor | None  # multiplies enc (None if the layer sees only h)
    bias: torch.Tensor | None  # only where not already folded into a projection table

    @staticmethod
    def of(split: LayerSplit, latent_dim: int, dtype: torch.dtype) -> _LayerWeights:
        weight = split.layer.weight.to(dtype)
        width = split.layer.out_features
        hidden = weight[:, : split.hidden_width].t() if split.hidden_width else None
        if not split.reads_input:
            return _LayerWeights(width, hidden, None, split.layer.bias.to(dtype))
        encoding = weight[:, split.hidden_width + latent_dim :].t()
        return _LayerWeights(width, hidden, encoding, None)


def _decode_in_place(
    layers: list[_LayerWeights],
    tables: list[torch.Tensor],
    flat_index: torch.Tensor,
    encodings: torch.Tensor,
    layout: DecodeLayout,
) -> torch.Tensor:
    """The MLP on every row without autograd, block by block in reused buffers.

    Each block's rows are gathered into preallocated buffers and every product is accumulated
    into them in place, so the buffers stay cache-resident between the layers and no block
    allocates: gathers into fresh multi-MB tensors measured 4-30x slower here (page faults).
    """
    n_rows, row_block = flat_index.shape[0], layout.row_block
    output = encodings.new_empty(n_rows, layers[-1].width)
    blocks = _BlockBuffers.of(layers, tables, min(row_block, n_rows), layout.stacked_inputs)
    for start in range(0, n_rows, row_block):
        rows = flat_index[start : start + row_block]
        block_encodings = encodings[start : start + row_block]
        targets = [buffer[: len(rows)] for buffer in blocks.buffers]
        # each step gathers W_z z + b + W_enc enc into one buffer: all input layers' at once when
        # stacked, else each input layer's just before its own product (its buffer still cached)
        gathers = blocks.gather(rows, block_encodings)
        if layout.stacked_inputs:
            next(gathers)
        hidden = None
        for layer, target in zip(layers, targets, strict=True):
            if layer.encoding_weight is None:
                torch.addmm(layer.bias, hidden, layer.hidden_weight, out=target)
            else:
                next(gathers, None)
                if hidden is not None:  # + W_h h
                    target.addmm_(hidden, layer.hidden_weight)
            hidden = target.relu_() if target is not targets[-1] else target
        output[start : start + len(rows)] = hidden
    return output


@dataclass(frozen=True)
class _BlockBuffers:
    """One block's preallocated per-layer buffers, and ``W_z z + b + W_enc enc`` gathered into
    the buffers of the layers that read the decoder input (one per layer or one stacked)."""

    tables: list[torch.Tensor]  # one per input layer, or one stacked (positions, D)
    encoding_weights: list[torch.Tensor]  # likewise
    gathered: list[torch.Tensor]  # likewise: (row_block, width) buffers
    buffers: list[torch.Tensor]  # per layer: its columns of `gathered`, or a buffer of its own

    @staticmethod
    def of(
        layers: list[_LayerWeights], tables: list[torch.Tensor], row_block: int, stacked: bool
    ) -> _BlockBuffers:
        encoding_weights = [
            layer.encoding_weight for layer in layers if layer.encoding_weight is not None
        ]
        widths = [weight.shape[1] for weight in encoding_weights]
        if stacked:
            tables, encoding_weights = [torch.cat(tables, 1)], [torch.cat(encoding_weights, 1)]
        gathered = [table.new_empty(row_block, table.shape[1]) for table in tables]
        columns = iter(gathered[0].split(widths, dim=1) if stacked else gathered)
        buffers = [
            next(columns)
            if layer.encoding_weight is not None
            else gathered[0].new_empty(row_block, layer.width)
            for layer in layers
        ]
        return _BlockBuffers(tables, encoding_weights, gathered, buffers)

    def gather(self, rows: torch.Tensor, encodings: torch.Tensor) -> Iterator[None]:
        """``W_z z + b + W_enc enc`` of this block into each gathered buffer, one per step."""
        for table, weight, buffer in zip(
            self.tables, self.encoding_weights, self.gathered, strict=True
        ):
            target = buffer[: len(rows)]
            torch.index_select(table, 0, rows, out=target)
            target.addmm_(encodings, weight)
            yield


def _layers_out_of_place(layers: list[_LayerWeights], gathered: list[torch.Tensor]) -> torch.Tensor:
    """The MLP on one block of gathered rows (``W_z z + b + W_enc enc`` per input layer).

    The blocks are views of the gathered buffers, so they are only read: in-place products on
    views would make autograd copy the whole buffer.
    """
    parts = iter(gathered)
    pre_activation, hidden = next(parts), None
    for layer in layers[1:]:
        hidden = pre_activation.relu() if hidden is None else pre_activation.relu_()
        if layer.encoding_weight is not None:
            pre_activation = torch.addmm(next(parts), hidden, layer.hidden_weight)
        else:
            pre_activation = torch.addmm(layer.bias, hidden, layer.hidden_weight)
    return pre_activation
