"""The batched LIIF and MetaSR heads agree with a naive per-query loop (docs/method.md §2).

The oracle handles one query at a time in float64 with plain Python: its own nearest lookup (the
LR pixel that contains the point), its own 3x3 unfold with zero padding, its own PE / IPE, the
local ensemble over the four branches, and the network's linear layers used only as matrices.
Only the encoder's features come from the network (``net.encode``): the heads are on trial here.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from ipe_lightning.inference import upsample
from ipe_lightning.models import (
    IPE,
    LIIF,
    PE,
    Cell,
    EDSRBaseline,
    FastDecoder,
    IPECell,
    MetaPlain,
    MetaSR,
    NaiveDecoder,
    NoEncoding,
    PlainMLP,
    SkipMLP,
)

LR_SIZE = (5, 7)  # odd: no HR pixel centre of any output size falls on an LR pixel boundary
HIDDEN = (8, 8, 8)
BANDWIDTH = 6
EPS = 1e-6  # LIIF code: lookup shift and clamp margin (docs/method.md §2)

IMPLS = [None, "fast", "naive"]  # the default decoder and each decoder part
DECODERS = {"fast": FastDecoder, "naive": NaiveDecoder}
ENCODINGS = {
    "none": NoEncoding(),
    "cell": Cell(),
    "pe": PE(BANDWIDTH),
    "ipe": IPE(BANDWIDTH),
    "ipe_cell": IPECell(BANDWIDTH),
}
META_INPUTS = {"plain": MetaPlain(), "pe": PE(BANDWIDTH), "ipe": IPE(BANDWIDTH)}
MLPS = {"plain": PlainMLP, "skip": SkipMLP}


# ---------------------------------------------------------------- oracle pieces (docs/method.md §2)


def oracle_pe(c, bandwidth):
    out = []
    for k in range(bandwidth):
        w = 2.0**k
        out += [math.sin(w * c[0]), math.sin(w * c[1]), math.cos(w * c[0]), math.cos(w * c[1])]
    return out


def oracle_ipe(c, r, bandwidth):
    def sinc(x):
        return 1.0 if x == 0 else math.sin(x) / x

    out = []
    for k in range(bandwidth):
        w = 2.0**k
        sy, sx = sinc(w * r[0]), sinc(w * r[1])
        out += [
            math.sin(w * c[0]) * sy,
            math.sin(w * c[1]) * sx,
            math.cos(w * c[0]) * sy,
            math.cos(w * c[1]) * sx,
        ]
    return out


def containing_pixel(point, size):
    """(row, col) of the LR pixel whose box contains ``point`` (the nearest centre)."""
    return tuple(
        min(n - 1, max(0, math.floor((p + 1) * n / 2))) for p, n in zip(point, size, strict=True)
    )


def pixel_centre(index, size):
    return [-1 + (2 * i + 1) / n for i, n in zip(index, size, strict=True)]


def latent(feat, index, unfold):
    """z at LR pixel ``index``: its channels, or its zero-padded 3x3 neighbourhood.

    Unfolded order is ``c*9 + ky*3 + kx`` (docs/method.md §2).
    """
    channels, height, width = feat.shape
    row, col = index
    if not unfold:
        return [feat[c, row, col] for c in range(channels)]
    z = []
    for c in range(channels):
        for ky in range(3):
            for kx in range(3):
                y, x = row + ky - 1, col + kx - 1
                z.append(feat[c, y, x] if 0 <= y < height and 0 <= x < width else 0.0)
    return z


def linear_layers(mlp: nn.Module):
    return [
        (m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
        for m in mlp.modules()
        if isinstance(m, nn.Linear)
    ]


def relu(v):
    return np.maximum(v, 0.0)


def oracle_plain_mlp(layers, u):
    h = np.asarray(u)
    for w, b in layers[:-1]:
        h = relu(w @ h + b)
    w, b = layers[-1]
    return w @ h + b


def oracle_skip_mlp(layers, u):
    u = np.asarray(u)
    w, b = layers[0]
    h = relu(w @ u + b)
    for w, b in layers[1:-1]:
        h = relu(w @ np.concatenate([h, u]) + b)  # skip input after the hidden state
    w, b = layers[-1]
    return w @ h + b


def oracle_encoding(name, c, rel_cell, bandwidth):
    radius = [rel_cell[0] / 2, rel_cell[1] / 2]  # (1/s_h, 1/s_w)
    return {
        "none": lambda: list(c),
        "cell": lambda: [*c, *rel_cell],
        "pe": lambda: oracle_pe(c, bandwidth),
        "ipe": lambda: oracle_ipe(c, radius, bandwidth),
        "ipe_cell": lambda: [*oracle_ipe(c, radius, bandwidth), *rel_cell],
    }[name]()


def oracle_liif_query(feat, layers, mlp, encoding, ensemble, unfold, q, cell):
    """One LIIF query (LIIF Eq. 4 / paper Eq. 8), float64, one branch at a time."""
    size = feat.shape[1:]
    h, w = size
    rel_cell = [cell[0] * h, cell[1] * w]
    offsets = [(-1, -1), (-1, 1), (1, -1), (1, 1)] if ensemble else [(0, 0)]
    eps = EPS if ensemble else 0.0
    predictions, areas = [], []
    for vy, vx in offsets:
        shifted = [q[0] + vy / h + eps, q[1] + vx / w + eps]
        shifted = [min(max(s, -1 + EPS), 1 - EPS) for s in shifted]
        index = containing_pixel(shifted, size)
        centre = pixel_centre(index, size)
        c = [(q[0] - centre[0]) * h, (q[1] - centre[1]) * w]  # unshifted query
        u = latent(feat, index, unfold) + oracle_encoding(encoding, c, rel_cell, BANDWIDTH)
        run = oracle_skip_mlp if mlp == "skip" else oracle_plain_mlp
        predictions.append(run(layers, u))
        areas.append(abs(c[0] * c[1]) + 1e-9)
    if not ensemble:
        return predictions[0]
    opposite = [areas[3], areas[2], areas[1], areas[0]]
    total = sum(opposite)
    return sum(a / total * p for a, p in zip(opposite, predictions, strict=True))


def oracle_metasr_query(feat, layers, meta_input, q, cell):
    """One MetaSR query (paper Eqs. 9-10): a predicted (9C, 3) filter applied to the unfolded z."""
    size = feat.shape[1:]
    h, w = size
    corner = [q[0] - cell[0] / 2, q[1] - cell[1] / 2]  # the HR pixel's top-left corner
    lookup = [min(max(p + EPS, -1 + EPS), 1 - EPS) for p in corner]
    index = containing_pixel(lookup, size)
    lr_corner = [-1 + 2 * index[0] / h, -1 + 2 * index[1] / w]
    o = [(corner[0] - lr_corner[0]) * h / 2, (corner[1] - lr_corner[1]) * w / 2]
    inv_scale = [cell[0] * h / 2, cell[1] * w / 2]
    v = {
        "plain": [o[0], o[1], inv_scale[0]],
        "pe": oracle_pe(o, BANDWIDTH),
        "ipe": oracle_ipe(o, inv_scale, BANDWIDTH),
    }[meta_input]
    flat = oracle_plain_mlp(layers, v)
    z = latent(feat, index, unfold=True)
    return np.array([sum(z[i] * flat[i * 3 + j] for i in range(len(z))) for j in range(3)])


# ---------------------------------------------------------------- queries


def hr_centre(i, n):
    return -1 + (2 * i + 1) / n


def query_set():
    """Border, corner and interior queries at non-integer, anisotropic and large scales."""
    coords, cells = [], []
    for hr_size in [(13, 11), (60, 84)]:  # s = (2.6, 1.57…) and s = 12
        height, width = hr_size
        for i, j in [(0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1),
                     (0, width // 2), (height // 2, 0), (height - 1, width // 3),
                     (height // 2, width // 2)]:  # fmt: skip
            coords.append([hr_centre(i, height), hr_centre(j, width)])
            cells.append([2 / height, 2 / width])
    # ×12 pixels whose top-left corners lie on interior LR pixel boundaries (MetaSR's +1e-6
    # lookup shift decides the pixel) and a query on an LR centre (the ensemble's shifted
    # lookups land on boundaries)
    for i, j in [(12, 24), (36, 60)]:
        coords.append([hr_centre(i, 60), hr_centre(j, 84)])
        cells.append([2 / 60, 2 / 84])
    coords.append([hr_centre(1, LR_SIZE[0]), hr_centre(2, LR_SIZE[1])])
    cells.append([2 / 13, 2 / 11])
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):  # anywhere, with a per-query anisotropic scale in [1, 12]
        y, x = (torch.rand(2, generator=generator, dtype=torch.float64) * 2 - 1).tolist()
        s_h, s_w = (torch.rand(2, generator=generator, dtype=torch.float64) * 11 + 1).tolist()
        coords.append([y, x])
        cells.append([2 / (LR_SIZE[0] * s_h), 2 / (LR_SIZE[1] * s_w)])
    coord = torch.tensor(coords, dtype=torch.float32)
    cell = torch.tensor(cells, dtype=torch.float32)
    # batch of two: the second image is queried in reverse order
    return torch.stack([coord, coord.flip(0)]), torch.stack([cell, cell.flip(0)])


def lr_batch():
    return torch.rand(2, 3, *LR_SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1


def tiny_liif(encoding, mlp, ensemble, unfold, impl):
    torch.manual_seed(2)
    kwargs = {} if impl is None else {"decoder": DECODERS[impl]}
    return LIIF(
        EDSRBaseline(n_resblocks=1, n_feats=4),
        encoding=ENCODINGS[encoding],
        mlp=partial(MLPS[mlp], hidden=HIDDEN),
        local_ensemble=ensemble,
        feat_unfold=unfold,
        **kwargs,
    )


def tiny_metasr(meta_input):
    torch.manual_seed(3)
    return MetaSR(
        EDSRBaseline(n_resblocks=1, n_feats=4),
        encoding=META_INPUTS[meta_input],
        mlp=partial(PlainMLP, hidden=(8,)),
    )


def oracle_batch(net, lr, coord, cell, one_query):
    with torch.no_grad():
        feat = net.encode(lr).double().numpy()
    layers = linear_layers(net.mlp)
    out = np.zeros((*coord.shape[:2], 3))
    for b in range(coord.shape[0]):
        for k in range(coord.shape[1]):
            q = coord[b, k].double().tolist()
            c = cell[b, k].double().tolist()
            out[b, k] = one_query(feat[b], layers, q, c)
    return torch.from_numpy(out)


# ---------------------------------------------------------------- claims


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("unfold", [True, False], ids=["unfold", "no_unfold"])
@pytest.mark.parametrize("ensemble", [True, False], ids=["ensemble", "single"])
@pytest.mark.parametrize("mlp", ["plain", "skip"])
@pytest.mark.parametrize("encoding", ["none", "cell", "pe", "ipe", "ipe_cell"])
def test_liif_head_equals_naive_per_query_loop(encoding, mlp, ensemble, unfold, impl):
    net = tiny_liif(encoding, mlp, ensemble, unfold, impl)
    lr = lr_batch()
    coord, cell = query_set()
    with torch.no_grad():
        got = net(lr, coord, cell)
    assert got.shape == (*coord.shape[:2], 3)

    def one_query(feat, layers, q, c):
        return oracle_liif_query(feat, layers, mlp, encoding, ensemble, unfold, q, c)

    expected = oracle_batch(net, lr, coord, cell, one_query)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("meta_input", ["plain", "pe", "ipe"])
def test_metasr_head_equals_naive_per_query_loop(meta_input):
    net = tiny_metasr(meta_input)
    lr = lr_batch()
    coord, cell = query_set()
    with torch.no_grad():
        got = net(lr, coord, cell)
    assert got.shape == (*coord.shape[:2], 3)

    def one_query(feat, layers, q, c):
        return oracle_metasr_query(feat, layers, meta_input, q, c)

    expected = oracle_batch(net, lr, coord, cell, one_query)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_forward_equals_query_of_encode(impl):
    net = tiny_liif("ipe", "skip", True, True, impl)
    lr = lr_batch()
    coord, cell = query_set()
    with torch.no_grad():
        torch.testing.assert_close(net(lr, coord, cell), net.query(net.encode(lr), coord, cell))
        # and the pair keeps no state: a second image in between changes nothing
        feat = net.encode(lr)
        net.encode(torch.zeros_like(lr))
        torch.testing.assert_close(net.query(feat, coord, cell), net(lr, coord, cell))


def test_metasr_forward_equals_query_of_encode():
    net = tiny_metasr("ipe")
    lr = lr_batch()
    coord, cell = query_set()
    with torch.no_grad():
        torch.testing.assert_close(net(lr, coord, cell), net.query(net.encode(lr), coord, cell))


@pytest.mark.parametrize("head", ["ipe_liif", "metasr"])
def test_upsample_is_the_clamped_per_pixel_query_and_chunking_changes_nothing(head):
    net = tiny_liif("ipe", "skip", True, True, None) if head == "ipe_liif" else tiny_metasr("pe")
    image = torch.rand(2, 3, *LR_SIZE, generator=torch.Generator().manual_seed(4))
    # scale (2.6, 1.6) → 13 x round(11.2) = 13 x 11
    one_shot = upsample(net, image, scale=(2.6, 1.6), max_queries=10_000)
    assert one_shot.shape == (2, 3, 13, 11)
    for max_queries in [5, 11, 142]:
        chunked = upsample(net, image, scale=(2.6, 1.6), max_queries=max_queries)
        torch.testing.assert_close(chunked, one_shot, rtol=0, atol=1e-6)
    by_size = upsample(net, image, size=(13, 11))
    torch.testing.assert_close(by_size, one_shot, rtol=0, atol=1e-6)
    # each output pixel: clamp(net((x - 0.5) / 0.5, its centre, cell (2/H, 2/W)) * 0.5 + 0.5)
    coords = [[hr_centre(i, 13), hr_centre(j, 11)] for i in range(13) for j in range(11)]
    coord = torch.tensor(coords).expand(2, -1, -1)
    cell = torch.tensor([2 / 13, 2 / 11]).expand_as(coord)
    with torch.no_grad():
        prediction = net((image - 0.5) / 0.5, coord, cell)
    expected = (prediction * 0.5 + 0.5).clamp(0, 1).transpose(1, 2).reshape(2, 3, 13, 11)
    # float32 pixel centres computed two ways may differ in the last bit
    torch.testing.assert_close(one_shot, expected, rtol=0, atol=1e-5)
