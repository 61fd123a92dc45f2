"""Finite differences on NumPy callables (zgrad._finite): counts, limits, error estimates, statuses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from zgrad import _finite
from zgrad._finite import central_gradient, extrapolated_gradient, extrapolated_hessian
from zgrad.gradients import result


class Recorder:
    """A NumPy objective that counts its calls and records every point it is evaluated at."""

    def __init__(self, func):
        self.func = func
        self.points = []

    def __call__(self, x):
        self.points.append(np.array(x, copy=True))
        return self.func(x)

    @property
    def n(self):
        return len(self.points)


def cubic(x):
    return np.sum(x**3) + x[0] * x[-1]


def cubic_grad(x):
    g = 3 * x**2
    g[0] += x[-1]
    g[-1] += x[0]
    return g


def test_status_codes_match_the_result_module():
    assert _finite.STATUS_OK == result.STATUS_OK
    assert _finite.STATUS_ROUNDING == result.STATUS_ROUNDING
    assert _finite.STATUS_ONE_SIDED == result.STATUS_ONE_SIDED
    assert _finite.STATUS_NONFINITE == result.STATUS_NONFINITE


@pytest.mark.subprocess
def test_importing_finite_imports_neither_tensorflow_nor_numdifftools():
    code = "import sys, zgrad._finite; print('tensorflow' in sys.modules, 'numdifftools' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- the fast budget ------------------------------------------------------------------------------


def test_central_gradient_costs_two_evaluations_per_component():
    x = np.array([0.5, -1.5, 2.0])
    f = Recorder(cubic)
    g, n = central_gradient(f, x, 1e-5, f0=cubic(x))
    assert n == f.n == 6
    np.testing.assert_allclose(g, cubic_grad(x), rtol=1e-8)
    f = Recorder(cubic)
    g, n = central_gradient(f, x, 1e-5)
    assert n == f.n == 7


def test_central_gradient_one_sided_at_limits_stays_inside():
    x = np.array([0.0, 1.0, 0.3])
    lower, upper = np.array([0.0, -5.0, -5.0]), np.array([5.0, 1.0, 5.0])
    f = Recorder(cubic)
    g, err, n, status = central_gradient(f, x, 1e-4, lower, upper, full_output=True)
    points = np.array(f.points)
    assert np.all(points >= lower) and np.all(points <= upper)
    assert n == f.n == 7
    assert status == ("one-sided", "one-sided", "ok")
    # the three-point rule is exact for parabolas; a cubic leaves h**2 * f''' / 3 = 2e-8
    np.testing.assert_allclose(g, cubic_grad(x), rtol=0, atol=3e-8)
    assert np.all(np.abs(g - cubic_grad(x)) <= err)


# --- the accurate budget --------------------------------------------------------------------------


def test_extrapolated_gradient_budget_and_accuracy():
    x = np.array([0.5, -1.5, 2.0, 0.1])
    f = Recorder(lambda v: np.exp(v[0]) * np.sin(v[1]) + cubic(v))
    g, err, n, status = extrapolated_gradient(f, x, 0.1)
    exact = cubic_grad(x) + np.array([np.exp(x[0]) * np.sin(x[1]), np.exp(x[0]) * np.cos(x[1]), 0, 0])
    assert n == f.n <= 30 * x.size + 1
    np.testing.assert_allclose(g, exact, rtol=1e-9)
    assert np.all(np.abs(g - exact) <= err)
    assert status == ("ok",) * 4


def test_extrapolated_gradient_reuses_f0():
    x = np.array([0.5, -1.5])
    f = Recorder(cubic)
    *_, n, _ = extrapolated_gradient(f, x, 0.1, f0=cubic(x))
    assert n == f.n <= 30 * x.size
    assert not any(np.array_equal(p, x) for p in f.points)


def test_extrapolated_gradient_near_limits_is_one_sided_and_inside():
    x = np.array([1.0, 2.0, -0.5])
    lower = np.array([1.0, -np.inf, -0.5 - 1e-6])
    upper = np.array([np.inf, 2.0 + 1e-3, 0.0])
    f = Recorder(lambda v: np.exp(v[0]) + np.log(v[1]) * v[2] + v[2] ** 4)
    g, err, n, status = extrapolated_gradient(f, x, 0.1, lower, upper)
    points = np.array(f.points)
    assert np.all(points >= lower) and np.all(points <= upper)
    exact = np.array([np.exp(1.0), -0.5 / 2.0, np.log(2.0) + 4 * (-0.5) ** 3])
    np.testing.assert_allclose(g, exact, rtol=1e-7)
    assert np.all(np.abs(g - exact) <= err)
    # component 1 has 1e-3 of room above: a central rule shrunk 100x would be too small, so one-sided
    assert status == ("one-sided", "one-sided", "one-sided")


def test_rounding_floor_makes_the_error_honest_and_flags_the_component():
    # 1e-6 * y**2 next to 1e6 * x**2: f ~ 1e6 swamps the y-differences, rounding dominates
    f = lambda v: 1e6 * v[0] ** 2 + 1e-6 * v[1] ** 2  # noqa: E731
    x = np.array([1.0, 1.0])
    g, err, n, status = extrapolated_gradient(f, x, 0.1)
    exact = np.array([2e6, 2e-6])
    assert np.all(np.abs(g - exact) <= err)
    assert status[1] == "rounding-limited"
    assert err[1] > 1e-10  # the float resolution: eps * 1e6 / 0.1 ~ 2e-9


def test_float32_values_are_treated_as_float32_accurate():
    a = np.array([0.3, -1.2])
    f = lambda v: np.sum((v.astype(np.float32) - a.astype(np.float32)) ** 2)  # noqa: E731
    x = np.array([1.1, 0.4])
    g, err, n, status = extrapolated_gradient(f, x, 0.1, x_eps=np.finfo(np.float32).eps)
    exact = 2 * (x - a)
    assert np.all(np.abs(g - exact) <= err)
    assert np.all(err > 1e-9)  # float64 resolution would claim far better than float32 can give


def test_non_finite_values_give_status_and_infinite_error():
    g, err, n, status = extrapolated_gradient(lambda v: np.nan * v[0], [1.0, 2.0], 0.1)
    assert status == ("non-finite", "non-finite") and n == 1
    assert np.all(np.isinf(err)) and np.all(np.isnan(g))
    # finite at x but infinite to the right of x[0]
    f = lambda v: np.inf if v[0] > 1.0 else v[0] ** 2 + v[1]  # noqa: E731
    g, err, n, status = extrapolated_gradient(f, [1.0, 0.0], 0.1)
    assert status[0] == "non-finite" and status[1] == "ok"
    g, err, n, status = central_gradient(f, [1.0, 0.0], 1e-3, full_output=True)
    assert status[0] == "non-finite" and status[1] == "ok"


# --- the Hessian ----------------------------------------------------------------------------------


def test_extrapolated_hessian_is_symmetric_and_accurate():
    def f(v):
        return np.exp(v[0]) * v[1] ** 2 + v[1] * v[2] ** 3

    x = np.array([0.3, -1.0, 0.7])
    exact = np.array(
        [
            [np.exp(x[0]) * x[1] ** 2, 2 * np.exp(x[0]) * x[1], 0.0],
            [2 * np.exp(x[0]) * x[1], 2 * np.exp(x[0]), 3 * x[2] ** 2],
            [0.0, 3 * x[2] ** 2, 6 * x[1] * x[2]],
        ]
    )
    counted = Recorder(f)
    h, err, n = extrapolated_hessian(counted, x, 0.1)
    assert n == counted.n
    assert np.array_equal(h, h.T) and np.array_equal(err, err.T)
    np.testing.assert_allclose(h, exact, rtol=1e-7, atol=1e-8)
    assert np.all(np.abs(h - exact) <= err)


def test_extrapolated_hessian_at_a_limit_stays_inside():
    x = np.array([0.3, -1.0])
    lower, upper = np.array([0.3, -2.0]), np.array([1.0, -1.0])
    counted = Recorder(lambda v: np.exp(v[0]) * v[1] ** 2)
    h, err, n = extrapolated_hessian(counted, x, 0.1, lower, upper)
    points = np.array(counted.points)
    assert np.all(points >= lower) and np.all(points <= upper)
    exact = np.array([[np.exp(0.3), -2 * np.exp(0.3)], [-2 * np.exp(0.3), 2 * np.exp(0.3)]])
    np.testing.assert_allclose(h, exact, rtol=1e-6)
    assert np.array_equal(h, h.T)


# --- input checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("func", [central_gradient, extrapolated_gradient, extrapolated_hessian])
def test_input_errors(func):
    with pytest.raises(ValueError, match="outside the limits"):
        func(cubic, [2.0], 0.1, lower=0.0, upper=1.0)
    with pytest.raises(ValueError, match="steps must be positive"):
        func(cubic, [0.5], 0.0)
    with pytest.raises(ValueError, match="must return a real scalar"):
        func(lambda v: v, [0.5, 1.0], 0.1)
