"""Finite differences on NumPy callables (zgrad._finite): counts, limits, error estimates, statuses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from zgrad import _finite
from zgrad._finite import directional as directional_derivative
from zgrad._finite import first_step, gradient
from zgrad._finite_hessian import hessian
from zgrad.gradients import result

EPS = np.finfo(np.float64).eps
#: the scale whose fast step is 1e-5 (or 1e-4): steps as the earlier tests used them
FAST_1E5, FAST_1E4 = 1e-5 / first_step(1.0, EPS), 1e-4 / first_step(1.0, EPS)


def central_gradient(f, x, scale, lower=None, upper=None, f0=None):
    r = gradient(f, x, scale, lower, upper, f0, budget="fast")
    return r.estimate, r.error, r.n_evals, r.status


def extrapolated_gradient(f, x, scale, lower=None, upper=None, f0=None, **kwargs):
    r = gradient(f, x, scale, lower, upper, f0, **kwargs)
    return r.estimate, r.error, r.n_evals, r.status


def extrapolated_hessian(f, x, scale, lower=None, upper=None, f0=None):
    r = hessian(f, x, scale, lower, upper, f0)
    return r.estimate, r.error, r.n_evals


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


def test_every_documented_status_is_produced_by_the_engine_and_exported():
    """Each status the result module documents comes out of the engine in the case that names it."""
    produced = {
        "ok": gradient(cubic, [0.5, 1.0], 1.0).status[0],
        "one-sided": gradient(cubic, [0.0], 1.0, lower=0.0).status[0],
        "near-limit": gradient(lambda v: np.log(v[0]), [1e-6], 1.0, lower=0.0).status[0],
        "rounding-limited": gradient(lambda v: 1e6 * v[0] ** 2 + 1e-6 * v[1] ** 2, [1.0, 1.0], 1.0).status[1],
        "non-finite": gradient(lambda v: np.inf if v[0] > 1 else v[0], [1.0], 1.0).status[0],
    }
    assert produced == {name: name for name in produced}
    exported = {getattr(result, n) for n in result.__all__ if n.startswith("STATUS_")}
    assert exported == set(produced)


@pytest.mark.subprocess
def test_importing_finite_imports_neither_tensorflow_nor_numdifftools():
    code = "import sys, zgrad._finite; print('tensorflow' in sys.modules, 'numdifftools' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- the fast budget ------------------------------------------------------------------------------


def test_central_gradient_costs_two_evaluations_per_component():
    x = np.array([0.5, -1.5, 2.0])
    f = Recorder(cubic)
    g, _, n, _ = central_gradient(f, x, FAST_1E5, f0=cubic(x))
    assert n == f.n == 6
    np.testing.assert_allclose(g, cubic_grad(x), rtol=1e-8)
    f = Recorder(cubic)
    g, _, n, _ = central_gradient(f, x, FAST_1E5)
    assert n == f.n == 7


def test_central_gradient_one_sided_at_limits_stays_inside():
    x = np.array([0.0, 1.0, 0.3])
    lower, upper = np.array([0.0, -5.0, -5.0]), np.array([5.0, 1.0, 5.0])
    f = Recorder(cubic)
    g, err, n, status = central_gradient(f, x, FAST_1E4, lower, upper)
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
    g, err, n, status = extrapolated_gradient(f, x, 1.0)
    exact = cubic_grad(x) + np.array([np.exp(x[0]) * np.sin(x[1]), np.exp(x[0]) * np.cos(x[1]), 0, 0])
    assert n == f.n <= 30 * x.size + 1
    np.testing.assert_allclose(g, exact, rtol=1e-9)
    assert np.all(np.abs(g - exact) <= err)
    assert status == ("ok",) * 4


def test_extrapolated_gradient_reuses_f0():
    x = np.array([0.5, -1.5])
    f = Recorder(cubic)
    *_, n, _ = extrapolated_gradient(f, x, 1.0, f0=cubic(x))
    assert n == f.n <= 30 * x.size
    assert not any(np.array_equal(p, x) for p in f.points)


def test_extrapolated_gradient_near_limits_is_one_sided_and_inside():
    x = np.array([1.0, 2.0, -0.5])
    lower = np.array([1.0, -np.inf, -0.5 - 1e-6])
    upper = np.array([np.inf, 2.0 + 1e-3, 0.0])
    f = Recorder(lambda v: np.exp(v[0]) + np.log(v[1]) * v[2] + v[2] ** 4)
    g, err, n, status = extrapolated_gradient(f, x, 1.0, lower, upper)
    points = np.array(f.points)
    assert np.all(points >= lower) and np.all(points <= upper)
    assert n == f.n <= 30 * x.size + 1
    exact = np.array([np.exp(1.0), -0.5 / 2.0, np.log(2.0) + 4 * (-0.5) ** 3])
    np.testing.assert_allclose(g, exact, rtol=1e-7)
    assert np.all(np.abs(g - exact) <= err)
    # component 0 sits on its limit: one-sided only; 1 and 2 are near one: one-sided or in log-distance
    assert status[0] == "one-sided" and set(status[1:]) <= {"one-sided", "near-limit"}


def test_rounding_floor_makes_the_error_honest_and_flags_the_component():
    # 1e-6 * y**2 next to 1e6 * x**2: f ~ 1e6 swamps the y-differences, rounding dominates
    f = lambda v: 1e6 * v[0] ** 2 + 1e-6 * v[1] ** 2  # noqa: E731
    x = np.array([1.0, 1.0])
    g, err, n, status = extrapolated_gradient(f, x, 1.0)
    exact = np.array([2e6, 2e-6])
    assert np.all(np.abs(g - exact) <= err)
    assert status[1] == "rounding-limited"
    assert err[1] > 1e-10  # the float resolution: eps * 1e6 / 0.1 ~ 2e-9


def test_float32_values_are_treated_as_float32_accurate():
    a = np.array([0.3, -1.2])
    f = lambda v: np.sum((v.astype(np.float32) - a.astype(np.float32)) ** 2)  # noqa: E731
    x = np.array([1.1, 0.4])
    g, err, n, status = extrapolated_gradient(f, x, 1.0, x_eps=np.finfo(np.float32).eps)
    exact = 2 * (x - a)
    assert np.all(np.abs(g - exact) <= err)
    assert np.all(err > 1e-9)  # float64 resolution would claim far better than float32 can give


def test_non_finite_values_give_status_and_infinite_error():
    g, err, n, status = extrapolated_gradient(lambda v: np.nan * v[0], [1.0, 2.0], 1.0)
    assert status == ("non-finite", "non-finite") and n == 1
    assert np.all(np.isinf(err)) and np.all(np.isnan(g))
    # finite at x but infinite to the right of x[0]
    f = lambda v: np.inf if v[0] > 1.0 else v[0] ** 2 + v[1]  # noqa: E731
    g, err, n, status = extrapolated_gradient(f, [1.0, 0.0], 1.0)
    assert status[0] == "non-finite" and status[1] == "ok"
    g, err, n, status = central_gradient(f, [1.0, 0.0], 1e-3 / first_step(1.0, EPS))
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
    h, err, n = extrapolated_hessian(counted, x, 1.0)
    assert n == counted.n
    assert np.array_equal(h, h.T) and np.array_equal(err, err.T)
    np.testing.assert_allclose(h, exact, rtol=1e-7, atol=1e-8)
    assert np.all(np.abs(h - exact) <= err)


def test_extrapolated_hessian_at_a_limit_stays_inside():
    x = np.array([0.3, -1.0])
    lower, upper = np.array([0.3, -2.0]), np.array([1.0, -1.0])
    counted = Recorder(lambda v: np.exp(v[0]) * v[1] ** 2)
    h, err, n = extrapolated_hessian(counted, x, 1.0, lower, upper)
    points = np.array(counted.points)
    assert np.all(points >= lower) and np.all(points <= upper)
    exact = np.array([[np.exp(0.3), -2 * np.exp(0.3)], [-2 * np.exp(0.3), 2 * np.exp(0.3)]])
    np.testing.assert_allclose(h, exact, rtol=1e-6)
    assert np.array_equal(h, h.T)


# --- input checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("func", [central_gradient, extrapolated_gradient, extrapolated_hessian])
def test_input_errors(func):
    with pytest.raises(ValueError, match="outside the limits"):
        func(cubic, [2.0], 1.0, lower=0.0, upper=1.0)
    with pytest.raises(ValueError, match="scales must be positive"):
        func(cubic, [0.5], 0.0)
    with pytest.raises(ValueError, match="must return a real scalar"):
        func(lambda v: v, [0.5, 1.0], 0.1)


# --- limits with singular functions, noise, the other entry points ------------------------------------

SINGULAR = [
    # (f, derivative, x, lower, upper)
    (lambda v: np.log(1 - v[0]), lambda x: -1 / (1 - x), 1 - 1e-6, 0.0, 1.0),
    (lambda v: np.log(1 - v[0]), lambda x: -1 / (1 - x), 1 - 1e-8, 0.0, 1.0),
    (lambda v: np.log(v[0]), lambda x: 1 / x, 1e-6, 0.0, 1.0),
    (lambda v: np.log(v[0]), lambda x: 1 / x, 3e-9, 0.0, 1.0),
    (lambda v: np.sqrt(v[0]), lambda x: 0.5 / np.sqrt(x), 1e-8, 0.0, 4.0),
    (lambda v: np.sqrt(v[0]), lambda x: 0.5 / np.sqrt(x), 1e-3, 0.0, 4.0),
    (lambda v: np.sqrt(2 - v[0]), lambda x: -0.5 / np.sqrt(2 - x), 2 - 5e-9, -2.0, 2.0),
    (lambda v: (1 - v[0]) ** 1.5, lambda x: -1.5 * (1 - x) ** 0.5, 1 - 1e-8, 0.0, 1.0),
]


@pytest.mark.parametrize("case", range(len(SINGULAR)))
def test_singular_functions_at_limits_are_accurate_and_honest(case):
    f, exact, x, lower, upper = SINGULAR[case]
    counted = Recorder(f)
    r = gradient(counted, [x], 1.0, lower, upper)
    points = np.array(counted.points)
    assert np.all(points > lower) and np.all(points < upper)  # never on the singular limit itself
    assert r.n_evals == counted.n <= 31
    truth = exact(x)
    assert abs(r.estimate[0] - truth) <= r.error[0]
    assert r.error[0] <= 1e-3 * abs(truth)  # honest and useful: the right sign and magnitude
    assert r.status[0] in ("near-limit", "rounding-limited")


SINGULAR_CURVATURE = [
    # (f, second derivative, x, lower, upper)
    (lambda v: np.log(1 - v[0]), lambda x: -1 / (1 - x) ** 2, 1 - 1e-6, 0.0, 1.0),
    (lambda v: np.log(1 - v[0]), lambda x: -1 / (1 - x) ** 2, 1 - 1e-8, 0.0, 1.0),
    (lambda v: np.log(v[0]), lambda x: -1 / x**2, 1e-6, 0.0, 1.0),
    (lambda v: np.sqrt(v[0]), lambda x: -0.25 * x**-1.5, 1e-8, 0.0, 4.0),
]


@pytest.mark.parametrize("case", range(len(SINGULAR_CURVATURE)))
def test_singular_hessians_at_limits_are_accurate_and_honest(case):
    f, exact, x, lower, upper = SINGULAR_CURVATURE[case]
    counted = Recorder(f)
    r = hessian(counted, [x], 1.0, lower, upper)
    points = np.array(counted.points)
    assert np.all(points > lower) and np.all(points < upper)
    truth = exact(x)
    assert abs(r.estimate[0, 0] - truth) <= r.error[0, 0] <= 1e-3 * abs(truth)
    assert r.status == ("near-limit",)


def test_a_hessian_near_a_limit_mixes_singular_and_smooth_components():
    # -log(x) y**2 at x = 1e-6 above the lower limit 0: d2/dx2 = y**2 / x**2, d2/dxdy = -2 y / x
    x0, y0 = 1e-6, 2.0
    r = hessian(lambda v: -np.log(v[0]) * v[1] ** 2, [x0, y0], 1.0, [0.0, -5.0], [1.0, 5.0])
    exact = np.array([[y0**2 / x0**2, -2 * y0 / x0], [-2 * y0 / x0, -2 * np.log(x0)]])
    assert np.all(np.abs(r.estimate - exact) <= r.error)
    np.testing.assert_allclose(r.estimate, exact, rtol=1e-6)
    assert r.status == ("near-limit", "ok")


def test_a_smooth_hessian_near_a_limit_keeps_the_one_sided_accuracy():
    x = 1 - 1e-8
    r = hessian(lambda v: np.exp(v[0]) * v[0] ** 3, [x], 1.0, -1.0, 1.0)
    truth = np.exp(x) * (x**3 + 6 * x**2 + 6 * x)
    assert abs(r.estimate[0, 0] - truth) <= min(r.error[0, 0], 1e-6 * truth)
    assert r.status == ("one-sided",)


def test_smooth_functions_near_a_limit_keep_their_far_reaching_accuracy():
    x = 1 - 1e-8
    r = gradient(lambda v: np.exp(v[0]) * v[0] ** 3, [x], 1.0, -1.0, 1.0)
    truth = np.exp(x) * (x**3 + 3 * x**2)
    assert abs(r.estimate[0] - truth) <= min(r.error[0], 1e-9 * truth)
    assert r.status == ("one-sided",)


def noisy(sigma):
    """(x - 1)**2 plus reproducible noise of size sigma (a function of the point's bytes)."""

    def f(v):
        seed = int.from_bytes(np.asarray(v, dtype=np.float64).tobytes()[-8:], "little")
        return (v[0] - 1.0) ** 2 + sigma * np.random.default_rng(seed).uniform(-1, 1)

    return f


@pytest.mark.parametrize("sigma", [1e-10, 1e-7, 1e-4])
def test_noise_gives_a_large_honest_error(sigma):
    covered, rel_errors = 0, []
    points = np.linspace(-1.0, 3.0, 12)
    for x in points:
        r = gradient(noisy(sigma), [x], 1.0)
        true_error = abs(r.estimate[0] - 2 * (x - 1.0))
        covered += true_error <= r.error[0]
        rel_errors.append(r.error[0] / sigma)
    assert covered == points.size
    assert min(rel_errors) > 1.0  # the error grows with the noise: not the float64 rounding floor


def test_directional_derivative_inside_a_box():
    f = Recorder(lambda v: np.log(v[0]) + v[1] ** 2)
    x, d = np.array([1e-7, 2.0]), np.array([0.01, -0.01])
    r = directional_derivative(f, x, d, lower=[0.0, -5.0], upper=[1.0, 5.0])
    truth = d @ np.array([1 / x[0], 2 * x[1]])
    assert abs(r.estimate[0] - truth) <= r.error[0] <= 1e-6 * abs(truth)
    assert np.all(np.array(f.points)[:, 0] > 0.0)
    with pytest.raises(ValueError, match="direction must be finite and not zero"):
        directional_derivative(f, x, [0.0, 0.0])


def test_array_derivative_elementwise_and_full():
    x = np.linspace(0.1, 2.0, 7)
    r = _finite.array_derivative(np.sin, [x], 0, "elementwise")
    assert r.n_evals == 2 and r.status == ("ok",)
    np.testing.assert_allclose(r.estimate, np.cos(x), rtol=1e-9)
    r = _finite.array_derivative(np.cumsum, [x], 0, "full")
    assert r.n_evals == 2 * x.size and r.estimate.shape == (7, 7)
    np.testing.assert_allclose(r.estimate, np.tril(np.ones((7, 7))), atol=1e-9)


def test_budget_and_batch_errors():
    with pytest.raises(
        ValueError, match=r"budget='quick' is not allowed; choose one of \['accurate', 'fast'\]"
    ):
        gradient(cubic, [0.5], 1.0, budget="quick")
    with pytest.raises(ValueError, match="f_batch is used by the fast budget only"):
        gradient(cubic, [0.5], 1.0, f_batch=lambda pts: [cubic(p) for p in pts])


# --- honesty over a list of closed forms ---------------------------------------------------------------

CLOSED_FORMS = [
    # (f, gradient, points, lower, upper)
    (cubic, cubic_grad, [[0.5, -1.5, 2.0], [3.0, 0.1, -0.2]], None, None),
    (lambda v: np.exp(v[0]) * np.sin(v[1]), lambda v: np.exp(v[0]) * np.array([np.sin(v[1]), np.cos(v[1])]),
     [[0.3, 1.0], [-2.0, 4.0], [5.0, 0.0]], None, None),
    (lambda v: v[0] ** 99, lambda v: np.array([99 * v[0] ** 98]), [[7.0], [1.0], [0.9]], None, None),
    (lambda v: 1e6 * v[0] ** 2 + 1e-6 * v[1] ** 2, lambda v: np.array([2e6 * v[0], 2e-6 * v[1]]),
     [[1.0, 1.0], [0.3, -2.0]], None, None),
    (lambda v: np.log(v[0]) + np.log(1 - v[1]), lambda v: np.array([1 / v[0], -1 / (1 - v[1])]),
     [[1e-6, 1 - 1e-6], [3e-9, 1 - 4e-9], [0.5, 0.5], [0.2, 0.999]], [0.0, 0.0], [1.0, 1.0]),
    (lambda v: np.sqrt(v[0]) * v[1] ** 3,
     lambda v: np.array([0.5 * v[1] ** 3 / np.sqrt(v[0]), 3 * np.sqrt(v[0]) * v[1] ** 2]),
     [[1e-8, 1.0], [2.0, 1e-7], [1e-4, -0.5]], [0.0, -1.0], [10.0, 1.0]),
    (lambda v: np.arctan(1e3 * v[0]), lambda v: np.array([1e3 / (1 + 1e6 * v[0] ** 2)]),
     [[0.0], [0.01], [-3.0]], None, None),
]  # fmt: skip


def honesty_over_closed_forms():
    covered = total = 0
    for f, grad, points, lower, upper in CLOSED_FORMS:
        for x in points:
            r = gradient(f, x, 1.0, lower, upper)
            exact = grad(np.asarray(x, dtype=float))
            covered += int(np.sum(np.abs(r.estimate - exact) <= r.error))
            total += exact.size
    return covered, total


def test_error_estimates_cover_the_true_error_on_every_closed_form():
    covered, total = honesty_over_closed_forms()
    print(f"honest error estimates: {covered} of {total} components")
    assert total >= 30
    assert covered == total
