"""Minimizer adapters and FitResult: fits against independent references and closed forms.

The reference fit (Gaussian plus exponential, extended, 10^5 events) is run once per
module with each gradient strategy and once with iminuit's own cost function on a NumPy
density; the other tests use small losses whose minimum and covariance are known in
closed form.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import iminuit
import numpy as np
import pytest
import tensorflow as tf
from iminuit.cost import ExtendedUnbinnedNLL as IminuitExtendedNLL
from scipy import stats

import zgrad
from zgrad.errors import GradientError

P = zgrad.Parameter
LOWER, UPPER = -5.0, 5.0
TRUTH = {"mu": 0.2, "sigma": 0.8, "lam": -0.4, "n_sig": 30_000.0, "n_bkg": 70_000.0}
START_FACTORS = {"mu": 1.1, "sigma": 1.1, "lam": 0.9, "n_sig": 1.1, "n_bkg": 0.9}
NAMES = list(TRUTH)
MODES = ("autodiff", "numerical", "minuit")


# --- the reference data and fits -------------------------------------------------------------


def _generate(n_events: int = 100_000, seed: int = 20240607) -> np.ndarray:
    """Truncated Gaussian by rejection plus truncated exponential by inverse CDF, signal fraction 0.3."""
    rng = np.random.default_rng(seed)
    n_sig = int(round(0.3 * n_events))
    n_bkg = n_events - n_sig
    signal = np.empty(0)
    while signal.size < n_sig:
        draw = rng.normal(TRUTH["mu"], TRUTH["sigma"], size=n_sig)
        signal = np.concatenate([signal, draw[(draw >= LOWER) & (draw <= UPPER)]])
    lam = TRUTH["lam"]
    u = rng.uniform(size=n_bkg)
    background = np.log(np.exp(lam * LOWER) + u * (np.exp(lam * UPPER) - np.exp(lam * LOWER))) / lam
    return np.concatenate([signal[:n_sig], background])


def _start_values() -> dict[str, float]:
    return {name: TRUTH[name] * START_FACTORS[name] for name in NAMES}


def _zgrad_setup(data: np.ndarray) -> SimpleNamespace:
    start = _start_values()
    obs = zgrad.Space("x", limits=(LOWER, UPPER))
    params = {
        "mu": P("mu", start["mu"]),
        "sigma": P("sigma", start["sigma"], lower=0.1),
        "lam": P("lam", start["lam"]),
        "n_sig": P("n_sig", start["n_sig"]),
        "n_bkg": P("n_bkg", start["n_bkg"]),
    }
    gauss = zgrad.models.Gauss(obs=obs, mu=params["mu"], sigma=params["sigma"])
    expo = zgrad.models.Exponential(obs=obs, lam=params["lam"])
    model = zgrad.models.Sum([gauss, expo], yields=[params["n_sig"], params["n_bkg"]])
    return SimpleNamespace(params=params, loss=zgrad.losses.ExtendedUnbinnedNLL(model, data))


def _reset(params: dict, values: dict[str, float]) -> None:
    for name, value in values.items():
        params[name].set_value(value)


def _numpy_density(x, n_sig, n_bkg, mu, sigma, lam):
    """The extended density in NumPy/SciPy, independent of zgrad: (expected events, density * events)."""
    gauss = stats.truncnorm.pdf(x, (LOWER - mu) / sigma, (UPPER - mu) / sigma, loc=mu, scale=sigma)
    expo = lam * np.exp(lam * x) / (np.exp(lam * UPPER) - np.exp(lam * LOWER))
    return n_sig + n_bkg, n_sig * gauss + n_bkg * expo


def _iminuit_fit(data: np.ndarray) -> SimpleNamespace:
    cost = IminuitExtendedNLL(data, _numpy_density)
    minuit = iminuit.Minuit(cost, **_start_values())
    minuit.limits["sigma"] = (0.1, None)
    minuit.migrad()
    minuit.hesse()
    return SimpleNamespace(
        values={n: float(minuit.values[n]) for n in NAMES},
        errors={n: float(minuit.errors[n]) for n in NAMES},
        valid=minuit.valid,
        nfcn=minuit.nfcn,
    )


@pytest.fixture(scope="module")
def reference():
    """Data, the zgrad loss, one zgrad fit per strategy and the independent iminuit fit, computed once."""
    data = _generate()
    setup = _zgrad_setup(data)
    fits = {}
    for mode in MODES:
        _reset(setup.params, _start_values())
        with zgrad.run.set_mode(autograd=mode):
            fits[mode] = zgrad.minimize.Minuit().minimize(setup.loss)
    return SimpleNamespace(data=data, setup=setup, fits=fits, iminuit=_iminuit_fit(data))


def test_generated_data_is_inside_the_range_and_reproducible(reference):
    assert reference.data.size == 100_000
    assert LOWER <= reference.data.min() and reference.data.max() <= UPPER
    np.testing.assert_array_equal(_generate()[:10], reference.data[:10])


@pytest.mark.parametrize("mode", MODES)
def test_reference_fit_is_valid_near_truth(reference, mode):
    result = reference.fits[mode]
    assert result.valid, result.message
    assert result.message == ""
    for name in NAMES:
        # 5 sigma from the generated truth: a wrong model or data would be far outside
        assert abs(result.values[name] - TRUTH[name]) < 5 * result.errors[name], name


@pytest.mark.parametrize("mode", ["numerical", "minuit"])
def test_strategies_agree_within_one_percent_of_the_errors(reference, mode):
    base, other = reference.fits["autodiff"], reference.fits[mode]
    for name in NAMES:
        assert abs(other.values[name] - base.values[name]) < 0.01 * base.errors[name], name
        assert other.errors[name] == pytest.approx(base.errors[name], rel=0.01), name


@pytest.mark.parametrize("mode", MODES)
def test_agrees_with_iminuit_cost_function_on_a_numpy_density(reference, mode):
    ours, theirs = reference.fits[mode], reference.iminuit
    assert theirs.valid
    for name in NAMES:
        assert abs(ours.values[name] - theirs.values[name]) < 0.01 * theirs.errors[name], name
        assert ours.errors[name] == pytest.approx(theirs.errors[name], rel=0.01), name


def test_path_taken_is_visible_in_the_counts(reference):
    fits = reference.fits
    assert fits["autodiff"].ngrad > 0 and fits["autodiff"].gradient_strategy == "autodiff"
    assert fits["numerical"].ngrad > 0 and fits["numerical"].gradient_strategy == "numerical"
    assert fits["minuit"].ngrad == 0 and fits["minuit"].gradient_strategy is None
    # an exact Hessian is passed to Minuit only by the autodiff strategy
    assert fits["autodiff"].hessian_strategy == "autodiff"
    assert fits["numerical"].hessian_strategy == "minuit"
    assert fits["minuit"].hessian_strategy == "minuit"
    for mode in MODES:
        assert fits[mode].nfcn > 0 and fits[mode].wall_time > 0


def test_fit_result_maps_by_name_and_by_parameter(reference):
    result = reference.fits["minuit"]
    params = reference.setup.params
    assert list(result.values) == NAMES
    for name in NAMES:
        assert result.values[params[name]] == result.values[name]
        assert result.errors[params[name]] == result.errors[name]
    with pytest.raises(KeyError, match="No parameter named 'nope'"):
        result.values["nope"]
    covariance = result.covariance
    assert covariance.shape == (5, 5)
    # sigma has a limit: iminuit maps its error and its covariance row through the limit's transform
    # separately, which differs at the 1e-5 level; the unbounded parameters agree exactly
    np.testing.assert_allclose(np.sqrt(np.diag(covariance)), [result.errors[n] for n in NAMES], rtol=1e-4)
    unbounded = [i for i, n in enumerate(NAMES) if n != "sigma"]
    np.testing.assert_allclose(
        np.sqrt(np.diag(covariance))[unbounded], [result.errors[NAMES[i]] for i in unbounded], rtol=1e-12
    )


# --- small losses for the path and failure tests ---------------------------------------------


def _gauss_loss(n: int = 2000, seed: int = 3, mu_start: float = 0.5, sigma_lower: float | None = 0.1):
    x = np.random.default_rng(seed).normal(0.1, 1.2, size=n)
    obs = zgrad.Space("x", limits=(-50.0, 50.0))  # 40 sigma each side: the truncation is negligible
    mu, sigma = P("mu", mu_start), P("sigma", 1.5, lower=sigma_lower)
    loss = zgrad.losses.UnbinnedNLL(zgrad.models.Gauss(obs, mu, sigma), x)
    return SimpleNamespace(x=x, mu=mu, sigma=sigma, loss=loss)


def test_gradient_false_uses_minuit_own_gradient():
    g = _gauss_loss()
    result = zgrad.minimize.Minuit(gradient=False).minimize(g.loss)
    assert result.valid, result.message
    assert result.ngrad == 0 and result.gradient_strategy is None
    assert result.values["mu"] == pytest.approx(g.x.mean(), abs=1e-3 * result.errors["mu"] + 1e-5)


def test_gradient_strategy_name_overrides_the_policy():
    g = _gauss_loss()
    with zgrad.run.set_mode(autograd="minuit"):
        result = zgrad.minimize.Minuit(gradient="numerical").minimize(g.loss)
    assert result.gradient_strategy == "numerical" and result.ngrad > 0


def test_gradient_none_reads_the_policy_at_minimize_time():
    g = _gauss_loss()
    minimizer = zgrad.minimize.Minuit()
    with zgrad.run.set_mode(autograd=False):
        assert minimizer.minimize(g.loss).gradient_strategy == "numerical"
    g.mu.set_value(0.5)
    assert minimizer.minimize(g.loss).gradient_strategy == "autodiff"


class _Biased:
    """The autodiff gradient with its first component 5 % too large: a deliberately wrong strategy."""

    is_autograd = False
    provides_gradient = True

    def value_gradient(self, func, params):
        result = zgrad.derivatives(func, params, strategy="autodiff")
        gradient = np.array(result.gradient, dtype=float)
        gradient[0] *= 1.05
        return float(result.value), gradient


@pytest.mark.parametrize("minimizer", [zgrad.minimize.Minuit, zgrad.minimize.Scipy])
def test_wrong_registered_gradient_is_reported(minimizer):
    g = _gauss_loss()
    zgrad.gradients.register("biased", _Biased())
    try:
        result = minimizer(gradient="biased").minimize(g.loss)
    finally:
        zgrad.gradients.unregister("biased")
    assert result.gradient_strategy == "biased"
    assert result.gradient_check is not None and not result.gradient_check["ok"]
    assert not result.valid
    assert "'biased' disagrees with finite differences" in result.message


def test_correct_registered_gradient_passes_the_check():
    class Honest:
        is_autograd = False
        provides_gradient = True

        def value_gradient(self, func, params):
            return zgrad.derivatives(func, params, strategy="autodiff")

    g = _gauss_loss()
    zgrad.gradients.register("honest", Honest())
    try:
        result = zgrad.minimize.Minuit(gradient="honest").minimize(g.loss)
    finally:
        zgrad.gradients.unregister("honest")
    assert result.gradient_check["ok"], result.gradient_check
    assert result.valid, result.message
    assert result.ngrad > 0


@pytest.mark.parametrize("minimizer", [zgrad.minimize.Minuit, zgrad.minimize.Scipy])
def test_gradient_true_without_a_zgrad_gradient_raises(minimizer):
    g = _gauss_loss()
    with zgrad.run.set_mode(autograd="minuit"):
        with pytest.raises(GradientError, match="gradient=True requires a gradient from zgrad"):
            minimizer(gradient=True).minimize(g.loss)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"gradient": "nope"}, ValueError, r"gradient='nope' is not a registered strategy"),
        ({"gradient": 3}, ValueError, r"gradient=3 \(int\) is not allowed"),
        ({"strategy": "numerical"}, TypeError, r"use gradient='numerical' instead"),
        ({"strategy": 3}, ValueError, r"strategy must be 0, 1 or 2; got 3"),
        ({"strategy": True}, ValueError, r"strategy must be 0, 1 or 2; got True"),
        ({"tol": -1}, ValueError, r"tol must be a positive number or None; got -1"),
    ],
)
def test_minuit_invalid_options_raise_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        zgrad.minimize.Minuit(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "Nelder-Mead"}, r"method='Nelder-Mead' is not supported"),
        ({"gradient": "nope"}, r"gradient='nope' is not a registered strategy"),
        ({"tol": 0}, r"tol must be a positive number; got 0"),
        ({"maxiter": 0}, r"maxiter must be a positive int; got 0"),
    ],
)
def test_scipy_invalid_options_raise_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        zgrad.minimize.Scipy(**kwargs)


# --- chi2 and NLL errors against closed forms ------------------------------------------------


def _line():
    rng = np.random.default_rng(11)
    x = np.linspace(0.0, 10.0, 25)
    yerr = 0.3 + 0.05 * x
    y = 1.7 * x - 0.8 + rng.normal(0.0, yerr)
    # weighted least squares in closed form: cov = (A^T W A)^-1, theta = cov A^T W y
    design = np.column_stack([x, np.ones_like(x)])
    weight = np.diag(1.0 / yerr**2)
    covariance = np.linalg.inv(design.T @ weight @ design)
    theta = covariance @ design.T @ weight @ y
    chi2_min = float(((y - design @ theta) ** 2 / yerr**2).sum())
    a, b = P("a", 1.0), P("b", 0.0)
    loss = zgrad.losses.Chi2(lambda t: a * t + b, x, y, yerr, params=[a, b])
    return SimpleNamespace(loss=loss, theta=theta, covariance=covariance, chi2_min=chi2_min, a=a, b=b)


def _assert_line_fit(result, line):
    assert result.valid, result.message
    errors = np.sqrt(np.diag(line.covariance))
    values = np.array([result.values["a"], result.values["b"]])
    np.testing.assert_allclose(values, line.theta, rtol=0, atol=1e-6 * errors.min())
    assert result.fmin == pytest.approx(line.chi2_min, rel=1e-9)
    np.testing.assert_allclose(result.covariance, line.covariance, rtol=1e-6)
    np.testing.assert_allclose([result.errors["a"], result.errors["b"]], errors, rtol=1e-6)


def test_chi2_errors_equal_weighted_least_squares_with_minuit():
    line = _line()
    assert line.loss.errordef == 1.0
    _assert_line_fit(zgrad.minimize.Minuit().minimize(line.loss), line)


def test_chi2_errors_equal_weighted_least_squares_with_minuit_hesse():
    line = _line()
    with zgrad.run.set_mode(autograd="minuit"):
        result = zgrad.minimize.Minuit().minimize(line.loss)
    assert result.ngrad == 0 and result.hessian_strategy == "minuit"
    _assert_line_fit(result, line)


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "trust-constr"])
def test_chi2_errors_equal_weighted_least_squares_with_scipy(method):
    line = _line()
    result = zgrad.minimize.Scipy(method=method).minimize(line.loss)
    assert result.minimizer == f"scipy:{method}"
    assert result.hessian_strategy == "autodiff"
    _assert_line_fit(result, line)


def _gauss_mle(x):
    """Maximum-likelihood mean and width of a Gaussian sample, and the inverse Hessian of its NLL there."""
    mean = x.mean()
    width = math.sqrt(((x - mean) ** 2).mean())
    # d2 NLL / d mu2 = n / s^2, d2 NLL / d s2 = 2 n / s^2, mixed term 0 at the MLE
    return mean, width, np.diag([width**2 / x.size, width**2 / (2 * x.size)])


@pytest.mark.parametrize("minimizer", [zgrad.minimize.Minuit(tol=1e-6), zgrad.minimize.Scipy()])
def test_nll_covariance_equals_the_closed_form_inverse_hessian(minimizer):
    # converged tightly, so the Hessian is evaluated at the closed-form minimum to ~1e-7; no limit on
    # sigma, since Minuit maps the error of a bounded parameter through the limit's transformation
    g = _gauss_loss(sigma_lower=None)
    mean, width, inverse_hessian = _gauss_mle(g.x)
    result = minimizer.minimize(g.loss)
    assert result.valid, result.message
    assert g.loss.errordef == 0.5
    errors = np.sqrt(np.diag(inverse_hessian))
    np.testing.assert_allclose(
        [result.values["mu"], result.values["sigma"]], [mean, width], rtol=0, atol=1e-4 * errors.min()
    )
    # 2 * errordef * H^-1 with errordef 0.5 is H^-1
    np.testing.assert_allclose(
        result.covariance, inverse_hessian, rtol=1e-6, atol=1e-6 * inverse_hessian.max()
    )
    np.testing.assert_allclose([result.errors["mu"], result.errors["sigma"]], errors, rtol=1e-6)


@pytest.mark.parametrize(
    ("minimizer", "rtol", "internal"),
    [
        (zgrad.minimize.Minuit(), 1e-10, True),
        (zgrad.minimize.Scipy(), 1e-10, False),
        (zgrad.minimize.Minuit(gradient=False), 1e-3, True),
    ],
)
def test_nll_covariance_is_the_inverse_hessian_at_the_result(minimizer, rtol, internal):
    # an exact Hessian gives 2 * errordef * H^-1 to rounding; Minuit's own HESSE is a finite-difference
    # estimate
    g = _gauss_loss()
    result = minimizer.minimize(g.loss)
    assert result.valid, result.message
    at_minimum = zgrad.hessian(g.loss, [g.mu, g.sigma], strategy="autodiff")
    if internal:
        # Minuit inverts its Hessian in sigma's internal coordinate q, sigma = 0.1 - 1 + sqrt(q^2 + 1): that
        # adds x'' g / x'^2 = g / ((d + 1) d (d + 2)), d = sigma - 0.1, where the gradient g is not exactly 0
        d = result.values["sigma"] - 0.1
        at_minimum[1, 1] += zgrad.gradient(g.loss, [g.sigma])[0] / ((d + 1.0) * d * (d + 2.0))
    expected = 2 * g.loss.errordef * np.linalg.inv(at_minimum)
    np.testing.assert_allclose(result.covariance, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def test_errordef_scales_the_covariance():
    x = P("x", 1.0)
    halves = zgrad.losses.SimpleLoss(lambda: 2.0 * (x - 3.0) ** 2, [x], errordef=0.5)
    ones = zgrad.losses.SimpleLoss(lambda: 2.0 * (x - 3.0) ** 2, [x], errordef=1.0)
    # H = 4: covariance 2 * errordef / 4
    assert zgrad.minimize.Minuit().minimize(halves).covariance[0, 0] == pytest.approx(0.25, rel=1e-12)
    x.set_value(1.0)
    assert zgrad.minimize.Minuit().minimize(ones).covariance[0, 0] == pytest.approx(0.5, rel=1e-12)
    x.set_value(1.0)
    assert zgrad.minimize.Scipy().minimize(ones).covariance[0, 0] == pytest.approx(0.5, rel=1e-9)


# --- FitResult ---------------------------------------------------------------------------------


@pytest.mark.parametrize("minimizer", [zgrad.minimize.Minuit(), zgrad.minimize.Scipy()])
def test_parameters_hold_the_best_fit_after_the_fit(minimizer):
    g = _gauss_loss()
    result = minimizer.minimize(g.loss)
    assert float(g.mu.numpy()) == result.values["mu"]
    assert float(g.sigma.numpy()) == result.values["sigma"]
    assert result.params == [g.mu, g.sigma]


@pytest.mark.parametrize("minimizer", [zgrad.minimize.Minuit(), zgrad.minimize.Scipy()])
def test_minos_is_close_to_hesse_for_a_gaussian_mean(minimizer):
    g = _gauss_loss()
    result = minimizer.minimize(g.loss)
    best = dict(result.values)
    errors = result.minos("mu")
    assert list(errors) == ["mu"]
    lower, upper = errors[g.mu]
    assert lower < 0 < upper
    # the profile of a Gaussian mean is nearly parabolic for 2000 events
    assert -lower == pytest.approx(result.errors["mu"], rel=0.01)
    assert upper == pytest.approx(result.errors["mu"], rel=0.01)
    assert float(g.mu.numpy()) == best["mu"] and float(g.sigma.numpy()) == best["sigma"]
    with pytest.raises(ValueError, match=r"unknown parameters \['nope'\]"):
        result.minos("nope")


def _nan_beyond_two():
    x = P("x", 3.0)
    nan = tf.constant(math.nan, tf.float64)
    return x, zgrad.losses.SimpleLoss(lambda: tf.where(x > 2.0, nan, (x - 1.0) ** 2), [x], errordef=1.0)


@pytest.mark.parametrize("mode", MODES)
def test_nan_loss_gives_an_invalid_result_not_an_exception(mode):
    _, loss = _nan_beyond_two()
    with zgrad.run.set_mode(autograd=mode):
        result = zgrad.minimize.Minuit().minimize(loss)
    assert not result.valid
    assert "the loss is not finite at the minimum" in result.message or (
        "the loss was not finite (NaN or inf) at x=3.0, first met during the minimization" in result.message
    )


def test_nan_loss_with_scipy_gives_an_invalid_result():
    _, loss = _nan_beyond_two()
    result = zgrad.minimize.Scipy().minimize(loss)
    assert not result.valid
    assert "not finite" in result.message


@pytest.mark.parametrize("minimizer", [zgrad.minimize.Minuit(), zgrad.minimize.Scipy()])
def test_parameter_at_its_limit_is_named_and_the_fit_stays_valid(minimizer):
    # the minimum lies outside the limit: the fit converges onto it, as iminuit and RooFit call valid
    x = P("x_bounded", 1.0, lower=0.0)
    y = P("y", 0.5)
    loss = zgrad.losses.SimpleLoss(lambda: (x + 1.0) ** 2 + (y - 2.0) ** 2, [x, y], errordef=1.0)
    result = minimizer.minimize(loss)
    assert result.valid, result.message
    assert result.at_limit == ["x_bounded"]
    assert result.message == "parameters at a limit: ['x_bounded'] (errors there are unreliable)"
    assert result.values["x_bounded"] == pytest.approx(0.0, abs=1e-8)
    assert result.values["y"] == pytest.approx(2.0, abs=1e-4)


def _no_minimum():
    x = P("x", 1.3)
    return zgrad.losses.SimpleLoss(lambda: 3.0 * x, [x], errordef=1.0)


@pytest.mark.parametrize(
    "mode",
    [
        "autodiff",
        # MIGRAD walks to |x| ~ 1e220 where the finite differences meet inf - inf: no warning may escape
        "numerical",
        "minuit",
    ],
)
def test_no_convergence_is_invalid_with_minuit(mode):
    with zgrad.run.set_mode(autograd=mode):
        result = zgrad.minimize.Minuit().minimize(_no_minimum())
    assert not result.valid
    assert "MIGRAD did not converge to a valid minimum (EDM above the tolerance" in result.message


def test_scipy_iteration_limit_is_invalid():
    g = _gauss_loss()
    result = zgrad.minimize.Scipy(maxiter=1).minimize(g.loss)
    assert not result.valid
    assert "not converged: edm" in result.message
    assert "ITERATIONS REACHED LIMIT" in result.message
    g.mu.set_value(0.5)
    assert zgrad.minimize.Scipy().minimize(g.loss).valid  # the same loss converges without the limit


@pytest.mark.parametrize("mode", MODES)
def test_start_at_negative_curvature_converges(mode):
    # x^4 - x^2 has a negative second derivative at the start: Minuit then asks for G2, which it must
    # get along with an exact Hessian (iminuit would otherwise call a missing g2 and raise TypeError)
    x, y = P("x", 0.1), P("y", 0.5)
    loss = zgrad.losses.SimpleLoss(lambda: x**4 - x**2 + y**2, [x, y], errordef=1.0)
    with zgrad.run.set_mode(autograd=mode):
        result = zgrad.minimize.Minuit().minimize(loss)
    assert result.valid, result.message
    assert result.values["x"] == pytest.approx(math.sqrt(0.5), abs=0.05 * result.errors["x"])
    assert result.fmin == pytest.approx(-0.25, abs=1e-4)


def test_fit_result_str_reports_the_fit():
    g = _gauss_loss()
    text = str(zgrad.minimize.Minuit().minimize(g.loss))
    assert text.startswith("FitResult(minuit): valid=True")
    assert "gradient=autodiff" in text and "mu =" in text
