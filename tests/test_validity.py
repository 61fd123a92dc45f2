"""``FitResult.valid`` means converged, whichever strategy supplied the gradient and Hessian.

Valid: the minimizer converged and the Hessian at the minimum is positive definite. A
parameter at a limit is reported in ``at_limit`` and in the message, and does not make a
fit invalid. The losses here have closed-form minima and Hessians: a degenerate loss
(only ``a + b`` is constrained), a flat direction, a saddle, a minimum beyond a limit.
"""

from __future__ import annotations

import numpy as np
import pytest

import zgrad
from zgrad.minimize import _objective

P = zgrad.Parameter
EPS64 = float(np.finfo(np.float64).eps)

MINUITS = {
    "minuit-autodiff": lambda: zgrad.minimize.Minuit(),
    "minuit-own": lambda: zgrad.minimize.Minuit(gradient=False),
    "minuit-numerical": lambda: zgrad.minimize.Minuit(gradient="numerical"),
}
SCIPYS = {
    "scipy-autodiff": lambda: zgrad.minimize.Scipy(),
    "scipy-own": lambda: zgrad.minimize.Scipy(gradient=False),
    "scipy-numerical": lambda: zgrad.minimize.Scipy(gradient="numerical"),
}
ALL = {**MINUITS, **SCIPYS}
SINGULAR_AB = "the Hessian is singular: ['a', 'b'] not constrained by the loss"
FORCED = (
    "the covariance from HESSE is not usable (not positive definite, forced positive definite, not accurate)"
)


def _degenerate():
    a, b, c = P("a", 0.3), P("b", 0.2), P("c", 0.0)
    return zgrad.losses.SimpleLoss(lambda: (a + b - 1.0) ** 2 + (c - 2.0) ** 2, [a, b, c], errordef=1.0)


@pytest.mark.parametrize("make", MINUITS.values(), ids=MINUITS)
def test_degenerate_loss_is_invalid_with_minuit_and_names_the_pair(make):
    result = make().minimize(_degenerate())
    assert not result.valid
    assert result.message == f"{FORCED}; {SINGULAR_AB}"
    assert result.at_limit == []
    assert result.values["a"] + result.values["b"] == pytest.approx(1.0, abs=1e-6)
    assert result.values["c"] == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("make", SCIPYS.values(), ids=SCIPYS)
def test_degenerate_loss_is_invalid_with_scipy_and_names_the_pair(make):
    result = make().minimize(_degenerate())
    assert not result.valid
    assert result.message == SINGULAR_AB
    assert result.covariance is None
    assert result.values["c"] == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("make", [ALL["minuit-autodiff"], ALL["scipy-autodiff"]], ids=["minuit", "scipy"])
def test_parameter_absent_from_the_loss_is_an_invalid_fit_with_autodiff_not_an_exception(make):
    # autodiff refuses a parameter the function does not depend on; the fit reports it
    a, c = P("a", 0.3), P("c", 0.0)
    result = make().minimize(zgrad.losses.SimpleLoss(lambda: (a - 1.0) ** 2, [a, c], errordef=1.0))
    assert not result.valid
    assert "GradientError" in result.message and "w.r.t. ['c'] is None" in result.message


@pytest.mark.parametrize(
    "make",
    [*list(ALL.values())[1:3], *list(ALL.values())[4:]],
    ids=[*list(ALL)[1:3], *list(ALL)[4:]],
)
def test_parameter_absent_from_the_loss_is_named_by_numerical_gradients(make):
    a, c = P("a", 0.3), P("c", 0.0)
    result = make().minimize(zgrad.losses.SimpleLoss(lambda: (a - 1.0) ** 2, [a, c], errordef=1.0))
    assert not result.valid
    assert "the Hessian is singular: ['c'] not constrained by the loss" in result.message
    assert result.values["a"] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("make", [ALL["minuit-autodiff"], ALL["scipy-autodiff"]], ids=["minuit", "scipy"])
def test_flat_direction_with_a_zero_gradient_is_named_with_autodiff(make):
    a, c = P("a", 0.3), P("c", 0.0)
    loss = zgrad.losses.SimpleLoss(lambda: (a - 1.0) ** 2 + 0.0 * c, [a, c], errordef=1.0)
    result = make().minimize(loss)
    assert not result.valid
    assert "the Hessian is singular: ['c'] not constrained by the loss" in result.message


def _saddle():
    x, y = P("x", 0.0), P("y", 0.0)  # the start is the stationary point of x^2 - y^2
    return zgrad.losses.SimpleLoss(lambda: x**2 - y**2, [x, y], errordef=1.0)


INDEFINITE = (
    "the Hessian is indefinite: {} along a direction of negative curvature (a saddle point, not a minimum)"
)
INDEFINITE_Y = INDEFINITE.format("['y']")


@pytest.mark.parametrize("make", MINUITS.values(), ids=MINUITS)
def test_saddle_is_invalid_with_minuit(make):
    result = make().minimize(_saddle())
    assert not result.valid
    assert result.message.startswith("MIGRAD did not converge to a valid minimum (EDM above the tolerance)")
    if make is MINUITS["minuit-autodiff"]:  # the exact Hessian is checked at the end point too
        assert INDEFINITE_Y in result.message


@pytest.mark.parametrize("make", [SCIPYS["scipy-autodiff"], SCIPYS["scipy-own"]], ids=["autodiff", "own"])
def test_saddle_where_scipy_stops_is_invalid_and_named(make):
    result = make().minimize(_saddle())
    assert (result.values["x"], result.values["y"]) == (0.0, 0.0)  # a zero gradient: scipy stops at once
    assert not result.valid
    assert result.message == INDEFINITE_Y


def _beyond_upper_limit():
    x, y = P("x", 0.5, upper=1.0), P("y", 0.0)
    return zgrad.losses.SimpleLoss(lambda: (x - 2.0) ** 2 + (y - 1.0) ** 2, [x, y], errordef=1.0)


@pytest.mark.parametrize("make", ALL.values(), ids=ALL)
def test_minimum_beyond_a_limit_ends_at_the_limit_and_is_valid(make):
    result = make().minimize(_beyond_upper_limit())
    assert result.valid, result.message
    assert result.at_limit == ["x"]
    assert result.message == "parameters at a limit: ['x'] (errors there are unreliable)"
    assert result.values["x"] == pytest.approx(1.0, abs=1e-8)
    assert result.values["y"] == pytest.approx(1.0, abs=1e-4)
    # the EDM leaves out the direction the limit blocks (iminuit's internal coordinates do too)
    assert 0.0 <= result.edm < 0.002 * 0.1 * 1.0


@pytest.mark.parametrize("make", ALL.values(), ids=ALL)
def test_minimum_inside_within_a_tenth_of_an_error_of_a_limit_is_valid_and_named(make):
    # minimum at x = 0.95 with error 1 (errordef 1, curvature 2): inside, 0.05 errors from the limit
    x = P("x", 0.0, upper=1.0)
    result = make().minimize(zgrad.losses.SimpleLoss(lambda: (x - 0.95) ** 2, [x], errordef=1.0))
    assert result.valid, result.message
    assert result.at_limit == ["x"]
    assert result.message == "parameters at a limit: ['x'] (errors there are unreliable)"
    # MIGRAD stops once edm < 0.002 * tol * errordef = 2e-4: within 0.02 errors of the minimum
    assert result.values["x"] == pytest.approx(0.95, abs=0.02)


@pytest.mark.parametrize("make", ALL.values(), ids=ALL)
def test_unbinned_fit_with_the_minimum_inside_is_valid_with_nothing_at_a_limit(make):
    data = np.random.default_rng(11).normal(0.3, 1.1, size=3000)
    obs = zgrad.Space("x", limits=(-50.0, 50.0))  # 40 sigma each side: the truncation is negligible
    mu, sigma = P("mu", 0.0, lower=-5.0, upper=5.0), P("sigma", 1.5, lower=0.1, upper=10.0)
    result = make().minimize(zgrad.losses.UnbinnedNLL(zgrad.models.Gauss(obs, mu, sigma), data))
    assert result.valid, result.message
    assert result.at_limit == [] and result.message == ""
    # the Gaussian's maximum-likelihood estimates in closed form, and the mean's error sigma / sqrt(n)
    assert result.values["mu"] == pytest.approx(data.mean(), abs=1e-3 * result.errors["mu"])
    assert result.values["sigma"] == pytest.approx(data.std(), abs=1e-3 * result.errors["sigma"])
    assert result.errors["mu"] == pytest.approx(data.std() / np.sqrt(data.size), rel=1e-3)


# --- the helpers ---------------------------------------------------------------------------------


def test_hessian_problem_is_scale_invariant():
    # a positive-definite Hessian with curvatures 24 orders apart, correlated: no problem
    scale = np.array([1e6, 1e-6])
    hessian = scale[:, None] * np.array([[1.0, 0.9], [0.9, 1.0]]) * scale[None, :]
    assert _objective.hessian_problem(hessian, ["big", "small"], EPS64) == ""


def test_hessian_problem_names_the_unconstrained_combination_only():
    # constrained: a + 2b (singular along (2, -1)) and c; in units where b's curvature is 4x a's
    hessian = np.array([[2.0, 4.0, 0.0], [4.0, 8.0, 0.0], [0.0, 0.0, 3.0]])
    assert _objective.hessian_problem(hessian, ["a", "b", "c"], EPS64) == (
        "the Hessian is singular: ['a', 'b'] not constrained by the loss"
    )


def test_hessian_problem_tolerance_follows_the_dtype_and_the_error_estimate():
    nearly = np.array([[1.0, 1.0 - 1e-6], [1.0 - 1e-6, 1.0]])  # smallest eigenvalue 1e-6 of the largest ~2
    assert _objective.hessian_problem(nearly, ["a", "b"], EPS64) == ""
    float32 = float(np.finfo(np.float32).eps)  # sqrt(eps32) = 3.5e-4 > 1e-6 / 2
    assert "singular: ['a', 'b']" in _objective.hessian_problem(nearly, ["a", "b"], float32)
    error = np.full((2, 2), 1e-5)  # a numerical Hessian known only to 1e-5: 1e-6 is not resolved
    assert "singular: ['a', 'b']" in _objective.hessian_problem(nearly, ["a", "b"], EPS64, error)


def test_hessian_problem_reports_negative_curvature_and_non_finite_entries():
    hessian = np.diag([2.0, -1.0, 3.0])
    assert _objective.hessian_problem(hessian, ["a", "b", "c"], EPS64) == INDEFINITE.format("['b']")
    assert _objective.hessian_problem(np.array([[np.nan]]), ["a"], EPS64) == "the Hessian is not finite"


def test_covariance_and_edm_leave_out_a_parameter_held_at_its_limit():
    x, y = P("x", 1.0, upper=1.0), P("y", 0.5)
    hessian, gradient = np.diag([2.0, 2.0]), np.array([-2.0, -1.0])  # (x-2)^2 + (y-1)^2 at (1, 0.5)
    held = _objective.held_at_limit([x, y], [1.0, 0.5], gradient, np.diag(hessian), ["x"])
    assert held.tolist() == [True, False]
    covariance, edm, problem = _objective.covariance_and_edm(hessian, gradient, 1.0, ["x", "y"], EPS64, held)
    assert problem == "" and edm == pytest.approx(0.25)  # from y alone: 1^2 / (2 * 2)
    np.testing.assert_allclose(covariance, np.diag([1.0, 1.0]))
    # the loss rising towards the limit, or its minimum inside (x = 0.95): not held
    assert not _objective.held_at_limit([x, y], [1.0, 0.5], np.array([2.0, -1.0]), [2.0, 2.0], ["x"]).any()
    assert not _objective.held_at_limit([x, y], [0.95, 0.5], np.array([-1e-9, -1.0]), [2.0, 2.0], ["x"]).any()
    # no curvature along x (a linear loss): any fall towards the limit is held
    assert _objective.held_at_limit(
        [x, y], [1.0, 0.5], np.array([-0.1, -1.0]), [0.0, 2.0], ["x"]
    ).tolist() == [
        True,
        False,
    ]
