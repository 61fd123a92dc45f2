"""Minuit with an exact Hessian and parameters at limits: the term Minuit2 leaves out, put back.

Minuit2 (iminuit <= 2.33, ROOT issue 22692) converts a user Hessian to its internal coordinates
without the curvature ``x'' g`` a limit adds. ``zgrad.minimize._limits`` adds ``r g`` with
``r = x'' / x'^2`` to the external diagonal when a probe finds the term missing. The references
here are closed forms, finite differences of Minuit2's transformations, and fits with Minuit's
own numerical derivatives (``gradient=False``), which differentiate in the internal coordinates
and so never had the bug.
"""

from __future__ import annotations

import time

import iminuit
import numpy as np
import pytest

import zgrad
from zgrad.minimize import _limits

P = zgrad.Parameter
INF = np.inf

# Minuit2's transformations x(q), as written in its documentation: both limits, lower only, upper only
TRANSFORMS = {
    "both": (lambda q, a, b: a + 0.5 * (b - a) * (np.sin(q) + 1.0), (-3.0, 1.0)),
    "lower": (lambda q, a, b: a - 1.0 + np.sqrt(q * q + 1.0), (0.5, INF)),
    "upper": (lambda q, a, b: b + 1.0 - np.sqrt(q * q + 1.0), (-INF, 2.0)),
}


def _user_and_numerical_hesse(lower, upper, x0=0.9, compensate=False):
    """Covariance of HESSE on (x - 2)^2 at x0 with the user Hessian, and with Minuit's own derivatives."""

    def fcn(x):
        return (x[0] - 2.0) ** 2

    def grad(x):
        return np.array([2.0 * (x[0] - 2.0)])

    def hess(x):
        return np.array([[2.0]])

    def g2(x):
        return np.array([2.0])

    if compensate:
        hess, g2 = _limits.compensate(hess, g2, grad, [lower], [upper])
    out = []
    for kwargs in ({"grad": grad, "hessian": hess}, {}):
        minuit = iminuit.Minuit(fcn, [x0], **kwargs)
        minuit.errordef = 1.0
        minuit.limits = [(lower, upper)]
        minuit.hesse()
        out.append(float(minuit.covariance[0, 0]))
    return out


# --- the probe ---------------------------------------------------------------------------------------


def test_the_probe_agrees_with_a_comparison_against_numerical_hesse():
    user, numerical = _user_and_numerical_hesse(0.0, 1.0)
    # with the term the variance is 2 / (H + r g) = 2 / (2 + 2.2 * 0.8 / 0.18) for either path
    assert numerical == pytest.approx(2.0 / (2.0 + 2.2 * 0.8 / 0.18), rel=1e-6)
    dropped = user == pytest.approx(1.0, rel=1e-12)  # 2 / H: the term left out
    assert dropped or user == pytest.approx(numerical, rel=1e-6)
    assert _limits.minuit_drops_limit_term() is dropped


def test_the_probe_finds_the_term_missing_in_iminuit_2_33_and_earlier():
    version = tuple(int(part) for part in iminuit.__version__.split(".")[:2])
    if version > (2, 33):
        pytest.skip(f"iminuit {iminuit.__version__} may bundle ROOT PR 22700; the comparison test covers it")
    assert _limits.minuit_drops_limit_term() is True


def test_the_probe_is_fast_and_run_once_per_process():
    _limits.minuit_drops_limit_term()  # iminuit imported and warm
    start = time.perf_counter()
    _limits.minuit_drops_limit_term.__wrapped__()  # the probe itself, not the cache
    assert time.perf_counter() - start < 0.05  # about a millisecond; generous for a loaded machine
    assert _limits.minuit_drops_limit_term.cache_info().currsize == 1


# --- the transformation factor -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRANSFORMS)
def test_the_ratio_equals_finite_differences_of_minuit2s_transformations(kind):
    transform, (a, b) = TRANSFORMS[kind]
    h = 1e-4
    for q in (-1.3, -0.4, 0.2, 0.7, 1.4):
        x = transform(q, a, b)
        d1 = (transform(q + h, a, b) - transform(q - h, a, b)) / (2 * h)
        d2 = (transform(q + h, a, b) - 2 * x + transform(q - h, a, b)) / h**2
        r = _limits.transform_ratio([x], [a], [b])[0]
        assert r == pytest.approx(d2 / d1**2, rel=1e-6), (kind, q)


def test_the_ratio_is_zero_without_limits_and_finite_at_and_just_past_a_limit():
    assert _limits.transform_ratio([3.0, -1e6], [-INF, -INF], [INF, INF]).tolist() == [0.0, 0.0]
    x = np.array([1.0, -3.0, 0.5, 2.0, np.nextafter(1.0, 2.0), np.nextafter(0.5, 0.0)])
    lower = np.array([-3.0, -3.0, 0.5, -INF, -3.0, 0.5])
    upper = np.array([1.0, 1.0, INF, 2.0, 1.0, INF])
    r = _limits.transform_ratio(x, lower, upper)
    assert np.all(np.isfinite(r))
    # the sign of x'': negative at an upper limit, positive at a lower one; the size of 1 / (2 eps)
    assert np.sign(r).tolist() == [-1.0, 1.0, 1.0, -1.0, -1.0, 1.0]
    assert np.all(np.abs(r) > 1e14)


def test_compensate_adds_r_g_to_limited_diagonals_only_and_only_when_needed(monkeypatch):
    def hess(x):
        return np.array([[2.0, 0.5], [0.5, 4.0]])

    def g2(x):
        return np.array([2.0, 4.0])

    def grad(x):
        return np.array([2.0 * (x[0] - 2.0), 4.0 * x[1]])

    assert _limits.compensate(hess, g2, grad, [-INF, -INF], [INF, INF]) == (hess, g2)
    monkeypatch.setattr(_limits, "minuit_drops_limit_term", lambda: False)  # a fixed Minuit2
    assert _limits.compensate(hess, g2, grad, [0.0, -INF], [1.0, INF]) == (hess, g2)
    monkeypatch.setattr(_limits, "minuit_drops_limit_term", lambda: True)
    new_hess, new_g2 = _limits.compensate(hess, g2, grad, [0.0, -INF], [1.0, INF])
    x = np.array([0.9, 0.3])
    term = (0.1 - 0.9) / (2 * 0.9 * 0.1) * 2.0 * (0.9 - 2.0)  # r g for the first parameter
    np.testing.assert_allclose(new_hess(x), [[2.0 + term, 0.5], [0.5, 4.0]], rtol=1e-14)
    np.testing.assert_allclose(new_g2(x), [2.0 + term, 4.0], rtol=1e-14)
    assert np.all(np.isfinite(new_hess(np.array([1.0, 0.3]))))  # at the limit


@pytest.mark.parametrize(
    ("lower", "upper"), [(0.0, 1.0), (0.0, INF), (-INF, 1.0)], ids=["both", "lower", "upper"]
)
def test_hesse_with_the_compensated_hessian_equals_minuits_own_derivatives(lower, upper):
    user, numerical = _user_and_numerical_hesse(lower, upper, compensate=True)
    assert user == pytest.approx(numerical, rel=1e-6)


# --- fits with a parameter held at a limit -----------------------------------------------------------


def _fit_pair(make, **options):
    """The fit with zgrad's exact derivatives, and with Minuit's own."""
    return [zgrad.minimize.Minuit(gradient=g, **options).minimize(make()) for g in (None, False)]


def _one_dimensional():
    x = P("x", 0.5, lower=-3.0, upper=1.0)
    return zgrad.losses.SimpleLoss(lambda: (x - 2.0) ** 2, [x], errordef=1.0)


def test_one_parameter_beyond_its_upper_limit_converges_in_a_few_calls():
    exact, own = _fit_pair(_one_dimensional)
    assert exact.valid, exact.message
    assert exact.at_limit == ["x"]
    assert exact.values["x"] == pytest.approx(1.0, abs=1e-4)
    assert exact.edm < 1e-4
    # without the term: 36 calls and an error of 2.8; Minuit's own derivatives: about 20 calls
    assert exact.nfcn <= 8 < own.nfcn
    assert exact.errors["x"] == pytest.approx(own.errors["x"], rel=1e-2)


def _three_dimensional(lower):
    x, y, z = P("x", 0.5, lower=lower, upper=1.0), P("y", 0.0), P("z", 0.0, lower=-5.0, upper=5.0)

    def loss():
        u, v, w = x - 2.0, y - 1.0, z + 0.5
        return u**2 + 2.0 * v**2 + w**2 + 0.5 * u * v + 0.3 * v * w

    return zgrad.losses.SimpleLoss(loss, [x, y, z], errordef=1.0)


@pytest.mark.parametrize("lower", [None, -3.0], ids=["upper", "both"])
def test_three_parameters_one_held_converge_with_the_closed_form_errors_of_the_others(lower):
    exact, own = _fit_pair(lambda: _three_dimensional(lower), tol=1e-3)
    assert exact.valid, exact.message
    assert exact.at_limit == ["x"]
    assert exact.values["x"] == pytest.approx(1.0, abs=1e-6)
    # without the term: 200 to 550 calls and Minuit's EDM near 1; Minuit's own derivatives: 60
    assert exact.nfcn <= 10 < own.nfcn
    assert exact.edm < 0.002 * 1e-3
    # x held at 1: (y, z) minimize with x fixed, the Hessian of (y, z) alone gives their covariance
    hessian = np.array([[4.0, 0.3], [0.3, 2.0]])
    v, w = np.linalg.solve(hessian, [0.5, 0.0])  # the gradient of 0.5 u v at u = -1
    errors = np.sqrt(np.diag(2.0 * np.linalg.inv(hessian)))  # to size the tolerance of the values
    assert exact.values["y"] == pytest.approx(1.0 + v, abs=1e-3 * errors[0])
    assert exact.values["z"] == pytest.approx(-0.5 + w, abs=1e-3 * errors[1])
    covariance = 2.0 * np.linalg.inv(hessian)
    np.testing.assert_allclose(exact.covariance[1:, 1:], covariance, rtol=1e-5)
    # y has no limits: its error is the square root of its variance (z's comes through z's limits)
    assert exact.errors["y"] == pytest.approx(np.sqrt(covariance[0, 0]), rel=1e-5)


# --- the reference toy model: lb held at its upper limit 0 -------------------------------------------

TOY_START = {"mu": 5.0, "sg": 1.0, "lb": -0.01, "nsig": 1000.0, "nbkg": 1000.0}
AT_LIMIT_SEEDS = (2, 8, 11, 12)  # lb ends at 0 (the data prefer a rising background)
INSIDE_SEEDS = (0, 1)


def _toy_model():
    obs = zgrad.Space("x", limits=(0.0, 10.0))
    mu = P("mu", 5.0, lower=0.0, upper=10.0)
    sg = P("sg", 1.0, lower=0.0, upper=10.0)
    lb = P("lb", -0.01, lower=-1.0, upper=0.0)
    ns, nb = P("nsig", 1000.0, lower=0.0, upper=1e4), P("nbkg", 1000.0, lower=0.0, upper=1e4)
    pdfs = [zgrad.models.Gauss(obs, mu, sg), zgrad.models.Exponential(obs, lb)]
    return zgrad.models.Sum(pdfs, yields=[ns, nb]), (mu, sg, lb, ns, nb)


def _toy_data(seed):
    """Poisson yields; the Gaussian truncated by rejection, the exponential by its inverse CDF."""
    rng = np.random.default_rng(seed)
    n_sig, n_bkg = rng.poisson(1000), rng.poisson(1000)
    signal = rng.normal(5.0, 1.0, 4 * n_sig)
    signal = signal[(signal >= 0.0) & (signal <= 10.0)][:n_sig]
    lam = -0.01
    background = np.log1p(rng.uniform(size=n_bkg) * np.expm1(10.0 * lam)) / lam
    return np.concatenate([signal, background])


@pytest.fixture(scope="module")
def toy_fits():
    model, params = _toy_model()
    fits = {}
    for seed in AT_LIMIT_SEEDS + INSIDE_SEEDS:
        data = _toy_data(seed)
        fits[seed] = []
        for gradient in (None, False):
            for p in params:
                p.assign(TOY_START[p.name])
            loss = zgrad.losses.ExtendedUnbinnedNLL(model, data)
            fits[seed].append(zgrad.minimize.Minuit(gradient=gradient, tol=1e-3).minimize(loss))
    return fits


@pytest.mark.parametrize("seed", AT_LIMIT_SEEDS)
def test_toys_with_the_slope_at_its_limit_are_valid_and_agree_with_minuits_own_derivatives(toy_fits, seed):
    exact, own = toy_fits[seed]
    assert exact.valid, exact.message
    assert exact.at_limit == own.at_limit == ["lb"]
    assert exact.values["lb"] == pytest.approx(0.0, abs=1e-6)
    assert exact.edm < 0.002 * 1e-3 * 0.5
    # as few calls as the toys whose slope stays inside (without the term: 260 to 290)
    inside = max(toy_fits[s][0].nfcn for s in INSIDE_SEEDS)
    assert exact.nfcn <= 2 * inside
    for name in ("mu", "sg", "nsig", "nbkg"):
        assert exact.values[name] == pytest.approx(own.values[name], abs=1e-3 * own.errors[name]), name
        assert exact.errors[name] == pytest.approx(own.errors[name], abs=1e-3 * own.errors[name]), name


@pytest.mark.parametrize("seed", INSIDE_SEEDS)
def test_toys_with_the_slope_inside_are_untouched_by_the_limit(toy_fits, seed):
    exact, own = toy_fits[seed]
    assert exact.valid and own.valid
    assert exact.at_limit == own.at_limit == []
    for name in TOY_START:
        assert exact.values[name] == pytest.approx(own.values[name], abs=1e-2 * own.errors[name]), name
