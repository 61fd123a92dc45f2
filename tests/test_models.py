"""Models: normalisation, values against SciPy, closed-form derivatives against autodiff, sampling, policy.

Every number is compared with an independent reference: SciPy's quadrature for integrals,
``scipy.stats`` densities for values, TensorFlow's autodiff for the NumPy closed forms,
and truncated-normal moments for samples.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from scipy import integrate, stats

import zgrad
from zgrad.models import CrystalBall, DoubleCrystalBall, Exponential, Gauss, Polynomial, Sum

P = zgrad.Parameter
OBS = zgrad.Space("x", limits=(-10.0, 5.0))
# points in the low tail, at both sides of the tail junctions, in the core and in the high tail
POINTS = np.array([-9.7, -6.0, -2.3, -1.6, -1.35, -0.4, 0.3, 1.2, 2.6, 4.9])


def _gauss(obs=OBS, mu=0.3, sigma=1.7):
    return Gauss(obs, P("mu", mu), P("sigma", sigma))


def _expo(lam, obs=OBS):
    return Exponential(obs, P("lam", lam))


def _cb(n=2.5, alpha=1.3, obs=OBS):
    return CrystalBall(obs, P("mu", 0.2), P("sigma", 1.1), P("alpha", alpha), P("n", n))


def _dcb(nl=2.5, nr=1.0, alphar=0.8, obs=OBS):
    return DoubleCrystalBall(
        obs, P("mu", 0.2), P("sigma", 1.1), P("alphal", 1.3), P("nl", nl), P("alphar", alphar), P("nr", nr)
    )


def _poly(obs=OBS):
    return Polynomial(obs, [P("c1", 0.3), P("c2", 0.2), P("c3", -0.1)])


def _sum_fracs():
    gauss = Gauss(OBS, P("mu", -1.0), P("sigma", 0.8))
    wide = Gauss(OBS, gauss.params["mu"], P("sigma_wide", 3.0))  # a Parameter shared by two components
    return Sum([gauss, wide, _expo(-0.2)], fracs=[P("f_core", 0.3), P("f_wide", 0.5)])


def _sum_yields():
    return Sum(
        [_cb(), _expo(-0.2), _poly()], yields=[P("n_sig", 300.0), P("n_bkg", 900.0), P("n_poly", 50.0)]
    )


MODELS = {
    "gauss": _gauss,
    "expo_neg": lambda: _expo(-0.3),
    "expo_pos": lambda: _expo(0.45),
    "expo_zero": lambda: _expo(0.0),
    "expo_tiny": lambda: _expo(1e-11),
    "cb": _cb,
    "cb_n1": lambda: _cb(n=1.0),
    "cb_n_below_1": lambda: _cb(n=0.6),
    "dcb": _dcb,
    "poly": _poly,
    "sum_fracs": _sum_fracs,
    "sum_yields": _sum_yields,
}


def _quad(model, lower, upper):
    def density(x):
        return float(model.pdf(np.array([x]))[0])

    # the Crystal Ball tail junctions (mu -+ alpha * sigma) and peaks: kinks and narrow features help quad
    breaks = [p for p in (-1.23, -1.0, 0.2, 1.08) if lower < p < upper]
    value, _ = integrate.quad(
        density, lower, upper, points=breaks or None, epsabs=1e-14, epsrel=1e-13, limit=200
    )
    return value


# --- normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pdf_integrates_to_one_and_integrate_matches_quadrature(name):
    model = MODELS[name]()
    with zgrad.run.set_mode(graph=True):  # quadrature calls the pdf thousands of times: one trace is faster
        assert _quad(model, *OBS.limits) == pytest.approx(1.0, abs=1e-10)
        for sub in [(-10.0, -4.0), (-2.0, 0.7), (1.5, 5.0)]:
            expected = _quad(model, *sub)
            assert float(model.integrate(sub)) == pytest.approx(expected, rel=1e-10, abs=1e-13)
    assert float(model.integrate(OBS.limits)) == pytest.approx(1.0, abs=1e-14)


def test_exponential_is_stable_for_large_slopes():
    obs = zgrad.Space("x", limits=(0.0, 10.0))
    for lam in (-800.0, 800.0):
        model = _expo(lam, obs)
        x = np.linspace(0.0, 10.0, 11)
        values = model.pdf(x).numpy()
        assert np.all(np.isfinite(values))
        # the whole mass sits within 1/|lam| of the rising end: P(that strip) = 1 - exp(-1)
        strip = (10.0 - 1.0 / abs(lam), 10.0) if lam > 0 else (0.0, 1.0 / abs(lam))
        assert float(model.integrate(strip)) == pytest.approx(-math.expm1(-1.0), rel=1e-13)
        end = 10.0 if lam > 0 else 0.0
        assert float(model.log_pdf([end])[0]) == pytest.approx(math.log(abs(lam)), rel=1e-14)
        np.testing.assert_allclose(
            model.log_pdf(x).numpy(), math.log(abs(lam)) - abs(lam) * np.abs(x - end), rtol=1e-14
        )


def test_exponential_at_zero_slope_is_uniform_with_finite_gradient():
    model = _expo(0.0)
    x = np.array([-10.0, -2.5, 5.0])
    np.testing.assert_allclose(model.log_pdf(x).numpy(), -math.log(15.0), rtol=1e-15)
    gradient = _autodiff_log_pdf(model, x)["lam"]
    # d/dlam log pdf at lam = 0 is x minus the mid-point of the range
    np.testing.assert_allclose(gradient, x + 2.5, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(model.log_pdf_derivatives(x)["lam"], x + 2.5, rtol=1e-14, atol=1e-14)


# --- values against SciPy -----------------------------------------------------------------------


def test_gauss_matches_truncnorm():
    model = _gauss()
    reference = stats.truncnorm((-10.0 - 0.3) / 1.7, (5.0 - 0.3) / 1.7, loc=0.3, scale=1.7)
    np.testing.assert_allclose(model.pdf(POINTS).numpy(), reference.pdf(POINTS), rtol=1e-13)
    np.testing.assert_allclose(model.log_pdf(POINTS).numpy(), reference.logpdf(POINTS), rtol=1e-13)


@pytest.mark.parametrize("n", [1.5, 2.5, 6.0])
def test_crystalball_matches_scipy_normalised_on_the_range(n):
    model = _cb(n=n)
    full = stats.crystalball(beta=1.3, m=n, loc=0.2, scale=1.1)
    expected = full.pdf(POINTS) / (full.cdf(5.0) - full.cdf(-10.0))
    np.testing.assert_allclose(model.pdf(POINTS).numpy(), expected, rtol=1e-12)


def test_double_crystalball_without_a_high_tail_in_range_is_the_crystalball():
    # the high tail starting beyond the upper limit never shows: the two models coincide
    obs = zgrad.Space("x", limits=(-10.0, 2.0))
    single, double = _cb(obs=obs), _dcb(alphar=2.5, obs=obs)
    np.testing.assert_allclose(
        double.pdf(POINTS[POINTS < 2]).numpy(), single.pdf(POINTS[POINTS < 2]).numpy(), rtol=1e-14
    )


def test_double_crystalball_mirrors_under_reflection():
    obs = zgrad.Space("x", limits=(-6.0, 6.0))
    model = DoubleCrystalBall(
        obs, P("mu", 0.0), P("sigma", 1.0), P("al", 1.1), P("nl", 3.0), P("ar", 0.7), P("nr", 1.5)
    )
    mirrored = DoubleCrystalBall(
        obs, P("mu", 0.0), P("sigma", 1.0), P("al", 0.7), P("nl", 1.5), P("ar", 1.1), P("nr", 3.0)
    )
    x = np.linspace(-5.9, 5.9, 23)
    np.testing.assert_allclose(model.pdf(x).numpy(), mirrored.pdf(-x).numpy(), rtol=1e-13)


def test_exponential_matches_truncexpon():
    lam = -0.3
    reference = stats.truncexpon(b=abs(lam) * 15.0, loc=-10.0, scale=1.0 / abs(lam))
    np.testing.assert_allclose(_expo(lam).pdf(POINTS).numpy(), reference.pdf(POINTS), rtol=1e-13)


def test_polynomial_matches_numpy_chebyshev():
    cheb = np.polynomial.chebyshev
    model = _poly()
    y = (2.0 * POINTS - (-10.0 + 5.0)) / 15.0
    coeffs = [1.0, 0.3, 0.2, -0.1]
    antiderivative = cheb.chebint(coeffs)
    area = 7.5 * (cheb.chebval(1.0, antiderivative) - cheb.chebval(-1.0, antiderivative))
    np.testing.assert_allclose(model.pdf(POINTS).numpy(), cheb.chebval(y, coeffs) / area, rtol=1e-14)


def test_sum_is_the_weighted_mixture():
    model = _sum_yields()
    parts = np.array([pdf.pdf(POINTS).numpy() for pdf in model.pdfs])
    yields = np.array([300.0, 900.0, 50.0])
    np.testing.assert_allclose(model.pdf(POINTS).numpy(), yields @ parts / yields.sum(), rtol=1e-14)
    fracs = _sum_fracs()
    parts = np.array([pdf.pdf(POINTS).numpy() for pdf in fracs.pdfs])
    np.testing.assert_allclose(fracs.pdf(POINTS).numpy(), np.array([0.3, 0.5, 0.2]) @ parts, rtol=1e-14)


# --- closed-form derivatives against autodiff -----------------------------------------------------


def _autodiff_log_pdf(model, x):
    """Reverse-mode derivatives of log pdf at each point (one tape per point: cheaper than a jacobian)."""
    keys = list(model.params)
    rows = []
    for point in x:
        with tf.GradientTape() as tape:
            log_pdf = model.log_pdf(np.array([point]))[0]
        rows.append([float(g) for g in tape.gradient(log_pdf, [model.params[k] for k in keys])])
    return dict(zip(keys, np.array(rows).T, strict=True))


DERIVATIVE_MODELS = {
    **MODELS,
    "expo_neg_tiny": lambda: _expo(-3e-9),
    "expo_just_below_series_cut": lambda: _expo(6e-5),  # |lam| * width = 9e-4
    "expo_just_above_series_cut": lambda: _expo(-7e-5),  # |lam| * width = 1.05e-3
    "expo_steep": lambda: _expo(-40.0),
    "cb_near_n1": lambda: _cb(n=1.0 + 1e-9),
    "dcb_n1_both": lambda: _dcb(nl=1.0, nr=1.0),
    "nested_sum": lambda: Sum(
        [_sum_fracs(), Gauss(OBS, P("mu2", 2.0), P("s2", 0.5))], yields=[P("n_a", 5.0), P("n_b", 2.0)]
    ),
}


@pytest.mark.parametrize("name", sorted(DERIVATIVE_MODELS))
def test_closed_form_derivatives_match_autodiff(name):
    model = DERIVATIVE_MODELS[name]()
    closed = model.log_pdf_derivatives(POINTS)
    auto = _autodiff_log_pdf(model, POINTS)
    assert set(closed) == set(model.params)
    for key, expected in auto.items():
        assert closed[key] is not None, key
        assert np.all(np.isfinite(closed[key])), key
        np.testing.assert_allclose(closed[key], expected, rtol=1e-10, atol=1e-12, err_msg=f"{name}: {key}")


def test_sum_reports_none_where_a_component_has_no_closed_form():
    class Flat(zgrad.models.BasePDF):
        def __init__(self, obs, height):
            super().__init__(obs, {"height": height})

        def _unnormalized_pdf(self, x):
            return tf.ones_like(x) * self._params["height"]

        def _integral(self, lower, upper):
            return (upper - lower) * self._params["height"]

    model = Sum([_gauss(), Flat(OBS, P("h", 2.0))], fracs=[P("f", 0.4)])
    closed = model.log_pdf_derivatives(POINTS)
    assert closed["h"] is None
    auto = _autodiff_log_pdf(model, POINTS)
    for key in ("mu", "sigma", "f"):
        np.testing.assert_allclose(closed[key], auto[key], rtol=1e-10, atol=1e-12)


# --- parameters and sums -------------------------------------------------------------------------


def test_sum_params_are_distinct_and_ordered():
    model = _sum_fracs()
    assert [p.name for p in model.get_params()] == ["mu", "sigma", "sigma_wide", "lam", "f_core", "f_wide"]
    assert list(model.params) == ["mu", "sigma", "sigma_wide", "lam", "f_core", "f_wide"]
    assert not model.is_extended
    model.params["sigma_wide"].floating = False
    assert [p.name for p in model.get_params(floating=False)] == ["sigma_wide"]
    assert len(model.get_params(floating=None)) == 6


def test_extended_sum_expected_events():
    model = _sum_yields()
    assert model.is_extended
    assert float(model.expected_events()) == 1250.0
    n_bkg = model.params["n_bkg"]
    with n_bkg.set_value(100.0):
        assert float(model.expected_events()) == 450.0
    with tf.GradientTape() as tape:
        total = model.expected_events()
    assert float(tape.gradient(total, n_bkg)) == 1.0
    with pytest.raises(ValueError, match="built with fracs= and carries no yield"):
        _sum_fracs().expected_events()


# --- sampling ------------------------------------------------------------------------------------


def test_sampling_is_reproducible_with_a_seed():
    model = _gauss(obs=zgrad.Space("x", limits=(-5.0, 5.0)))
    first, again, other = model.sample(500, seed=7), model.sample(500, seed=7), model.sample(500, seed=8)
    assert first.shape == (500,)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.all((first >= -5.0) & (first <= 5.0))


def test_gauss_sample_moments_match_the_truncated_normal():
    n = 20000
    obs = zgrad.Space("x", limits=(-1.0, 4.0))
    sample = _gauss(obs=obs, mu=0.5, sigma=1.5).sample(n, seed=42)
    truth = stats.truncnorm((-1.0 - 0.5) / 1.5, (4.0 - 0.5) / 1.5, loc=0.5, scale=1.5)
    mean, var, _, excess_kurtosis = (float(v) for v in truth.stats(moments="mvsk"))
    std = math.sqrt(var)
    # standard errors of the sample mean and of the sample standard deviation
    se_mean = std / math.sqrt(n)
    se_std = math.sqrt((excess_kurtosis + 2.0) * var * var / n) / (2.0 * std)
    assert abs(sample.mean() - mean) < 5.0 * se_mean
    assert abs(sample.std(ddof=1) - std) < 5.0 * se_std


# --- graph policy --------------------------------------------------------------------------------


class _CountingGauss(Gauss):
    """A Gauss whose Python body counts its runs: it moves once per eager call, once per trace."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.runs = 0

    def _normalization(self):
        self.runs += 1
        return super()._normalization()


def test_pdf_and_integrate_run_eagerly_under_auto():
    model = _CountingGauss(OBS, P("mu", 0.0), P("sigma", 1.0))
    for values in (np.array([0.0, 1.0]), np.array([2.0, 3.0]), np.array([0.5, 0.6])):
        model.pdf(values)
        model.integrate((-1.0, 1.0))
    assert model.runs == 6
    assert zgrad.run.graph_cache_info().traces == 0


def test_pdf_and_integrate_trace_once_with_graph_true():
    model = _CountingGauss(OBS, P("mu", 0.0), P("sigma", 1.0))
    with zgrad.run.set_mode(graph=True):
        model.pdf(np.array([0.0, 1.0]))
        for values in (np.array([2.0, 3.0]), np.array([0.5, 0.6])):
            model.pdf(values)
        assert model.runs == 1
        assert zgrad.run.graph_cache_info().traces == 1
        with model.params["mu"].set_value(1.0):  # Parameters stay live in the trace
            moved = stats.truncnorm(-11.0, 4.0, loc=1.0).pdf([0.0, 1.0])
            np.testing.assert_allclose(model.pdf(np.array([0.0, 1.0])).numpy(), moved, rtol=1e-13)
        assert model.runs == 1
        for _ in range(3):
            model.integrate((-1.0, 1.0))
        assert model.runs == 2
        assert zgrad.run.graph_cache_info().traces == 2
    inside = stats.norm.cdf(1.0) - stats.norm.cdf(-1.0)
    assert float(model.integrate((-1.0, 1.0))) == pytest.approx(
        inside / (stats.norm.cdf(5.0) - stats.norm.cdf(-10.0)), rel=1e-13
    )


def test_model_methods_are_inlined_in_a_traced_loss():
    model = _CountingGauss(OBS, P("mu", 0.0), P("sigma", 1.0))
    data = np.array([0.1, -0.3, 0.7])

    @zgrad.z.function(wraps="loss")
    def nll():
        return -tf.reduce_sum(model.log_pdf(data))

    values = [float(nll()) for _ in range(3)]
    assert values[0] == values[2]
    assert model.runs == 1  # traced once, inside the loss
    assert zgrad.run.graph_cache_info().traces == 1


# --- bad input -----------------------------------------------------------------------------------


def test_bad_construction_raises_clear_errors():
    mu, sigma = P("mu", 0.0), P("sigma", 1.0)
    with pytest.raises(TypeError, match="obs must be a zgrad.Space; got"):
        Gauss((-1.0, 1.0), mu, sigma)
    with pytest.raises(TypeError, match=r"'sigma' must be a zgrad.Parameter \(or a tf.Variable\); got 1.0"):
        Gauss(OBS, mu, 1.0)
    with pytest.raises(TypeError, match="parameter 'lam' must be a zgrad.Parameter"):
        Exponential(OBS, np.float64(-1.0))
    with pytest.raises(ValueError, match="parameter 'alpha' must be positive; got -1.0"):
        CrystalBall(OBS, mu, sigma, P("alpha", -1.0), P("n", 2.0))
    with pytest.raises(ValueError, match="parameter 'nr' must be positive; got 0.0"):
        DoubleCrystalBall(OBS, mu, sigma, P("al", 1.0), P("nl", 2.0), P("ar", 1.0), P("nr", 0.0))
    with pytest.raises(TypeError, match="coeffs must be a sequence of Parameters"):
        Polynomial(OBS, P("c1", 0.1))
    with pytest.raises(TypeError, match="parameter 'c2' must be a zgrad.Parameter"):
        Polynomial(OBS, [P("c1", 0.1), 0.2])


def test_bad_sums_raise_clear_errors():
    gauss, expo = _gauss(), _expo(-0.1)
    f, n1, n2 = P("f", 0.5), P("n1", 10.0), P("n2", 10.0)
    with pytest.raises(ValueError, match="exactly one of fracs=.*got both"):
        Sum([gauss, expo], fracs=[f], yields=[n1, n2])
    with pytest.raises(ValueError, match="exactly one of fracs=.*got neither"):
        Sum([gauss, expo])
    with pytest.raises(ValueError, match="Sum of 2 pdfs needs 1 fracs; got 2"):
        Sum([gauss, expo], fracs=[f, n1])
    with pytest.raises(ValueError, match="Sum of 2 pdfs needs 2 yields; got 1"):
        Sum([gauss, expo], yields=[n1])
    with pytest.raises(TypeError, match=r"fracs\[0\] must be a zgrad.Parameter; got 0.5"):
        Sum([gauss, expo], fracs=[0.5])
    with pytest.raises(TypeError, match=r"pdfs\[1\] must be a zgrad model"):
        Sum([gauss, "expo"], fracs=[f])
    other = _expo(-0.1, obs=zgrad.Space("x", limits=(-10.0, 6.0)))
    with pytest.raises(
        ValueError, match=r"share one observable.*pdfs\[1\] is on Space\('x', limits=\(-10.0, 6.0\)\)"
    ):
        Sum([gauss, other], fracs=[f])
    with pytest.raises(ValueError, match="two different Parameters are named 'mu'"):
        Sum([gauss, _gauss()], fracs=[f])


def test_integrate_limits_outside_the_range_raise():
    model = _gauss()
    with pytest.raises(ValueError, match=r"increasing sub-range of the observable's \(-10.0, 5.0\)"):
        model.integrate((-11.0, 0.0))
    with pytest.raises(ValueError, match="increasing sub-range"):
        model.integrate((1.0, 0.0))
    with pytest.raises(TypeError, match="limits must be a pair of numbers"):
        model.integrate(3.0)


def test_closed_form_derivatives_refuse_to_run_in_a_trace():
    model = _gauss()

    @zgrad.z.function(wraps="tensor")
    def traced(x):
        return model.log_pdf_derivatives(x)

    with pytest.raises(RuntimeError, match="log_pdf_derivatives works on NumPy values; call it eagerly"):
        traced(POINTS)
