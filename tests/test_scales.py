"""A scale is a positive finite number or a pair ``(s_h, s_w)``; its tag (``x2``, ``x2.5``,
``x2x3``) names it in loaders, logs and reports and parses back to the same pair."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ipe_lightning.scales import as_scale_pair, parse_scale_tag, plain_scale, scale_tag


@pytest.mark.parametrize(
    ("scale", "pair"),
    [(2, (2.0, 2.0)), (2.5, (2.5, 2.5)), ((2, 3), (2.0, 3.0)), ([2.5, 3], (2.5, 3.0))],
)
def test_a_number_is_the_same_scale_on_both_axes_and_a_pair_is_per_axis(scale, pair):
    result = as_scale_pair(scale)
    assert result == pair
    assert all(type(value) is float for value in result)


@pytest.mark.parametrize(
    "scale",
    [
        True,  # a bool is an int to Python, never a scale
        (True, 2),
        0,
        -2,
        (2, 0),
        (2, -3),
        math.nan,
        math.inf,
        (2, math.inf),
        (math.nan, 2),
        (2,),
        (2, 3, 4),
        [],
        "2",
    ],
)
def test_non_positive_non_finite_bool_and_wrong_length_scales_are_rejected(scale):
    with pytest.raises(ValueError, match="scale must be"):
        as_scale_pair(scale)


@pytest.mark.parametrize(
    ("scale", "tag"),
    [
        (2, "x2"),
        (2.0, "x2"),
        (2.5, "x2.5"),
        ((3, 3), "x3"),  # equal axes are one number
        ((2, 3), "x2x3"),
        ((2.5, 3), "x2.5x3"),
        ((3, 2.5), "x3x2.5"),  # height first
    ],
)
def test_scale_tag_writes_integers_without_a_point_and_unequal_axes_twice(scale, tag):
    assert scale_tag(scale) == tag


@pytest.mark.parametrize(
    "scale", [2, 2.5, (2, 3), (2.5, 3), 30, 1 / 3, 1.1, (0.7, 12.25), 1e-5, 1e20]
)
def test_scale_tag_round_trips_through_parse_scale_tag(scale):
    assert parse_scale_tag(scale_tag(scale)) == as_scale_pair(scale)


@pytest.mark.parametrize(
    ("tag", "pair"), [("x2", (2.0, 2.0)), ("x2.5", (2.5, 2.5)), ("x2x3", (2.0, 3.0))]
)
def test_parse_scale_tag_reads_the_tags_of_the_docstring(tag, pair):
    assert parse_scale_tag(tag) == pair


@pytest.mark.parametrize(
    "tag",
    [
        "",
        "2",  # no x
        "y2",
        "X2",
        "div2k/x2",  # the loader name, not its tag
        "x",
        "xx2",
        "x2x",
        "x2x3x4",  # three axes
        "x-1",
        "x0",
        "x2x0",
        "xnan",
        "xinf",
        "xtwo",
        # float() reads these, but scale_tag never writes them: one scale has one tag
        "x2.0",
        "x02",
        "x 2",
        "x+2",
        "x2_0",
        "x1e1",
        "x3x3",
    ],
)
def test_parse_scale_tag_returns_none_for_what_is_not_a_tag(tag):
    assert parse_scale_tag(tag) is None


@pytest.mark.parametrize(
    ("scale", "plain"),
    [
        (2, 2),
        (2.0, 2),  # an integral float is written as an integer
        (2.5, 2.5),
        ((2, 3), [2, 3]),
        ((2.0, 3.5), [2, 3.5]),
        ([2.5, 3.0], [2.5, 3]),
    ],
)
def test_plain_scale_is_what_a_config_writes(scale, plain):
    assert plain_scale(scale) == plain  # a pair is a list, as YAML reads it back
    # 2 == 2.0: the JSON text shows which of the two a config or record file gets
    assert json.dumps(plain_scale(scale)) == json.dumps(plain)


@pytest.mark.parametrize("scale", [2, 2.0, 2.5, (2, 3), (2.0, 3.5), 1 / 3])
def test_a_plain_scale_survives_json_and_is_the_same_scale(scale):
    assert as_scale_pair(json.loads(json.dumps(plain_scale(scale)))) == as_scale_pair(scale)


@pytest.mark.parametrize("scale", [np.int64(2), np.float32(2), np.float64(2.5), np.array([2, 3])])
def test_numpy_numbers_are_scales_like_python_numbers(scale):
    expected = (2.5, 2.5) if scale.dtype == np.float64 else (2.0, 3.0) if scale.ndim else (2.0, 2.0)
    assert as_scale_pair(scale) == expected
    assert as_scale_pair(plain_scale(scale)) == expected
