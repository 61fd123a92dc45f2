"""Space: a named observable with finite, increasing limits."""

from __future__ import annotations

import math
import weakref

import numpy as np
import pytest

import zgrad
from zgrad.space import Space


def test_attributes():
    obs = Space("x", limits=(-5.0, 5.0))
    assert zgrad.Space is Space
    assert obs.name == "x"
    assert obs.limits == (-5.0, 5.0)
    assert (obs.lower, obs.upper) == (-5.0, 5.0)
    assert obs.width == 10.0
    assert repr(obs) == "Space('x', limits=(-5.0, 5.0))"


def test_limits_are_converted_to_float():
    obs = Space("x", limits=[0, np.float32(2.5)])
    assert obs.limits == (0.0, 2.5)
    assert all(type(v) is float for v in obs.limits)
    np.testing.assert_allclose(Space("x", (0.1, 0.3)).width, 0.2, rtol=1e-15)


def test_inside():
    obs = Space("x", limits=(-1.0, 2.0))
    np.testing.assert_array_equal(
        obs.inside([-1.5, -1.0, 0.0, 2.0, 2.0000001, np.nan]), [False, True, True, True, False, False]
    )
    assert obs.inside(0.5).shape == ()
    assert bool(obs.inside(0.5)) and not bool(obs.inside(-3.0))
    np.testing.assert_array_equal(obs.inside(np.array([[0.0, 3.0]])), [[True, False]])


@pytest.mark.parametrize("name", [None, "", 1, b"x", ("x",)])
def test_bad_name_raises_type_error(name):
    with pytest.raises(TypeError, match="Space name must be a non-empty str"):
        Space(name, limits=(0.0, 1.0))


@pytest.mark.parametrize("limits", [None, 1.0, (1.0,), (0.0, 1.0, 2.0), "abc"])
def test_limits_not_a_pair_raise_type_error(limits):
    with pytest.raises(TypeError, match="limits must be a pair|limits must be two real numbers"):
        Space("x", limits=limits)


def test_limits_not_a_pair_message():
    with pytest.raises(TypeError, match=r"limits must be a pair \(lower, upper\); got \(1.0,\)"):
        Space("x", limits=(1.0,))


@pytest.mark.parametrize(
    "limits", [(True, 2.0), (0.0, False), (np.bool_(False), 1.0), ("0", "1"), (None, 1.0), (0.0, 1j)]
)
def test_limits_of_wrong_type_raise_type_error(limits):
    with pytest.raises(TypeError, match="limits must be two real numbers"):
        Space("x", limits=limits)


@pytest.mark.parametrize("limits", [(-math.inf, 1.0), (0.0, math.inf), (math.nan, 1.0), (0.0, np.nan)])
def test_non_finite_limits_raise_value_error(limits):
    with pytest.raises(ValueError, match="limits must be finite"):
        Space("x", limits=limits)


@pytest.mark.parametrize("limits", [(1.0, 1.0), (2.0, 1.0), (0.0, -0.0)])
def test_limits_not_increasing_raise_value_error(limits):
    with pytest.raises(ValueError, match="limits must satisfy lower < upper"):
        Space("x", limits=limits)


def test_equality_and_hash():
    a = Space("x", (0.0, 1.0))
    b = Space("x", (0, 1))
    assert a == b and hash(a) == hash(b)
    assert a != Space("y", (0.0, 1.0))
    assert a != Space("x", (0.0, 2.0))
    assert a != Space("x", (-1.0, 1.0))
    assert a != "x"
    assert a != (0.0, 1.0)
    assert len({a, b, Space("y", (0.0, 1.0))}) == 2
    assert {a: 1}[b] == 1


def test_immutable_and_weakly_referencable():
    obs = Space("x", (0.0, 1.0))
    with pytest.raises(AttributeError):
        obs.name = "y"
    with pytest.raises(AttributeError):
        obs.extra = 1
    assert weakref.ref(obs)() is obs
