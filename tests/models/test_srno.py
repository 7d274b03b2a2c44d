"""SRNO and IPE-SRNO compute what the SRNO code base computes, and decode grids in chunks exactly.

Oracle: a plain-NumPy SRNO written from its description (docs/method.md §2.11), float64, reading
weights in the SRNO code's layout (``conv00``, ``conv0.qkv_proj``, ``kln`` of shape
``(heads, 1, d)``, 1x1 convolution weights ``(out, in, 1, 1)``): the lifting one query and one
ensemble branch at a time, the Galerkin product as an explicit sum of outer products over the
queries, the layer norms with Bessel's standard deviation, GELU from ``erf``, the bilinear term as
tent weights. IPE-SRNO's encoding is the mean of PE over the query pixel by Gauss-Legendre
quadrature, not the closed form. Only the encoder's features come from the network. Weights are
random, drawn here, so that every parameter matters (layer-norm scales and shifts included).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ipe_lightning.coords import make_coord
from ipe_lightning.models import IPE, PE, EDSRBaseline, NoEncoding
from ipe_lightning.models.galerkin import GalerkinAttention
from ipe_lightning.models.srno import SRNO, lifting_input, srno_state_dict
from tests.models.test_lte import tent_bilinear  # the border-padded bilinear of LTE's oracle

LR_SIZE = (5, 7)  # odd: no HR pixel centre of the grids below falls on an LR pixel boundary
EPS = 1e-6  # SRNO code (as LIIF): lookup shift and clamp margin
AREA_EPS = 1e-9  # SRNO code: added to each branch's area
NORM_EPS = 1e-5  # SRNO code: added to the layer norms' standard deviation
BANDWIDTH = 3  # IPE-SRNO's L in these tests: ω ≤ 4, so 16 quadrature nodes are exact
VARIANTS = {"srno": NoEncoding(), "ipe_srno": IPE(BANDWIDTH)}


# ---------------------------------------------------------------- weights in the SRNO layout


def official_head_weights(
    seed: int, channels: int, width: int, heads: int, hidden: int, coordinate_width: int = 2
) -> dict[str, torch.Tensor]:
    """Random weights of SRNO's head under the SRNO code's names and shapes."""
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape, scale=None):
        fan_in = shape[1] if len(shape) > 1 else 1
        scale = scale if scale is not None else 1 / math.sqrt(fan_in)
        return torch.randn(*shape, generator=generator, dtype=torch.float64) * scale

    lifted = 4 * coordinate_width + 4 * channels + 2
    d = width // heads
    sd = {"conv00.weight": draw(width, lifted, 1, 1), "conv00.bias": draw(width, scale=0.3)}
    for block in ("conv0", "conv1"):
        sd[f"{block}.qkv_proj.weight"] = draw(3 * width, width, 1, 1)
        sd[f"{block}.qkv_proj.bias"] = draw(3 * width, scale=0.3)
        for norm in ("kln", "vln"):
            sd[f"{block}.{norm}.weight"] = 1 + draw(heads, 1, d, scale=0.3)
            sd[f"{block}.{norm}.bias"] = draw(heads, 1, d, scale=0.3)
        for proj in ("o_proj1", "o_proj2"):
            sd[f"{block}.{proj}.weight"] = draw(width, width, 1, 1)
            sd[f"{block}.{proj}.bias"] = draw(width, scale=0.3)
    sd["fc1.weight"], sd["fc1.bias"] = draw(hidden, width, 1, 1), draw(hidden, scale=0.3)
    sd["fc2.weight"], sd["fc2.bias"] = draw(3, hidden, 1, 1), draw(3, scale=0.3)
    return sd


def tiny_official(seed: int = 2, variant: str = "srno") -> tuple[SRNO, dict[str, torch.Tensor]]:
    """A float64 SRNO (EDSR 1 block x 4 channels, width 16, 4 heads, head 8) loaded from random
    weights in the SRNO layout, and those weights (the encoder's included)."""
    torch.manual_seed(seed)
    encoding = VARIANTS[variant]
    net = SRNO(
        EDSRBaseline(n_resblocks=1, n_feats=4), width=16, heads=4, head_hidden=8, encoding=encoding
    ).double()
    sd = {f"encoder.{k}": v for k, v in net.encoder.state_dict().items()}
    sd |= official_head_weights(seed, 4, 16, 4, 8, coordinate_width=encoding.width)
    net.load_state_dict(srno_state_dict(sd), strict=True)
    return net.eval(), sd


# ---------------------------------------------------------------- the per-query oracle


def containing_pixel(point, size):
    """(row, col) of the LR pixel whose box contains ``point`` (the nearest centre)."""
    return tuple(
        min(n - 1, max(0, math.floor((p + 1) * n / 2))) for p, n in zip(point, size, strict=True)
    )


def box_mean_of_pe(c, r, bandwidth: int, nodes: int = 16) -> np.ndarray:
    """The mean over the box [c - r, c + r] of PE = concat_k [sin ω c_y, sin ω c_x, cos ω c_y,
    cos ω c_x], ω = 2^k, by a tensor-product Gauss-Legendre rule over the 2-D box."""
    t, weights = np.polynomial.legendre.leggauss(nodes)
    ys, xs = c[0] + r[0] * t[:, None], c[1] + r[1] * t[None, :]
    joint = weights[:, None] * weights[None, :] / 4  # sums to one: a mean
    out = []
    for k in range(bandwidth):
        omega = 2.0**k
        for f in (np.sin, np.cos):
            out += [(f(omega * ys) * joint).sum(), (f(omega * xs) * joint).sum()]
    return np.array(out)


def oracle_lifting(feat, q, cell, bandwidth):
    """SRNO's lifting input of one query: four branches' coordinates, weighted features, cell."""
    size = feat.shape[1:]
    h, w = size
    rel_cell = [cell[0] * h, cell[1] * w]
    codes, latents, areas = [], [], []
    for vy, vx in [(-1, -1), (-1, 1), (1, -1), (1, 1)]:
        shifted = [
            min(max(s, -1 + EPS), 1 - EPS) for s in (q[0] + vy / h + EPS, q[1] + vx / w + EPS)
        ]
        index = containing_pixel(shifted, size)
        centre = [-1 + (2 * i + 1) / n for i, n in zip(index, size, strict=True)]
        c = [(q[0] - centre[0]) * h, (q[1] - centre[1]) * w]  # the unshifted query
        radius = [rel_cell[0] / 2, rel_cell[1] / 2]
        codes.append(np.array(c) if bandwidth is None else box_mean_of_pe(c, radius, bandwidth))
        latents.append(feat[:, index[0], index[1]])
        areas.append(abs(c[0] * c[1]) + AREA_EPS)
    total = sum(areas)
    weighted = [areas[3 - t] / total * latents[t] for t in range(4)]  # the opposite branch's area
    return np.concatenate([*codes, *weighted, rel_cell])


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def bessel_norm(x, weight, bias):
    """Per row: (x - mean) / (std + 1e-5), std with divisor n - 1, then the affine map."""
    mean = x.mean(axis=-1, keepdims=True)
    std = np.sqrt(((x - mean) ** 2).sum(axis=-1, keepdims=True) / (x.shape[-1] - 1))
    return (x - mean) / (std + NORM_EPS) * weight + bias


def linear(sd, name, x):
    weight = sd[f"{name}.weight"]
    return x @ weight.reshape(weight.shape[0], -1).T + sd[f"{name}.bias"]


def oracle_block(sd, block, x, heads):
    """One Galerkin block on all N queries ``x (N, D)``."""
    n, width = x.shape
    d = width // heads
    qkv = linear(sd, f"{block}.qkv_proj", x)
    attention = np.zeros_like(x)
    for head in range(heads):
        base = 3 * d * head  # each head's channels: [q | k | v]
        q, k, v = (qkv[:, base + i * d : base + (i + 1) * d] for i in range(3))
        k = bessel_norm(k, sd[f"{block}.kln.weight"][head, 0], sd[f"{block}.kln.bias"][head, 0])
        v = bessel_norm(v, sd[f"{block}.vln.weight"][head, 0], sd[f"{block}.vln.bias"][head, 0])
        galerkin = sum(np.outer(k[i], v[i]) for i in range(n)) / n
        attention[:, head * d : (head + 1) * d] = q @ galerkin
    mixed = x + attention
    return x + linear(sd, f"{block}.o_proj2", gelu(linear(sd, f"{block}.o_proj1", mixed)))


def oracle_srno(sd, feat, image, queries, cells, heads, bandwidth=None) -> np.ndarray:
    """SRNO of one image: ``queries``/``cells`` (N, 2), all decoded together → (N, 3)."""
    sd = {k: v.detach().double().numpy() for k, v in sd.items()}
    lifted = np.stack(
        [oracle_lifting(feat, q, c, bandwidth) for q, c in zip(queries, cells, strict=True)]
    )
    x = linear(sd, "conv00", lifted)
    x = oracle_block(sd, "conv1", oracle_block(sd, "conv0", x, heads), heads)
    rgb = linear(sd, "fc2", gelu(linear(sd, "fc1", x)))
    return rgb + np.stack([tent_bilinear(image, q) for q in queries])


# ---------------------------------------------------------------- queries


def hr_grid(size: tuple[int, int], batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pixel centre of an HR grid ``(B, H, W, 2)`` and its cell, float64."""
    coord = make_coord(size, flatten=False, dtype=torch.float64).expand(batch, -1, -1, -1)
    cell = coord.new_tensor([2 / size[0], 2 / size[1]]).expand_as(coord)
    return coord, cell


def scattered_queries(n: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries anywhere ``(2, n, 2)``, each with its own anisotropic scale in [1, 12]."""
    generator = torch.Generator().manual_seed(seed)
    coord = torch.rand(2, n, 2, generator=generator, dtype=torch.float64) * 2 - 1
    scales = torch.rand(2, n, 2, generator=generator, dtype=torch.float64) * 11 + 1
    return coord, 2 / (coord.new_tensor(LR_SIZE) * scales)


QUERIES = {
    "grid_x2.6_x1.6": lambda: hr_grid((13, 11)),
    "grid_x1.2_x3": lambda: hr_grid((6, 21)),
    "scattered": scattered_queries,
}


def lr_batch(seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, *LR_SIZE, generator=generator, dtype=torch.float64) * 2 - 1


def expected_outputs(net, sd, lr, coord, cell, bandwidth) -> torch.Tensor:
    with torch.no_grad():
        feat = net.encoder(lr).numpy()
    flat_coord, flat_cell = coord.reshape(2, -1, 2).numpy(), cell.reshape(2, -1, 2).numpy()
    heads = net.blocks[0].heads
    rgb = [
        oracle_srno(sd, feat[b], lr[b].numpy(), flat_coord[b], flat_cell[b], heads, bandwidth)
        for b in range(2)
    ]
    return torch.from_numpy(np.stack(rgb)).reshape(*coord.shape[:-1], 3)


# ---------------------------------------------------------------- SRNO = its code's outputs


@pytest.mark.parametrize("queries", list(QUERIES))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_srno_equals_the_per_query_oracle_in_float64(variant, queries):
    net, sd = tiny_official(variant=variant)
    lr = lr_batch()
    coord, cell = QUERIES[queries]()
    with torch.no_grad():
        got = net(lr, coord, cell)
    bandwidth = None if variant == "srno" else BANDWIDTH
    expected = expected_outputs(net, sd, lr, coord, cell, bandwidth)
    assert got.shape == (*coord.shape[:-1], 3)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-11)


def test_ipe_srno_is_srno_with_pe_damped_over_the_query_pixel():
    # the oracle test would pass for an encoding that had no effect on the output: the same
    # weights with the point encoding PE differ at a finite pixel and agree as it vanishes
    lr = lr_batch()
    coord, cell = hr_grid((13, 11))
    ipe, _ = tiny_official(variant="ipe_srno")
    pe = SRNO(
        EDSRBaseline(n_resblocks=1, n_feats=4), width=16, heads=4, head_hidden=8,
        encoding=PE(BANDWIDTH),
    ).double()  # fmt: skip
    pe.load_state_dict(ipe.state_dict())
    with torch.no_grad():
        assert (ipe(lr, coord, cell) - pe(lr, coord, cell)).abs().max() > 1e-3
        tiny = cell * 1e-6
        torch.testing.assert_close(ipe(lr, coord, tiny), pe(lr, coord, tiny), rtol=0, atol=1e-9)


# ---------------------------------------------------------------- the lifting of IPE-SRNO


@pytest.mark.parametrize("seed", [0, 1])
def test_ipe_lifting_is_the_box_mean_of_pe_over_the_query_pixel(seed):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(2, LR_SIZE[0] * LR_SIZE[1], 5, generator=generator, dtype=torch.float64)
    coord, cell = scattered_queries(12, seed)
    plain = lifting_input(features, LR_SIZE, coord, cell, NoEncoding())
    ipe = lifting_input(features, LR_SIZE, coord, cell, IPE(BANDWIDTH))
    width = 4 * BANDWIDTH
    for b in range(2):
        for k in range(coord.shape[1]):
            h, w = LR_SIZE
            radius = [cell[b, k, 0].item() * h / 2, cell[b, k, 1].item() * w / 2]
            for t in range(4):  # the same branches: the plain lifting's relative coordinates
                c = plain[b, k, 2 * t : 2 * t + 2].tolist()
                expected = box_mean_of_pe(c, radius, BANDWIDTH)
                got = ipe[b, k, t * width : (t + 1) * width].numpy()
                np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # the weighted features and the cell are SRNO's
    torch.testing.assert_close(ipe[..., 4 * width :], plain[..., 8:], rtol=0, atol=0)


def test_the_lifting_without_the_cell_drops_only_the_cell():
    features = torch.randn(2, LR_SIZE[0] * LR_SIZE[1], 5, dtype=torch.float64)
    coord, cell = scattered_queries(6)
    full = lifting_input(features, LR_SIZE, coord, cell, IPE(2))
    bare = lifting_input(features, LR_SIZE, coord, cell, IPE(2), cell_input=False)
    assert bare.shape[-1] == full.shape[-1] - 2 == 4 * 8 + 4 * 5
    torch.testing.assert_close(full[..., :-2], bare, rtol=0, atol=0)
    torch.testing.assert_close(full[..., -2:], cell * coord.new_tensor(LR_SIZE), rtol=0, atol=0)


# ---------------------------------------------------------------- a grid decoder


def test_a_query_depends_on_the_queries_decoded_with_it():
    net, _ = tiny_official()
    lr = lr_batch()
    coord, cell = hr_grid((13, 11))
    with torch.no_grad():
        whole = net(lr, coord, cell)
        top = net(lr, coord[:, :4], cell[:, :4])
    assert (top - whole[:, :4]).abs().max() > 1e-3


def test_permuting_the_queries_permutes_the_outputs():
    net, _ = tiny_official()
    lr = lr_batch()
    coord, cell = scattered_queries(40)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(
            net(lr, coord[:, order], cell[:, order]), net(lr, coord, cell)[:, order]
        )


def test_a_grid_decodes_as_the_flat_list_of_its_queries():
    net, _ = tiny_official()
    lr = lr_batch()
    coord, cell = hr_grid((13, 11))
    with torch.no_grad():
        grid = net(lr, coord, cell)
        flat = net(lr, coord.reshape(2, -1, 2), cell.reshape(2, -1, 2))
    assert grid.shape == (2, 13, 11, 3)
    torch.testing.assert_close(grid.reshape(2, -1, 3), flat, rtol=0, atol=0)


CHUNKS = [(5, "srno"), (50, "srno"), (142, "srno"), (143, "srno"), (1000, "srno"), (7, "ipe_srno")]


@pytest.mark.parametrize(("chunk", "variant"), CHUNKS, ids=str)
def test_chunked_decode_equals_the_one_shot_whole_grid_decode(chunk, variant):
    net, _ = tiny_official(variant=variant)
    lr = lr_batch()
    coord, cell = hr_grid((13, 11))  # 143 queries per image
    with torch.no_grad():
        feat = net.encode(lr)
        whole = net.decode(feat, coord, cell)
        got = net.decode(feat, coord, cell, chunk=chunk)
        torch.testing.assert_close(got, whole, rtol=0, atol=1e-13)
        single = net.float()  # and in float32, to float32 rounding
        got = single.decode(feat.float(), coord.float(), cell.float(), chunk=chunk)
        torch.testing.assert_close(got.double(), whole, rtol=0, atol=1e-5)


@pytest.mark.parametrize("chunk", [None, 7, 50, 200])
def test_decode_image_is_the_decode_of_every_pixel_as_one_grid(chunk):
    net, _ = tiny_official()
    lr = lr_batch()
    coord, cell = hr_grid((13, 11))
    with torch.no_grad():
        feat = net.encode(lr)
        got = net.decode_image(feat, (13, 11), chunk=chunk)
        torch.testing.assert_close(got, net.decode(feat, coord, cell), rtol=0, atol=1e-13)


@pytest.mark.parametrize("chunk", [None, 9])
def test_decode_image_in_bands_decodes_each_band_as_its_own_grid(chunk):
    # the SRNO code's validation: eval_bsize rows at a time, each band a grid of its own
    net, _ = tiny_official()
    lr = lr_batch()
    coord, cell = hr_grid((13, 11))
    with torch.no_grad():
        feat = net.encode(lr)
        got = net.decode_image(feat, (13, 11), chunk=chunk, band=5)
        bands = [net.decode(feat, coord[:, r : r + 5], cell[:, r : r + 5]) for r in (0, 5, 10)]
        torch.testing.assert_close(got, torch.cat(bands, dim=1), rtol=0, atol=1e-13)
        assert (got - net.decode_image(feat, (13, 11))).abs().max() > 1e-3


def test_chunked_decode_takes_one_pass_per_block_and_one_more():
    net, _ = tiny_official()
    lr = lr_batch()
    coord, cell = hr_grid((13, 11))
    lifts = []
    original = net.lift

    def counting(grid, c, e):
        lifts.append(c.shape[1])
        return original(grid, c, e)

    net.lift = counting
    with torch.no_grad():
        net.decode(net.encode(lr), coord, cell, chunk=50)
    assert lifts == [50, 50, 43] * 3  # 143 queries in 3 chunks, 3 passes for 2 blocks
    assert max(lifts) <= 50


def test_a_block_is_its_summary_applied():
    torch.manual_seed(4)
    block = GalerkinAttention(12, 3).double()
    x = torch.randn(2, 9, 12, dtype=torch.float64)
    halves = block.summary(x[:, :4]) + block.summary(x[:, 4:])
    torch.testing.assert_close(block.apply(x, halves, 9), block(x), rtol=0, atol=1e-14)
    assert block.summary(x).shape == (2, 3, 4, 4)


def test_forward_equals_decode_of_encode_and_keeps_no_state():
    net, _ = tiny_official()
    lr = lr_batch()
    coord, cell = hr_grid((6, 21))
    with torch.no_grad():
        feat = net.encode(lr)
        net.encode(torch.zeros_like(lr))
        torch.testing.assert_close(net.decode(feat, coord, cell), net(lr, coord, cell))
    assert torch.equal(feat[:, -3:], lr)  # the LR image rides after the features


# ---------------------------------------------------------------- refusals


def test_features_without_the_lr_image_are_refused():
    net, _ = tiny_official()
    lr = lr_batch()
    coord, cell = hr_grid((6, 21))
    with pytest.raises(ValueError, match=r"SRNO features must be \(B, 7, h, w\)"):
        net.decode(net.encoder(lr), coord, cell)


@pytest.mark.parametrize(
    ("coord_shape", "cell_shape", "message"),
    [
        ((2, 5), (2, 5), "coord must be"),
        ((2, 4, 2), (2, 4, 1), "cell must have"),
        ((3, 4, 2), (3, 4, 2), "batch size 3"),
    ],
)
def test_malformed_queries_are_refused(coord_shape, cell_shape, message):
    net, _ = tiny_official()
    feat = net.encode(lr_batch())
    with pytest.raises(ValueError, match=message):
        net.decode(feat, torch.zeros(coord_shape, dtype=torch.float64), torch.ones(cell_shape))


def test_heads_must_split_the_width_and_chunks_and_bands_be_positive():
    with pytest.raises(ValueError, match="must split into 5 heads"):
        GalerkinAttention(16, 5)
    net, _ = tiny_official()
    coord, cell = hr_grid((6, 21))
    feat = net.encode(lr_batch())
    with pytest.raises(ValueError, match="chunk must be a positive"):
        net.decode(feat, coord, cell, chunk=0)
    with pytest.raises(ValueError, match="chunk must be a positive"):
        net.decode_image(feat, (6, 21), chunk=-1)
    with pytest.raises(ValueError, match="band must be a positive"):
        net.decode_image(feat, (6, 21), band=0)
