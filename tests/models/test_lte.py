"""LTE and IPE-LTE compute what the LTE code base and the integrated basis say, tile by tile too.

Oracles: a per-query loop written from the head's description (one query at a time, float64,
plain Python over the ensemble branches, its own 3x3 convolution, lookup and bilinear sample;
only the encoder's features come from the network), numerical integration of the basis over the
query pixel, ``F.grid_sample`` for the bilinear LR term, one query of every HR pixel for tiled
upsampling, and a state dict rewritten under the official names for the checkpoint translation.
"""

from __future__ import annotations

import itertools
import math
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ipe_lightning import inference
from ipe_lightning.coords import make_cell, make_coord
from ipe_lightning.inference import upsample
from ipe_lightning.models import RDN, EDSRBaseline
from ipe_lightning.models.checkpoint import from_liif_checkpoint, load_network
from ipe_lightning.models.lte import (
    LTE,
    IntegratedBasis,
    PointBasis,
    bilinear_taps,
    fourier_basis,
    integrated_fourier_basis,
    lte_network_config,
)
from ipe_lightning.models.mlp import PlainMLP

LR_SIZE = (5, 7)  # odd: no HR pixel centre of the sizes below falls on an LR pixel boundary
EPS = 1e-6  # LTE code (as LIIF): lookup shift and clamp margin
# (basis, phase) of the three presets: LTE, IPE-LTE, IPE-LTE without phase
VARIANTS = {
    "lte": (PointBasis(), True),
    "ipe_lte": (IntegratedBasis(), True),
    "ipe_lte_nophase": (IntegratedBasis(), False),
}


def tiny_lte(variant: str, seed: int = 2, n_feats: int = 4, hidden_dim: int = 8) -> LTE:
    torch.manual_seed(seed)
    basis, phase = VARIANTS[variant]
    net = LTE(
        EDSRBaseline(n_resblocks=1, n_feats=n_feats),
        hidden_dim=hidden_dim,
        mlp=partial(PlainMLP, hidden=(8, 8, 8)),
        basis=basis,
        phase=phase,
    )
    with torch.no_grad():  # frequencies and phases of several units: θ spans many periods
        net.freq.weight.mul_(6)
        if net.phase is not None:
            net.phase.weight.mul_(3)
    return net.eval()


# ---------------------------------------------------------------- the per-query oracle


def containing_pixel(point, size):
    """(row, col) of the LR pixel whose box contains ``point`` (the nearest centre)."""
    return tuple(
        min(n - 1, max(0, math.floor((p + 1) * n / 2))) for p, n in zip(point, size, strict=True)
    )


def conv3x3_at(feat, weight, bias, index):
    """A zero-padded 3x3 convolution of ``feat (C, h, w)`` evaluated at one LR pixel."""
    channels, height, width = feat.shape
    patch = np.zeros((channels, 3, 3))
    for ky in range(3):
        for kx in range(3):
            y, x = index[0] + ky - 1, index[1] + kx - 1
            if 0 <= y < height and 0 <= x < width:
                patch[:, ky, kx] = feat[:, y, x]
    return np.tensordot(weight, patch, axes=3) + bias


def tent_bilinear(image, q):
    """Border-padded bilinear sample of ``image (3, h, w)`` at ``q``: the point is clipped to the
    outermost pixel centres and every pixel weighs ``max(0, 1 - |distance|)`` per axis."""
    _, height, width = image.shape
    y = min(max(((q[0] + 1) * height - 1) / 2, 0), height - 1)
    x = min(max(((q[1] + 1) * width - 1) / 2, 0), width - 1)
    return sum(
        image[:, i, j] * max(0.0, 1 - abs(y - i)) * max(0.0, 1 - abs(x - j))
        for i in range(height)
        for j in range(width)
    )


def sinc(x):
    return 1.0 if x == 0 else math.sin(x) / x


def oracle_lte_query(params, feat, image, q, cell, integrated, phase):
    """One LTE query, float64, one ensemble branch at a time."""
    size = feat.shape[1:]
    h, w = size
    rel_cell = [cell[0] * h, cell[1] * w]
    radius = [rel_cell[0] / 2, rel_cell[1] / 2]
    pairs = params["freq_w"].shape[0] // 2
    phases = params["phase"] @ np.array(rel_cell) if phase else np.zeros(pairs)
    predictions, areas = [], []
    for vy, vx in [(-1, -1), (-1, 1), (1, -1), (1, 1)]:
        shifted = [q[0] + vy / h + EPS, q[1] + vx / w + EPS]
        shifted = [min(max(s, -1 + EPS), 1 - EPS) for s in shifted]
        index = containing_pixel(shifted, size)
        centre = [-1 + (2 * i + 1) / n for i, n in zip(index, size, strict=True)]
        c = [(q[0] - centre[0]) * h, (q[1] - centre[1]) * w]  # the unshifted query
        coef = conv3x3_at(feat, params["coef_w"], params["coef_b"], index)
        freq = conv3x3_at(feat, params["freq_w"], params["freq_b"], index)
        cosines, sines = [], []
        for k in range(pairs):
            f_y, f_x = freq[2 * k], freq[2 * k + 1]
            theta = f_y * c[0] + f_x * c[1] + phases[k]
            damping = sinc(math.pi * f_y * radius[0]) * sinc(math.pi * f_x * radius[1])
            damping = damping if integrated else 1.0
            cosines.append(math.cos(math.pi * theta) * damping)
            sines.append(math.sin(math.pi * theta) * damping)
        hidden = coef * np.array(cosines + sines)
        for weight, bias in params["mlp"][:-1]:
            hidden = np.maximum(weight @ hidden + bias, 0.0)
        weight, bias = params["mlp"][-1]
        predictions.append(weight @ hidden + bias)
        areas.append(abs(c[0] * c[1]) + 1e-9)
    opposite = [areas[3], areas[2], areas[1], areas[0]]
    ensemble = sum(a / sum(opposite) * p for a, p in zip(opposite, predictions, strict=True))
    return ensemble + tent_bilinear(image, q)


def oracle_params(net: LTE) -> dict:
    def array(t):
        return t.detach().double().numpy()

    return {
        "coef_w": array(net.coef.weight),
        "coef_b": array(net.coef.bias),
        "freq_w": array(net.freq.weight),
        "freq_b": array(net.freq.bias),
        "phase": None if net.phase is None else array(net.phase.weight),
        "mlp": [(array(m.weight), array(m.bias)) for m in net.mlp.linears],
    }


def hr_centre(i, n):
    return -1 + (2 * i + 1) / n


def query_set():
    """Border, corner and interior queries at non-integer, anisotropic and large scales."""
    coords, cells = [], []
    for height, width in [(13, 11), (60, 84)]:  # s = (2.6, 1.57…) and s = 12
        for i, j in [(0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1),
                     (0, width // 2), (height // 2, 0), (height // 2, width // 2)]:  # fmt: skip
            coords.append([hr_centre(i, height), hr_centre(j, width)])
            cells.append([2 / height, 2 / width])
    coords.append([hr_centre(1, LR_SIZE[0]), hr_centre(2, LR_SIZE[1])])  # on an LR centre
    cells.append([2 / 13, 2 / 11])
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):  # anywhere, with a per-query anisotropic scale in [1, 12]
        y, x = (torch.rand(2, generator=generator, dtype=torch.float64) * 2 - 1).tolist()
        s_h, s_w = (torch.rand(2, generator=generator, dtype=torch.float64) * 11 + 1).tolist()
        coords.append([y, x])
        cells.append([2 / (LR_SIZE[0] * s_h), 2 / (LR_SIZE[1] * s_w)])
    coord, cell = torch.tensor(coords), torch.tensor(cells)
    # batch of two: the second image is queried in reverse order
    return torch.stack([coord, coord.flip(0)]), torch.stack([cell, cell.flip(0)])


def lr_batch(seed: int = 1) -> torch.Tensor:
    return torch.rand(2, 3, *LR_SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_lte_head_equals_naive_per_query_loop(variant):
    net = tiny_lte(variant)
    lr = lr_batch()
    coord, cell = query_set()
    with torch.no_grad():
        got = net(lr, coord, cell)
        feat = net.encoder(lr).double().numpy()
    params = oracle_params(net)
    integrated = isinstance(net.basis, IntegratedBasis)
    has_phase = net.phase is not None
    expected = np.zeros((*coord.shape[:2], 3))
    for b in range(coord.shape[0]):
        image = lr[b].double().numpy()
        for k in range(coord.shape[1]):
            q, c = coord[b, k].double().tolist(), cell[b, k].double().tolist()
            expected[b, k] = oracle_lte_query(params, feat[b], image, q, c, integrated, has_phase)
    expected = torch.from_numpy(expected)
    torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-5)


def test_the_three_variants_compute_different_functions():
    # the oracle test would pass for a basis or phase that had no effect; with one set of weights
    # the variants must disagree at a finite cell
    lr = lr_batch()
    coord, cell = query_set()
    reference = tiny_lte("lte")
    outputs = {}
    for variant in VARIANTS:
        net = tiny_lte(variant)
        net.load_state_dict(reference.state_dict(), strict=net.phase is not None)
        with torch.no_grad():
            outputs[variant] = net(lr, coord, cell)
    assert (outputs["lte"] - outputs["ipe_lte"]).abs().max() > 1e-3
    assert (outputs["ipe_lte"] - outputs["ipe_lte_nophase"]).abs().max() > 1e-3


# ---------------------------------------------------------------- the integrated basis


def box_mean_of_basis(theta, freq, radius, nodes: int = 64):
    """The mean of [cos πθ(c+u), sin πθ(c+u)] over u in the box [-r, r] by Gauss-Legendre."""
    t, w = np.polynomial.legendre.leggauss(nodes)
    u_y = radius[..., 0, None, None] * t[:, None]  # (..., n, 1)
    u_x = radius[..., 1, None, None] * t[None, :]  # (..., 1, n)
    weights = w[:, None] * w[None, :] / 4  # the mean over the box: weights sum to 1
    shifted = (
        theta[..., None, None]
        + freq[..., 0, None, None] * u_y[..., None, :, :]
        + freq[..., 1, None, None] * u_x[..., None, :, :]
    )  # (..., K, n, n)
    cosines = (np.cos(np.pi * shifted) * weights).sum(axis=(-1, -2))
    sines = (np.sin(np.pi * shifted) * weights).sum(axis=(-1, -2))
    return np.concatenate([cosines, sines], axis=-1)


def random_basis_inputs(seed: int, n: int = 32, pairs: int = 16):
    generator = np.random.default_rng(seed)
    freq = generator.uniform(-8, 8, size=(n, pairs, 2))  # (f_y, f_x)
    centre = generator.uniform(-2, 2, size=(n, 2))  # LR-pixel units, as c_t
    phase = generator.uniform(-2, 2, size=(n, pairs))
    radius = generator.uniform(0.02, 1.0, size=(n, 2))  # anisotropic: r_y and r_x independent
    theta = (freq * centre[:, None, :]).sum(-1) + phase
    return theta, freq, radius


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_integrated_basis_is_the_box_mean_of_the_point_basis(seed):
    theta, freq, radius = random_basis_inputs(seed)
    expected = box_mean_of_basis(theta, freq, radius)
    got = integrated_fourier_basis(
        torch.tensor(theta, dtype=torch.float32),
        torch.tensor(freq, dtype=torch.float32),
        torch.tensor(radius, dtype=torch.float32),
    )
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=0, atol=1e-4)
    # and in float64 the only error left is the quadrature's
    exact = integrated_fourier_basis(*map(torch.tensor, (theta, freq, radius)))
    np.testing.assert_allclose(exact.numpy(), expected, rtol=0, atol=1e-10)


def test_integrated_basis_tends_to_the_point_basis_as_the_pixel_shrinks():
    theta, freq, radius = map(torch.tensor, random_basis_inputs(3))
    point = fourier_basis(theta)
    errors = [
        (integrated_fourier_basis(theta, freq, radius * scale) - point).abs().max().item()
        for scale in [1e-1, 1e-2, 1e-3, 1e-4]
    ]
    assert errors[0] > 1e-3  # a pixel of 1/10 the radius still damps
    # 1 - sinc(x) ~ x² / 6: a hundredfold per decade
    for coarse, fine in itertools.pairwise(errors):
        assert fine < coarse / 50
    assert errors[-1] < 1e-5  # (π f r)² / 6 at |f| ≤ 8, r ≤ 1e-4
    assert torch.equal(integrated_fourier_basis(theta, freq, torch.zeros_like(radius)), point)


def test_the_damping_passes_gradient_to_the_frequencies_only_when_asked():
    theta, freq, radius = (
        torch.tensor(a, requires_grad=True) for a in random_basis_inputs(4, n=6, pairs=3)
    )
    weights = torch.randn(6, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    grads = {}
    for damping_gradient in (False, True):
        basis = IntegratedBasis(damping_gradient=damping_gradient)
        values = basis(theta, freq, radius)
        grads[damping_gradient] = torch.autograd.grad(
            (values * weights).sum(), (theta, freq), allow_unused=True, materialize_grads=True
        )
        assert torch.equal(values, integrated_fourier_basis(theta, freq, radius))  # same values
    # here θ is an input of its own, so without the damping's gradient freq gets none at all
    assert torch.equal(grads[False][1], torch.zeros_like(freq))
    assert grads[True][1].abs().min() > 0
    torch.testing.assert_close(grads[False][0], grads[True][0], rtol=0, atol=0)
    # with it, the gradient is the damping's derivative (finite differences, float64)
    assert torch.autograd.gradcheck(
        lambda f: integrated_fourier_basis(theta.detach(), f, radius.detach(), True), (freq,)
    )
    assert IntegratedBasis() == IntegratedBasis(damping_gradient=False)  # the default


def test_ipe_lte_equals_lte_for_a_vanishing_query_pixel():
    lte, ipe_lte = tiny_lte("lte"), tiny_lte("ipe_lte")
    ipe_lte.load_state_dict(lte.state_dict())
    lr = lr_batch()
    coord, cell = query_set()
    with torch.no_grad():
        torch.testing.assert_close(
            ipe_lte(lr, coord, cell * 1e-5), lte(lr, coord, cell * 1e-5), rtol=0, atol=1e-5
        )
        assert (ipe_lte(lr, coord, cell) - lte(lr, coord, cell)).abs().max() > 1e-3


# ---------------------------------------------------------------- the bilinear LR term


@pytest.mark.parametrize("size", [(5, 7), (1, 4), (6, 1)], ids=str)
def test_bilinear_taps_are_grid_sample_with_border_padding(size):
    generator = torch.Generator().manual_seed(5)
    image = torch.rand(2, 3, *size, generator=generator)
    coord = torch.rand(2, 200, 2, generator=generator) * 2.2 - 1.1  # also beyond the border
    centres = make_coord(size).expand(2, -1, -1)  # weights of exactly 0 and 1
    coord = torch.cat(
        [coord, centres, torch.tensor([[[-1.0, -1.0], [1.0, 1.0]]]).expand(2, -1, -1)], 1
    )
    index, weight = bilinear_taps(coord, size)
    table = image.flatten(2).transpose(1, 2)  # (B, h*w, 3)
    batch = torch.arange(2)[:, None]
    got = sum(w.unsqueeze(-1) * table[batch, i] for w, i in zip(weight, index, strict=True))
    expected = F.grid_sample(
        image, coord.flip(-1).unsqueeze(1), mode="bilinear", padding_mode="border",
        align_corners=False,
    )[:, :, 0, :].transpose(1, 2)  # fmt: skip
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(weight.sum(0), torch.ones_like(weight[0]))


def test_a_window_answers_the_queries_it_owns_from_a_crop_of_the_features():
    # LR rows 3..5 own the queries; their lookups and bilinear taps reach rows 2..6, and the 3x3
    # convolutions one row further: features of rows 1..7 suffice
    net = tiny_lte("ipe_lte")
    lr = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(6)) * 2 - 1
    hr_size = (40, 23)
    coord = make_coord(hr_size).expand(2, -1, -1)
    cell = make_cell(hr_size, coord.shape[1]).expand(2, -1, -1)
    owner = ((coord[0, :, 0] + 1) * 9 / 2).floor()
    mine = (owner >= 3) & (owner <= 5)
    feat = net.encode(lr)
    with torch.no_grad():
        whole = net.query(feat, coord, cell)
        grid = net.prepare(feat[..., 1:8, :], lr_size=(9, 7), offset=(1, 0), rows=(2, 7))
        torch.testing.assert_close(
            net.query_grid(grid, coord[:, mine], cell[:, mine]), whole[:, mine], rtol=0, atol=1e-6
        )
        with pytest.raises(ValueError, match="outside the window"):
            net.query_grid(grid, coord[:, owner == 1], cell[:, owner == 1])


# ---------------------------------------------------------------- the network API


def test_encode_carries_the_lr_image_after_the_features():
    net = tiny_lte("lte")
    lr = lr_batch()
    with torch.no_grad():
        feat = net.encode(lr)
        torch.testing.assert_close(feat[:, :-3], net.encoder(lr))
    assert torch.equal(feat[:, -3:], lr)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_equals_query_of_encode_and_keeps_no_state(variant):
    net = tiny_lte(variant)
    lr = lr_batch()
    coord, cell = query_set()
    with torch.no_grad():
        torch.testing.assert_close(net(lr, coord, cell), net.query(net.encode(lr), coord, cell))
        feat = net.encode(lr)
        net.encode(torch.zeros_like(lr))
        torch.testing.assert_close(net.query(feat, coord, cell), net(lr, coord, cell))


def test_features_without_the_lr_image_are_refused():
    net = tiny_lte("lte")
    lr = lr_batch()
    coord, cell = query_set()
    with pytest.raises(ValueError, match=r"LTE features must be \(B, 7, h, w\)"):
        net.query(net.encoder(lr), coord, cell)


def test_hidden_dim_must_hold_frequency_pairs():
    with pytest.raises(ValueError, match="positive even number"):
        LTE(EDSRBaseline(n_resblocks=1, n_feats=4), hidden_dim=7)


# ---------------------------------------------------------------- tiled upsampling


def one_query(net, lr_image: torch.Tensor, hr_size: tuple[int, int]) -> torch.Tensor:
    """Every HR pixel in one query, no chunks and no tiles (docs/method.md §4)."""
    batch = lr_image.shape[0]
    coord = make_coord(hr_size).expand(batch, -1, -1)
    cell = make_cell(hr_size, coord.shape[1]).expand(batch, -1, -1)
    with torch.no_grad():
        prediction = net((lr_image - 0.5) / 0.5, coord, cell)
    return (prediction * 0.5 + 0.5).clamp(0, 1).transpose(1, 2).reshape(batch, 3, *hr_size)


@pytest.mark.parametrize(
    "hr_size", [(29, 19), (132, 168), (6, 5)], ids=["x2.6_x1.4", "x12", "x0.5"]
)
@pytest.mark.parametrize("tile", [None, 3, 5, 64])
@pytest.mark.parametrize("variant", ["lte", "ipe_lte"])
def test_tiled_upsample_equals_one_query_of_every_pixel(variant, tile, hr_size, monkeypatch):
    monkeypatch.setattr(inference, "DECODER_TILE", 4)  # small images span many decoder tiles
    net = tiny_lte(variant, n_feats=8, hidden_dim=16)
    lr_image = torch.rand(2, 3, 11, 14, generator=torch.Generator().manual_seed(7))
    expected = one_query(net, lr_image, hr_size)
    got = upsample(net, lr_image, size=hr_size, tile=tile, max_queries=500)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


# ---------------------------------------------------------------- official checkpoints

OFFICIAL_ENCODERS = {"edsr-baseline": lambda: EDSRBaseline(), "rdn": lambda: RDN()}


def official_layout(net: LTE, encoder: str, seed: int) -> dict:
    """``net``'s weights as an LTE code-base checkpoint: ``{'model': {'name', 'args', 'sd'}}``."""
    sd = {
        ("imnet." + key.removeprefix("mlp.") if key.startswith("mlp.") else key): value.clone()
        for key, value in net.state_dict().items()
    }
    if encoder == "edsr-baseline":  # EDSR's mean shifts: in the file, unused without upsampler
        generator = torch.Generator().manual_seed(seed)
        for name in ("sub_mean", "add_mean"):
            sd[f"encoder.{name}.weight"] = torch.randn(3, 3, 1, 1, generator=generator)
            sd[f"encoder.{name}.bias"] = torch.randn(3, generator=generator)
    args = {
        "encoder_spec": {"name": encoder, "args": {"no_upsampling": True}},
        "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [256, 256, 256]}},
        "hidden_dim": 256,
    }
    return {"model": {"name": "lte", "args": args, "sd": sd}}


def load_official_lte(path) -> LTE:
    """An LTE code-base checkpoint through the loader of official checkpoints (weights_only=True,
    strict state dict: every key, nothing left over)."""
    return from_liif_checkpoint(path)


@pytest.mark.parametrize("encoder", list(OFFICIAL_ENCODERS))
def test_official_layout_round_trip(encoder, tmp_path):
    torch.manual_seed(8)
    net = LTE(OFFICIAL_ENCODERS[encoder]()).eval()
    checkpoint = official_layout(net, encoder, seed=9)
    head_keys = {k for k in checkpoint["model"]["sd"] if not k.startswith("encoder.")}
    assert head_keys == {
        "coef.weight", "coef.bias", "freq.weight", "freq.bias", "phase.weight",
        *(f"imnet.layers.{i}.{p}" for i in (0, 2, 4, 6) for p in ("weight", "bias")),
    }  # fmt: skip
    path = tmp_path / f"{encoder}-lte.pth"
    torch.save(checkpoint, path)

    loaded = load_official_lte(path).eval()

    assert isinstance(loaded, LTE) and isinstance(loaded.basis, PointBasis)
    assert type(loaded.encoder) is type(net.encoder)
    lr, (coord, cell) = lr_batch(10), query_set()
    with torch.no_grad():
        torch.testing.assert_close(loaded(lr, coord, cell), net(lr, coord, cell), rtol=0, atol=0)


def test_official_imnet_must_predict_rgb():
    args = {"imnet_spec": {"name": "mlp", "args": {"out_dim": 1, "hidden_list": [256]}}}
    with pytest.raises(ValueError, match="3 channels"):
        lte_network_config(args, {"_target_": "ipe_lightning.models.EDSRBaseline"})


def test_our_lte_checkpoints_load_for_test_and_predict(tmp_path):
    # what mode=test / mode=predict read: the network config in hyper_parameters['net']
    net = tiny_lte("ipe_lte_nophase")
    config = {
        "_target_": "ipe_lightning.models.lte.LTE",
        "encoder": {
            "_target_": "ipe_lightning.models.EDSRBaseline",
            "n_resblocks": 1,
            "n_feats": 4,
        },
        "hidden_dim": 8,
        "mlp": {
            "_target_": "ipe_lightning.models.mlp.PlainMLP",
            "_partial_": True,
            "hidden": [8] * 3,
        },
        "basis": {"_target_": "ipe_lightning.models.lte.IntegratedBasis"},
        "phase": False,
    }
    state = {f"net.{key}": value for key, value in net.state_dict().items()}
    path = tmp_path / "last.ckpt"
    torch.save({"hyper_parameters": {"net": config}, "state_dict": state}, path)
    loaded, info = load_network(path)
    assert info.config == config and info.model_name is None
    lr, (coord, cell) = lr_batch(11), query_set()
    with torch.no_grad():
        torch.testing.assert_close(loaded(lr, coord, cell), net(lr, coord, cell), rtol=0, atol=0)
