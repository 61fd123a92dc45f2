"""Template shapes (SplineShape, KDEShape): normalisation, values, gradients, bad input, and a fit.

References are independent of the bridge: SciPy's quadrature for integrals, the SciPy
interpolator or KDE evaluated directly for values, numdifftools on a NumPy
re-implementation of the negative log-likelihood for gradients, and a shift that is
known because the data were generated with it.
"""

from __future__ import annotations

import numdifftools as nd
import numpy as np
import pytest
import scipy.interpolate
import scipy.stats
from scipy import integrate

import zgrad
from zgrad.models.template import KDEShape, SplineShape

P = zgrad.Parameter
OBS = zgrad.Space("x", limits=(-3.0, 3.0))


def _histogram_template():
    """Bin centres and counts of a Gaussian sample: knots on (-5, 5), wider than the observable."""
    counts, edges = np.histogram(
        np.random.default_rng(7).normal(0.0, 1.2, 200_000), bins=40, range=(-5.0, 5.0)
    )
    return 0.5 * (edges[1:] + edges[:-1]), counts.astype(float)


KNOTS, HEIGHTS = _histogram_template()
KDE_SAMPLE = np.random.default_rng(11).normal(0.2, 0.9, 300)
DATA = np.random.default_rng(3).uniform(-2.9, 2.9, 300)

# (shift, scale) settings: absent, a shift alone, both
SETTINGS = {"plain": (None, None), "shift": (0.3, None), "shift-scale": (-0.4, 1.2)}


def _params(setting):
    shift, scale = SETTINGS[setting]
    return (
        None if shift is None else P("shift", shift),
        None if scale is None else P("scale", scale, lower=0.5, upper=2.0),
    )


def _spline(setting="plain"):
    shift, scale = _params(setting)
    return SplineShape(OBS, x=KNOTS, y=HEIGHTS, shift=shift, scale=scale)


def _kde(setting="plain"):
    shift, scale = _params(setting)
    return KDEShape(OBS, data=KDE_SAMPLE, shift=shift, scale=scale)


def _density(model):
    return lambda t: float(model.pdf(np.array([t]))[0])


def _breaks(setting, lower, upper):
    # the spline is a cubic between knots: quadrature split there converges at once
    shift, scale = SETTINGS[setting]
    knots = (0.0 if shift is None else shift) + (1.0 if scale is None else scale) * KNOTS
    return [k for k in knots if lower < k < upper]


def _quad(model, setting, lower, upper):
    points = _breaks(setting, lower, upper) if isinstance(model, SplineShape) else None
    value, _ = integrate.quad(
        _density(model), lower, upper, points=points, epsabs=1e-12, epsrel=1e-11, limit=200
    )
    return value


# --- normalisation and values -----------------------------------------------------------------------


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("make", [_spline, _kde], ids=["spline", "kde"])
def test_pdf_integrates_to_one_on_the_range(make, setting):
    model = make(setting)
    assert _quad(model, setting, -3.0, 3.0) == pytest.approx(1.0, abs=1e-9)
    assert float(model.integrate((-3.0, 3.0))) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("make", [_spline, _kde], ids=["spline", "kde"])
def test_integrate_over_a_sub_range_matches_quadrature(make, setting):
    model = make(setting)
    for lower, upper in ((-1.0, 2.0), (-3.0, -1.7), (0.45, 3.0)):
        expected = _quad(model, setting, lower, upper)
        assert float(model.integrate((lower, upper))) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_spline_values_are_scipys_pchip_normalised():
    model = _spline("shift-scale")
    shift, scale = SETTINGS["shift-scale"]
    pchip = scipy.interpolate.PchipInterpolator(KNOTS, HEIGHTS, extrapolate=False)
    t = np.array([-2.9, -1.3, 0.0, 0.77, 2.5])
    norm = integrate.quad(
        lambda v: pchip((v - shift) / scale),
        -3.0,
        3.0,
        points=_breaks("shift-scale", -3, 3),
        epsrel=1e-12,
        limit=200,
    )[0]
    np.testing.assert_allclose(model.pdf(t), pchip((t - shift) / scale) / norm, rtol=1e-9)


def test_spline_is_zero_beyond_its_knots():
    narrow = SplineShape(OBS, x=np.linspace(-1.0, 1.0, 9), y=np.ones(9), shift=P("shift", 0.5))
    np.testing.assert_array_equal(narrow.pdf(np.array([-2.9, -0.6, 1.6, 2.9])), 0.0)
    assert float(narrow.pdf(np.array([0.5]))[0]) == pytest.approx(0.5, rel=1e-12)  # flat over 2 units


def test_kde_values_are_scipys_kde_normalised():
    model = _kde("shift-scale")
    shift, scale = SETTINGS["shift-scale"]
    kde = scipy.stats.gaussian_kde(KDE_SAMPLE)
    t = np.array([-2.9, -1.3, 0.0, 0.77, 2.5])
    norm = scale * kde.integrate_box_1d((-3.0 - shift) / scale, (3.0 - shift) / scale)
    np.testing.assert_allclose(model.pdf(t), kde((t - shift) / scale) / norm, rtol=1e-12)


# --- gradients of a likelihood ----------------------------------------------------------------------


def _spline_nll(v):
    """The negative log-likelihood of DATA under the shifted, scaled spline, in NumPy."""
    shift, scale = v
    pchip = scipy.interpolate.PchipInterpolator(KNOTS, HEIGHTS, extrapolate=False)
    primitive = pchip.antiderivative()
    lo, hi = (np.clip((b - shift) / scale, KNOTS[0], KNOTS[-1]) for b in (-3.0, 3.0))
    norm = scale * (primitive(hi) - primitive(lo))
    return -np.sum(np.log(pchip((DATA - shift) / scale) / norm))


def _kde_nll(v):
    """The same for the KDE, written out as a Gaussian mixture with scipy's bandwidth."""
    shift, scale = v
    width = float(np.sqrt(scipy.stats.gaussian_kde(KDE_SAMPLE).covariance[0, 0]))
    u = (DATA[:, None] - shift) / scale
    density = np.mean(scipy.stats.norm.pdf(u, KDE_SAMPLE[None, :], width), axis=1)
    cdf = scipy.stats.norm.cdf(((np.array([-3.0, 3.0]) - shift) / scale)[:, None], KDE_SAMPLE[None, :], width)
    norm = scale * np.mean(cdf[1] - cdf[0])
    return -np.sum(np.log(density / norm))


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
@pytest.mark.parametrize(
    ("make", "numpy_nll"), [(_spline, _spline_nll), (_kde, _kde_nll)], ids=["spline", "kde"]
)
def test_nll_gradient_wrt_shift_and_scale_matches_numerical_references(make, numpy_nll, graph):
    model = make("shift-scale")
    loss = zgrad.losses.UnbinnedNLL(model, DATA)
    point = list(SETTINGS["shift-scale"])
    with zgrad.run.set_mode(graph=graph):
        assert loss.value() == pytest.approx(numpy_nll(point), rel=1e-12)
        autodiff = loss.gradient(strategy="autodiff")
        numerical = loss.gradient(strategy="numerical")
    # small steps: a spline NLL is only C1 in shift and scale (data points cross knots)
    reference = nd.Gradient(numpy_nll, step=nd.MaxStepGenerator(base_step=1e-3))(point)
    assert [p.name for p in loss.params] == ["shift", "scale"]
    np.testing.assert_allclose(autodiff, reference, rtol=1e-6)
    np.testing.assert_allclose(numerical, reference, rtol=1e-6)
    np.testing.assert_allclose(autodiff, numerical, rtol=1e-6)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_nll_gradient_wrt_shift_alone(graph):
    model = _spline("shift")
    loss = zgrad.losses.UnbinnedNLL(model, DATA)
    with zgrad.run.set_mode(graph=graph):
        grad = loss.gradient(strategy="autodiff")
    reference = nd.Derivative(lambda s: _spline_nll([s, 1.0]), step=nd.MaxStepGenerator(base_step=1e-3))(0.3)
    np.testing.assert_allclose(grad, [reference], rtol=1e-6)


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        ([0.0, 2.0, 1.0], [1.0, 1.0, 1.0], "strictly increasing"),
        ([0.0, 1.0, 1.0], [1.0, 1.0, 1.0], "strictly increasing"),
        ([0.0, 1.0, 2.0], [1.0, -0.5, 1.0], "non-negative"),
        ([0.0, 1.0, 2.0], [1.0, 1.0], "one length"),
        ([0.0], [1.0], "one length >= 2"),
        ([[0.0, 1.0]], [[1.0, 1.0]], "1-D"),
        ([0.0, np.nan, 2.0], [1.0, 1.0, 1.0], "finite"),
        ([0.0, 1.0, 2.0], [1.0, np.inf, 1.0], "finite"),
    ],
)
def test_spline_rejects_bad_knots_and_heights(x, y, match):
    with pytest.raises(ValueError, match=match):
        SplineShape(OBS, x=x, y=y)


@pytest.mark.parametrize(
    "data",
    [[0.5], [], [[0.1, 0.2], [0.3, 0.4]], [0.1, np.nan, 0.3]],
    ids=["one-value", "empty", "2-d", "nan"],
)
def test_kde_rejects_bad_samples(data):
    with pytest.raises(ValueError, match="finite 1-D sample of at least 2 values"):
        KDEShape(OBS, data=data)


def test_shift_must_be_a_parameter():
    with pytest.raises(TypeError, match=r"'shift' must be a zgrad.Parameter.*got 0.3"):
        SplineShape(OBS, x=KNOTS, y=HEIGHTS, shift=0.3)
    with pytest.raises(TypeError, match="'scale' must be a zgrad.Parameter"):
        KDEShape(OBS, data=KDE_SAMPLE, scale=1.2)


# --- a fit ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gradient", ["autodiff", "numerical"])
def test_minuit_fit_recovers_a_known_shift(gradient):
    shift = P("shift", 0.3, lower=-2.0, upper=2.0)
    model = SplineShape(OBS, x=KNOTS, y=HEIGHTS, shift=shift)
    data = model.sample(4000, seed=5)  # the template moved by 0.3
    shift.set_value(0.0)
    loss = zgrad.losses.UnbinnedNLL(model, data)
    result = zgrad.minimize.Minuit(gradient=gradient).minimize(loss)
    assert result.valid, result.message
    assert result.gradient_strategy == gradient
    value, error = result.values["shift"], result.errors["shift"]
    assert abs(value - 0.3) < 3.0 * error
    # the Hesse error is that of the likelihood: 1 / sqrt(d2 NLL / d shift2) at the minimum (errordef 0.5)
    curvature = nd.Derivative(
        lambda s: -np.sum(np.log(model_pdf_numpy(data, s))), n=2, step=nd.MaxStepGenerator(base_step=1e-2)
    )(value)
    assert error == pytest.approx(1.0 / np.sqrt(curvature), rel=1e-2)
    assert float(shift.numpy()) == value  # the Parameter holds the best fit


def model_pdf_numpy(t, shift):
    """The shifted spline template normalised on the observable, in NumPy (for the Hesse check)."""
    pchip = scipy.interpolate.PchipInterpolator(KNOTS, HEIGHTS, extrapolate=False)
    primitive = pchip.antiderivative()
    norm = primitive(np.clip(3.0 - shift, KNOTS[0], KNOTS[-1])) - primitive(
        np.clip(-3.0 - shift, KNOTS[0], KNOTS[-1])
    )
    return pchip(t - shift) / norm
