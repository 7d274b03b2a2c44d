"""Claims about the coordinate encodings (docs/method.md §2, paper Eqs. 3-7).

Oracles: a plain-Python γ written from docs/method.md §2, hand-computed values, and the box
average of γ over the pixel by composite Gauss-Legendre quadrature in float64 (an integral, not
the closed form the implementation uses). The parts are called as ``encoding(offset, radius)``
with the radius ``(1/s_h, 1/s_w)``, half the query pixel in LIIF's relative-coordinate units.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ipe_lightning.models.encodings import (
    IPE,
    PE,
    Cell,
    IPECell,
    MetaPlain,
    NoEncoding,
    frequencies,
    integrated_positional_encoding,
    positional_encoding,
)

L = 10  # docs/method.md §2 default bandwidth


def naive_pe(c: tuple[float, float], bandwidth: int) -> list[float]:
    """γ(c) = concat_k [sin ω_k c_y, sin ω_k c_x, cos ω_k c_y, cos ω_k c_x], ω_k = 2^k."""
    out = []
    for k in range(bandwidth):
        omega = 2.0**k
        out += [
            math.sin(omega * c[0]),
            math.sin(omega * c[1]),
            math.cos(omega * c[0]),
            math.cos(omega * c[1]),
        ]
    return out


def gauss_legendre_mean(f, lo: float, hi: float, max_omega: float) -> float:
    """Mean of ``f`` over ``[lo, hi]`` by composite 8-point Gauss-Legendre quadrature.

    Panels are short enough that ``max_omega`` turns at most half a radian per half-panel, so the
    rule is exact to float64 rounding for the sinusoids integrated here.
    """
    panels = max(16, math.ceil(max_omega * (hi - lo)))
    nodes, weights = np.polynomial.legendre.leggauss(8)
    edges = np.linspace(lo, hi, panels + 1)
    half = (edges[1:] - edges[:-1])[:, None] / 2
    mid = (edges[1:] + edges[:-1])[:, None] / 2
    x = mid + half * nodes[None, :]
    return float((f(x) * weights[None, :] * half).sum() / (hi - lo))


def box_mean_of_pe(c: tuple[float, float], r: tuple[float, float], bandwidth: int) -> list[float]:
    """The mean of γ over the box [c_y ± r_y] x [c_x ± r_x], component by component.

    Each component of γ depends on one axis only, so its mean over the 2-D box is its mean over
    that axis' interval (Fubini); see the 2-D test below for the joint integral.
    """
    out = []
    for k in range(bandwidth):
        omega = 2.0**k
        (cy, cx), (ry, rx) = c, r

        def sin_(x, omega=omega):
            return np.sin(omega * x)

        def cos_(x, omega=omega):
            return np.cos(omega * x)

        out += [
            gauss_legendre_mean(sin_, cy - ry, cy + ry, omega),
            gauss_legendre_mean(sin_, cx - rx, cx + rx, omega),
            gauss_legendre_mean(cos_, cy - ry, cy + ry, omega),
            gauss_legendre_mean(cos_, cx - rx, cx + rx, omega),
        ]
    return out


def random_centres_and_radii(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    # relative coordinates of LIIF lie in about [-2, 2]; radii 1/s for s from 1 to 30, and
    # anisotropic pairs (s_h != s_w)
    centres = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 4 - 2
    scales = torch.exp(torch.rand(n, 2, generator=generator, dtype=torch.float64) * math.log(30))
    return centres, 1 / scales


def test_frequencies_are_powers_of_two_without_pi():
    torch.testing.assert_close(
        frequencies(5, dtype=torch.float64),
        torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0], dtype=torch.float64),
        rtol=0,
        atol=0,
    )


def test_pe_layout_matches_hand_computed_value():
    # c = (c_y, c_x) = (0.5, -0.25), L = 2: ω = 1, 2 (no π)
    got = positional_encoding(torch.tensor([0.5, -0.25], dtype=torch.float64), 2)
    expected = [
        math.sin(0.5), math.sin(-0.25), math.cos(0.5), math.cos(-0.25),
        math.sin(1.0), math.sin(-0.5), math.cos(1.0), math.cos(-0.5),
    ]  # fmt: skip
    assert got.tolist() == pytest.approx(expected, abs=1e-15)


def test_ipe_layout_matches_hand_computed_value():
    # c = (0.5, -0.25), r = (0.5, 0.25), L = 2; S = sin(ω r) / (ω r), unnormalised sinc
    got = integrated_positional_encoding(
        torch.tensor([0.5, -0.25], dtype=torch.float64),
        torch.tensor([0.5, 0.25], dtype=torch.float64),
        2,
    )
    s0y, s0x = math.sin(0.5) / 0.5, math.sin(0.25) / 0.25
    s1y, s1x = math.sin(1.0) / 1.0, math.sin(0.5) / 0.5
    expected = [
        math.sin(0.5) * s0y, math.sin(-0.25) * s0x, math.cos(0.5) * s0y, math.cos(-0.25) * s0x,
        math.sin(1.0) * s1y, math.sin(-0.5) * s1x, math.cos(1.0) * s1y, math.cos(-0.5) * s1x,
    ]  # fmt: skip
    assert got.tolist() == pytest.approx(expected, abs=1e-15)


def test_pe_equals_naive_formula_for_random_coordinates_with_batch_dims():
    centres, _ = random_centres_and_radii(12, seed=1)
    got = positional_encoding(centres.view(3, 4, 2), L)
    assert got.shape == (3, 4, 4 * L)
    expected = torch.tensor([naive_pe(tuple(c), L) for c in centres.tolist()], dtype=torch.float64)
    torch.testing.assert_close(got.view(12, -1), expected, rtol=0, atol=1e-12)


def test_ipe_equals_box_average_of_pe_over_the_pixel_float64():
    centres, radii = random_centres_and_radii(8, seed=2)
    # include isotropic radii too (s_h = s_w), and a large pixel (s = 1)
    radii[:2, 1] = radii[:2, 0]
    radii[2] = torch.tensor([1.0, 1.0], dtype=torch.float64)
    got = integrated_positional_encoding(centres, radii, L)
    expected = torch.tensor(
        [
            box_mean_of_pe(tuple(c), tuple(r), L)
            for c, r in zip(centres.tolist(), radii.tolist(), strict=True)
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_ipe_equals_box_average_of_pe_in_float32_to_1e_4():
    centres, radii = random_centres_and_radii(8, seed=3)
    c32, r32 = centres.float(), radii.float()
    got = integrated_positional_encoding(c32, r32, L)
    assert got.dtype == torch.float32
    # the oracle integrates around exactly the float32 centres and radii the encoding saw
    expected = torch.tensor(
        [
            box_mean_of_pe(tuple(c), tuple(r), L)
            for c, r in zip(c32.double().tolist(), r32.double().tolist(), strict=True)
        ],
        dtype=torch.float64,
    )
    assert (got.double() - expected).abs().max().item() < 1e-4


def test_ipe_equals_joint_2d_box_average_of_the_whole_pe_vector():
    # Integrate the full vector γ(y, x) over the 2-D pixel box on a tensor-product grid, without
    # using that each component depends on one axis. Small L keeps the 2-D grid cheap.
    bandwidth = 4
    centres, radii = random_centres_and_radii(3, seed=4)
    nodes, weights = np.polynomial.legendre.leggauss(8)
    for c, r in zip(centres.tolist(), radii.tolist(), strict=True):
        axes, axis_weights = [], []
        for d in range(2):
            edges = np.linspace(c[d] - r[d], c[d] + r[d], 17)
            half = (edges[1:] - edges[:-1])[:, None] / 2
            mid = (edges[1:] + edges[:-1])[:, None] / 2
            axes.append((mid + half * nodes).ravel())
            axis_weights.append((half * weights).ravel() / (2 * r[d]))
        total = np.zeros(4 * bandwidth)
        for y, wy in zip(axes[0], axis_weights[0], strict=True):
            for x, wx in zip(axes[1], axis_weights[1], strict=True):
                total += wy * wx * np.array(naive_pe((y, x), bandwidth))
        got = integrated_positional_encoding(
            torch.tensor(c, dtype=torch.float64), torch.tensor(r, dtype=torch.float64), bandwidth
        )
        np.testing.assert_allclose(got.numpy(), total, rtol=0, atol=1e-10)


def test_ipe_tends_to_pe_as_the_radius_shrinks():
    centres, _ = random_centres_and_radii(6, seed=5)
    pe = positional_encoding(centres, L)
    omega = 2.0 ** torch.arange(L, dtype=torch.float64)
    for r in [1e-1, 1e-2, 1e-3, 1e-5]:
        radii = torch.full_like(centres, r)
        gap = (integrated_positional_encoding(centres, radii, L) - pe).abs()
        # 1 - sinc(x) <= x²/6: each component is within (ω_k r)²/6 of γ
        bound = ((omega * r) ** 2 / 6).repeat_interleave(4)
        assert (gap <= bound + 1e-15).all()
    assert gap.max().item() < 1e-5  # r = 1e-5: even ω = 512 is within (512e-5)²/6 of γ
    # r = 0 exactly: the limit, with no 0/0
    exact = integrated_positional_encoding(centres, torch.zeros_like(centres), L)
    torch.testing.assert_close(exact, pe, rtol=0, atol=0)


def test_ipe_terms_with_large_omega_r_vanish_per_axis():
    centres, _ = random_centres_and_radii(6, seed=6)
    # anisotropic: the y-pixel is large (s_h = 1), the x-pixel tiny (s_w = 10^4)
    radii = torch.tensor([1.0, 1e-4], dtype=torch.float64).expand_as(centres)
    ipe = integrated_positional_encoding(centres, radii, L).view(6, L, 4)
    pe = positional_encoding(centres, L).view(6, L, 4)
    omega = 2.0 ** torch.arange(L, dtype=torch.float64)
    y_terms = ipe[..., [0, 2]]  # sin y, cos y
    # |sinc(ω r)| <= 1 / (ω r): the y terms decay like 1/ω_k
    assert (y_terms.abs() <= (1 / omega)[None, :, None] + 1e-15).all()
    assert y_terms[:, -3:].abs().max().item() < 1 / 128  # ω r >= 128 for the top three
    # while the x terms, whose ω r <= 0.05, stay at their PE values
    torch.testing.assert_close(ipe[..., [1, 3]], pe[..., [1, 3]], rtol=0, atol=(512e-4) ** 2 / 6)


ENCODINGS = {
    "none": NoEncoding(),
    "cell": Cell(),
    "pe": PE(L),
    "ipe": IPE(L),
    "ipe_cell": IPECell(L),
    "meta_plain": MetaPlain(),
}


@pytest.mark.parametrize(
    ("name", "width"),
    [("none", 2), ("cell", 4), ("pe", 4 * L), ("ipe", 4 * L), ("ipe_cell", 4 * L + 2),
     ("meta_plain", 3)],
)  # fmt: skip
def test_each_encoding_returns_as_many_values_as_its_width(name, width):
    encoding = ENCODINGS[name]
    assert encoding.width == width
    offset = torch.zeros(2, 5, 2)
    radius = torch.full((2, 5, 2), 0.25)
    assert encoding(offset, radius).shape == (2, 5, width)


def test_the_width_of_a_banded_encoding_follows_its_bandwidth():
    for bandwidth in (1, 4, 16):
        assert PE(bandwidth).width == IPE(bandwidth).width == 4 * bandwidth
        assert IPECell(bandwidth).width == 4 * bandwidth + 2
        offset, radius = torch.zeros(3, 2), torch.full((3, 2), 0.5)
        assert IPECell(bandwidth)(offset, radius).shape == (3, 4 * bandwidth + 2)


def test_each_encoding_is_the_decoder_input_of_its_table_row():
    # docs/method.md §2 table: rel_cell = (2/s_h, 2/s_w) and the IPE radius is rel_cell / 2;
    # MetaSR's meta input is (o_y, o_x, 1/s_h) (paper Eq. 9)
    generator = torch.Generator().manual_seed(7)
    rel_coord = torch.rand(7, 2, generator=generator, dtype=torch.float64) * 4 - 2
    scales = torch.rand(7, 2, generator=generator, dtype=torch.float64) * 11 + 1
    rel_cell = 2 / scales
    pe = torch.tensor([naive_pe(tuple(c), L) for c in rel_coord.tolist()], dtype=torch.float64)
    ipe = torch.tensor(
        [
            box_mean_of_pe(tuple(c), (1 / s[0], 1 / s[1]), L)
            for c, s in zip(rel_coord.tolist(), scales.tolist(), strict=True)
        ],
        dtype=torch.float64,
    )
    expected = {
        "none": rel_coord,
        "cell": torch.cat([rel_coord, rel_cell], dim=-1),
        "pe": pe,
        "ipe": ipe,
        "ipe_cell": torch.cat([ipe, rel_cell], dim=-1),
        "meta_plain": torch.cat([rel_coord, 1 / scales[:, :1]], dim=-1),
    }
    for name, value in expected.items():
        got = ENCODINGS[name](rel_coord, 1 / scales)
        torch.testing.assert_close(got, value, rtol=0, atol=1e-10, msg=name)


@pytest.mark.parametrize("bandwidth", [0, -3, 2.5, True, "10"], ids=str)
@pytest.mark.parametrize("part", [PE, IPE, IPECell])
def test_a_banded_encoding_refuses_a_bandwidth_that_is_not_a_positive_integer(part, bandwidth):
    with pytest.raises(ValueError, match="bandwidth L must be a positive integer"):
        part(bandwidth)


def test_non_positive_bandwidth_is_a_value_error():
    with pytest.raises(ValueError, match="bandwidth"):
        positional_encoding(torch.zeros(3, 2), 0)
