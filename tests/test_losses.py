"""Losses: values and derivatives against closed forms, chunking, combination, policy, bad input.

The references are written here in NumPy/SciPy without zgrad: the truncated-Gaussian
negative log-likelihood with its gradient in closed form (and its Hessian as the
numerical Jacobian of that closed-form gradient), a Poisson binned likelihood and
plain least squares.
"""

from __future__ import annotations

import math

import numdifftools as nd
import numpy as np
import pytest
import tensorflow as tf
from scipy import special

import zgrad
from zgrad.losses import (
    BinnedNLL,
    Chi2,
    ExtendedUnbinnedNLL,
    GaussianConstraint,
    SimpleLoss,
    UnbinnedNLL,
)
from zgrad.models import Exponential, Gauss, Sum

P = zgrad.Parameter
LOWER, UPPER = -3.0, 4.0  # asymmetric around the mean, so the truncation terms matter
OBS = zgrad.Space("x", limits=(LOWER, UPPER))
MU, SIGMA = 0.4, 1.3


def _sample(n: int = 3000, seed: int = 5) -> np.ndarray:
    x = np.random.default_rng(seed).normal(0.3, 1.2, size=3 * n)
    return x[(x >= LOWER) & (x <= UPPER)][:n]


def _weights(n: int, seed: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 1.8, size=n)


def _gauss(mu: float = MU, sigma: float = SIGMA, names: tuple[str, str] = ("mu", "sigma")) -> Gauss:
    return Gauss(OBS, P(names[0], mu), P(names[1], sigma, lower=0.05))


# --- NumPy references --------------------------------------------------------------------------


def _std_pdf(t):
    return np.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)


def _std_cdf(t):
    return 0.5 * (1.0 + special.erf(t / math.sqrt(2.0)))


def _numpy_log_pdf(x, mu, sigma):
    a, b = (LOWER - mu) / sigma, (UPPER - mu) / sigma
    z = sigma * math.sqrt(2 * math.pi) * (_std_cdf(b) - _std_cdf(a))
    return -0.5 * ((x - mu) / sigma) ** 2 - np.log(z)


def _numpy_nll(x, mu, sigma, w=None):
    w = np.ones_like(x) if w is None else w
    return -float(np.sum(w * _numpy_log_pdf(x, mu, sigma)))


def _numpy_nll_gradient(x, mu, sigma, w=None):
    """d NLL / d(mu, sigma) in closed form, the log-normalisation's derivatives included."""
    w = np.ones_like(x) if w is None else w
    a, b = (LOWER - mu) / sigma, (UPPER - mu) / sigma
    area = _std_cdf(b) - _std_cdf(a)
    t = (x - mu) / sigma
    d_log_norm_mu = -(_std_pdf(b) - _std_pdf(a)) / (sigma * area)
    d_log_norm_sigma = 1.0 / sigma - (b * _std_pdf(b) - a * _std_pdf(a)) / (sigma * area)
    d_mu = t / sigma - d_log_norm_mu
    d_sigma = t * t / sigma - d_log_norm_sigma
    return -np.array([np.sum(w * d_mu), np.sum(w * d_sigma)])


def _numpy_nll_hessian(x, mu, sigma, w=None):
    # the Jacobian of the closed-form gradient: one numerical differentiation, accurate to ~1e-10
    return nd.Jacobian(lambda p: _numpy_nll_gradient(x, p[0], p[1], w))(np.array([mu, sigma]))


# --- Gaussian UnbinnedNLL against the closed forms ---------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_unbinned_nll_value_is_the_closed_form(weighted):
    x = _sample()
    w = _weights(x.size) if weighted else None
    loss = UnbinnedNLL(_gauss(), x, weights=w)
    assert loss.errordef == 0.5
    assert loss.value() == pytest.approx(_numpy_nll(x, MU, SIGMA, w), rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_unbinned_nll_gradient_is_the_closed_form(weighted):
    x = _sample()
    w = _weights(x.size) if weighted else None
    loss = UnbinnedNLL(_gauss(), x, weights=w)
    expected = _numpy_nll_gradient(x, MU, SIGMA, w)
    np.testing.assert_allclose(loss.gradient(strategy="autodiff"), expected, rtol=1e-10)
    numerical = loss.derivatives(strategy="numerical")
    np.testing.assert_allclose(numerical.gradient, expected, rtol=1e-6)
    # the error estimate brackets the true deviation up to a safety factor
    assert np.all(np.abs(numerical.gradient - expected) <= 10 * numerical.error + 1e-9 * np.abs(expected))
    value, gradient = loss.value_gradient()
    assert value == pytest.approx(_numpy_nll(x, MU, SIGMA, w), rel=1e-12)
    np.testing.assert_allclose(gradient, expected, rtol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_unbinned_nll_hessian_matches_the_differentiated_closed_form(weighted):
    x = _sample()
    w = _weights(x.size) if weighted else None
    loss = UnbinnedNLL(_gauss(), x, weights=w)
    expected = _numpy_nll_hessian(x, MU, SIGMA, w)
    autodiff = loss.hessian(strategy="autodiff")
    np.testing.assert_allclose(autodiff, expected, rtol=1e-8)
    assert np.array_equal(autodiff, autodiff.T)
    np.testing.assert_allclose(loss.hessian(strategy="numerical"), expected, rtol=1e-5)


def test_weights_multiply_the_terms():
    x = _sample()
    w = _weights(x.size)
    weighted = UnbinnedNLL(_gauss(), x, weights=w).value()
    terms = -_numpy_log_pdf(x, MU, SIGMA)
    assert weighted == pytest.approx(float(np.sum(w * terms)), rel=1e-12)
    # doubling every weight doubles the loss exactly (a power of two changes no rounding)
    assert UnbinnedNLL(_gauss(), x, weights=2 * w).value() == 2 * weighted
    # unit weights are the unweighted loss
    assert UnbinnedNLL(_gauss(), x, weights=np.ones(x.size)).value() == pytest.approx(
        UnbinnedNLL(_gauss(), x).value(), rel=1e-14
    )


def _extended_gauss(n_sig: float = 2500.0):
    gauss = _gauss()
    n = P("n_sig", n_sig, lower=0.0)
    return Sum([gauss], yields=[n]), n


@pytest.mark.parametrize("weighted", [False, True])
def test_extended_nll_value_and_gradient_are_the_closed_form(weighted):
    x = _sample()
    w = _weights(x.size) if weighted else None
    model, n = _extended_gauss()
    loss = ExtendedUnbinnedNLL(model, x, weights=w)
    nu = 2500.0
    sum_w = x.size if w is None else w.sum()
    expected = nu - sum_w * math.log(nu) + _numpy_nll(x, MU, SIGMA, w)
    assert loss.value() == pytest.approx(expected, rel=1e-12)
    assert [p.name for p in loss.params] == ["mu", "sigma", "n_sig"]
    gradient = loss.gradient(strategy="autodiff")
    np.testing.assert_allclose(gradient[:2], _numpy_nll_gradient(x, MU, SIGMA, w), rtol=1e-10)
    assert gradient[2] == pytest.approx(1.0 - sum_w / nu, rel=1e-10)


def test_extended_nll_needs_an_extended_model():
    with pytest.raises(ValueError, match="needs an extended model"):
        ExtendedUnbinnedNLL(_gauss(), _sample())


# --- constraints and sums ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["nll", "chi2"])
def test_gaussian_constraint_adds_errordef_times_the_chi2_term(kind):
    x = _sample()
    if kind == "nll":
        model = _gauss()
        mu = model.params["mu"]
        plain = UnbinnedNLL(model, x)
        constrained = UnbinnedNLL(model, x, constraints=[GaussianConstraint(mu, observed=0.1, sigma=0.2)])
    else:
        mu = P("mu", MU)
        xs = np.linspace(0.0, 1.0, 5)
        plain = Chi2(lambda t: mu * t, xs, 2 * xs, np.ones(5), params=[mu])
        constrained = Chi2(
            lambda t: mu * t,
            xs,
            2 * xs,
            np.ones(5),
            params=[mu],
            constraints=[GaussianConstraint(mu, observed=0.1, sigma=0.2)],
        )
    errordef = plain.errordef
    pull = (MU - 0.1) / 0.2
    assert constrained.value() - plain.value() == pytest.approx(errordef * pull**2, rel=1e-9)
    index = [p.name for p in plain.params].index("mu")
    d_gradient = constrained.gradient()[index] - plain.gradient()[index]
    assert d_gradient == pytest.approx(errordef * 2 * pull / 0.2, rel=1e-9)


def test_gaussian_constraint_rejects_bad_input():
    mu = P("mu", 0.0)
    with pytest.raises(ValueError, match="sigma positive"):
        GaussianConstraint(mu, observed=0.0, sigma=0.0)
    with pytest.raises(TypeError, match="param must be a Parameter"):
        GaussianConstraint("mu", observed=0.0, sigma=1.0)


def test_sum_of_losses_is_the_sum_with_the_union_of_params():
    shared = _gauss()
    other = Gauss(OBS, shared.params["mu"], P("sigma2", 2.0, lower=0.05))  # shares mu
    x1, x2 = _sample(seed=1), _sample(seed=2)
    loss1, loss2 = UnbinnedNLL(shared, x1), UnbinnedNLL(other, x2)
    total = loss1 + loss2
    assert isinstance(total, zgrad.losses.SumLoss)
    assert total.errordef == 0.5
    assert [p.name for p in total.params] == ["mu", "sigma", "sigma2"]
    assert total.value() == pytest.approx(loss1.value() + loss2.value(), rel=1e-13)
    g1, g2, g = loss1.gradient(), loss2.gradient(), total.gradient()
    np.testing.assert_allclose(g, [g1[0] + g2[0], g1[1], g2[1]], rtol=1e-12)
    # sums flatten
    three = total + UnbinnedNLL(_gauss(names=("mu3", "sigma3")), x1)
    assert len(three.losses) == 3


def test_sum_of_losses_with_different_errordef_raises():
    mu = P("mu", 0.0)
    nll = SimpleLoss(lambda: mu**2, [mu], errordef=0.5)
    chi2 = SimpleLoss(lambda: mu**2, [mu], errordef=1.0)
    with pytest.raises(ValueError, match=r"different errordef \[0.5, 1.0\]"):
        nll + chi2


def test_params_exclude_fixed_ones_and_keep_their_order():
    mu, sigma, lam = P("mu", 0.2), P("sigma", 0.8, lower=0.1), P("lam", -0.4)
    n_sig, n_bkg = P("n_sig", 300.0), P("n_bkg", 700.0, floating=False)
    model = Sum([Gauss(OBS, mu, sigma), Exponential(OBS, lam)], yields=[n_sig, n_bkg])
    loss = ExtendedUnbinnedNLL(model, _sample(n=500))
    assert loss.params == [mu, sigma, lam, n_sig]
    assert loss.get_params(None) == [mu, sigma, lam, n_sig, n_bkg]
    assert loss.get_params(False) == [n_bkg]
    sigma.floating = False  # read when asked, not frozen at construction
    assert loss.params == [mu, lam, n_sig]
    assert loss.gradient().shape == (3,)
    assert "sigma" not in repr(loss)


def test_strategy_is_read_at_call_time():
    loss = UnbinnedNLL(_gauss(), _sample())
    assert zgrad.derivatives(loss, loss.params).strategy == "autodiff"
    with zgrad.run.set_mode(autograd=False):
        assert zgrad.derivatives(loss, loss.params).strategy == "numerical"
        assert loss.derivatives().strategy == "numerical"
        # an explicit strategy wins over the policy
        assert loss.derivatives(strategy="autodiff").strategy == "autodiff"
    assert loss.derivatives().strategy == "autodiff"
    zgrad.run.set_mode(autograd="numerical")
    assert loss.derivatives().strategy == "numerical"


# --- BinnedNLL, Chi2, SimpleLoss -----------------------------------------------------------------


def _numpy_poisson(counts, expected):
    n, mu = np.asarray(counts, float), np.asarray(expected, float)
    log_term = np.where(n > 0, n * np.log(np.where(n > 0, n, 1.0) / mu), 0.0)
    return float(np.sum(mu - n + log_term))


def _bin_probabilities(edges, mu, sigma):
    cdf = _std_cdf((np.asarray(edges) - mu) / sigma)
    return np.diff(cdf) / (_std_cdf((UPPER - mu) / sigma) - _std_cdf((LOWER - mu) / sigma))


def test_binned_nll_matches_a_numpy_poisson_likelihood():
    edges = np.linspace(-2.0, 3.0, 11)  # a sub-range of the observable
    counts = np.array([3, 10, 31, 62, 90, 95, 70, 40, 12, 0])
    loss = BinnedNLL(_gauss(), counts, edges)
    probs = _bin_probabilities(edges, MU, SIGMA)
    expected = counts.sum() * probs / probs.sum()
    assert loss.errordef == 0.5
    assert loss.value() == pytest.approx(_numpy_poisson(counts, expected), rel=1e-11)
    # zero at a perfect prediction
    perfect = BinnedNLL(_gauss(), expected, edges)
    assert abs(perfect.value()) < 1e-11 * counts.sum()
    numerical = nd.Gradient(
        lambda p: _numpy_poisson(
            counts, counts.sum() * _bin_probabilities(edges, *p) / _bin_probabilities(edges, *p).sum()
        )
    )
    np.testing.assert_allclose(loss.gradient(), numerical([MU, SIGMA]), rtol=1e-7)


def test_binned_nll_of_an_extended_model_uses_its_yield():
    edges = np.linspace(-2.0, 3.0, 6)
    counts = np.array([40.0, 300.0, 800.0, 600.0, 90.0])
    model, _ = _extended_gauss(n_sig=2000.0)
    loss = BinnedNLL(model, counts, edges)
    expected = 2000.0 * _bin_probabilities(edges, MU, SIGMA)
    assert loss.value() == pytest.approx(_numpy_poisson(counts, expected), rel=1e-11)
    weights = np.array([1.0, 0.5, 2.0, 1.0, 1.5])
    weighted = BinnedNLL(model, counts, edges, weights=weights)
    n, mu = counts, expected
    assert weighted.value() == pytest.approx(
        float(np.sum(weights * (mu - n + n * np.log(n / mu)))), rel=1e-11
    )


def test_binned_nll_rejects_bad_histograms():
    with pytest.raises(ValueError, match="edges must have one entry more than counts; got 3 and 3"):
        BinnedNLL(_gauss(), [1, 2, 3], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="counts must be non-negative"):
        BinnedNLL(_gauss(), [1, -2], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        BinnedNLL(_gauss(), [1, 2], [0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match=r"outside the range \(-3.0, 4.0\)"):
        BinnedNLL(_gauss(), [1, 2], [0.0, 1.0, 5.0])


def test_chi2_with_a_callable_model_and_params():
    a, b = P("a", 1.5), P("b", -0.5)
    x = np.linspace(-1.0, 2.0, 7)
    y = 2.0 * x + 0.3 * np.cos(x)
    yerr = 0.1 + 0.05 * np.abs(x)
    loss = Chi2(lambda t: a * t + b, x, y, yerr, params=[a, b])
    assert loss.errordef == 1.0
    assert loss.params == [a, b]
    residual = (y - (1.5 * x - 0.5)) / yerr
    assert loss.value() == pytest.approx(float(np.sum(residual**2)), rel=1e-13)
    gradient = -2 * np.array([np.sum(residual * x / yerr), np.sum(residual / yerr)])
    np.testing.assert_allclose(loss.gradient(), gradient, rtol=1e-12)
    design = np.column_stack([x, np.ones_like(x)]) / yerr[:, None]
    np.testing.assert_allclose(loss.hessian(), 2 * design.T @ design, rtol=1e-12)
    w = np.linspace(0.5, 2.0, 7)
    weighted = Chi2(lambda t: a * t + b, x, y, yerr, params=[a, b], weights=w)
    assert weighted.value() == pytest.approx(float(np.sum(w * residual**2)), rel=1e-13)


def test_chi2_with_a_model_compares_its_density():
    x = np.linspace(-2.0, 3.0, 9)
    y = np.exp(_numpy_log_pdf(x, 0.0, 1.0))
    yerr = np.full(x.size, 0.01)
    loss = Chi2(_gauss(), x, y, yerr)
    assert [p.name for p in loss.params] == ["mu", "sigma"]
    expected = np.sum(((y - np.exp(_numpy_log_pdf(x, MU, SIGMA))) / yerr) ** 2)
    assert loss.value() == pytest.approx(float(expected), rel=1e-11)


def test_chi2_rejects_bad_input():
    a = P("a", 1.0)
    x = np.arange(3.0)
    with pytest.raises(ValueError, match=r"Chi2 with a plain callable needs params=\[\.\.\.\]"):
        Chi2(lambda t: a * t, x, x, np.ones(3))
    with pytest.raises(ValueError, match="x, y and yerr must have one length; got 3, 2, 3"):
        Chi2(lambda t: a * t, x, x[:2], np.ones(3), params=[a])
    with pytest.raises(ValueError, match="yerr must be positive everywhere"):
        Chi2(lambda t: a * t, x, x, np.array([1.0, 0.0, 1.0]), params=[a])
    with pytest.raises(TypeError, match="model must be a zgrad model or a callable"):
        Chi2(3.0, x, x, np.ones(3), params=[a])


def test_simple_loss_value_gradient_hessian():
    x, y = P("x", 2.0), P("y", -1.0)
    loss = SimpleLoss(lambda: (x - 1.0) ** 2 * y**2 + 3.0 * y, [x, y], errordef=1.0)
    assert loss.errordef == 1.0
    assert loss.params == [x, y]
    assert loss.value() == -2.0
    np.testing.assert_allclose(loss.gradient(), [2.0, -2.0 + 3.0], rtol=1e-15)
    np.testing.assert_allclose(loss.hessian(), [[2.0, -4.0], [-4.0, 2.0]], rtol=1e-15)
    np.testing.assert_allclose(loss.gradient(strategy="numerical"), [2.0, 1.0], rtol=1e-8)
    assert float(loss().numpy()) == loss.value()
    with pytest.raises(ValueError, match="errordef must be positive and finite; got 0.0"):
        SimpleLoss(lambda: x**2, [x], errordef=0.0)
    with pytest.raises(TypeError, match="func must be a zero-argument callable"):
        SimpleLoss(3.0, [x], errordef=1.0)


# --- chunking ----------------------------------------------------------------------------------


def _chunk_losses(extended: bool, weighted: bool):
    x = _sample(n=10_007, seed=8)  # prime: no chunk size divides it
    w = _weights(x.size) if weighted else None
    if extended:
        model, _ = _extended_gauss(n_sig=9000.0)
        return ExtendedUnbinnedNLL(model, x, weights=w)
    return UnbinnedNLL(_gauss(), x, weights=w)


@pytest.mark.parametrize("strategy", ["autodiff", "numerical"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("extended", [False, True], ids=["unbinned", "extended"])
def test_chunked_and_unchunked_losses_agree(extended, weighted, strategy):
    # value and gradient through the policy; autodiff runs one tape per chunk
    loss = _chunk_losses(extended, weighted)
    with zgrad.run.set_mode(autograd=strategy):
        value, gradient = loss.value_gradient()
        zgrad.run.chunksize = 1000
        chunked_value, chunked_gradient = loss.value_gradient()
        assert zgrad.run.chunksize == 1000
    assert chunked_value == pytest.approx(value, rel=1e-12, abs=0)
    if strategy == "autodiff":
        np.testing.assert_allclose(chunked_gradient, gradient, rtol=1e-12, atol=0)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("extended", [False, True], ids=["unbinned", "extended"])
def test_chunked_numerical_gradient_agrees_within_its_rounding(extended, weighted):
    # Chunks sum in another order, so each loss value may differ in its last bit (~1e-16 relative);
    # finite differences divide that by the step, which puts the gradient's agreement at ~1e-11
    # relative: the strategy's own error estimate bounds it, 1e-12 is out of reach by construction.
    loss = _chunk_losses(extended, weighted)
    unchunked = loss.derivatives(strategy="numerical")
    zgrad.run.chunksize = 1000
    chunked = loss.derivatives(strategy="numerical")
    assert chunked.value == pytest.approx(unchunked.value, rel=1e-12, abs=0)
    assert chunked.n_evals == unchunked.n_evals
    difference = np.abs(chunked.gradient - unchunked.gradient)
    # the extrapolation's error estimate has no rounding floor (it came out at 5e-12 for the yield,
    # below the 1e-11 seen here): add one of a few ulps of the loss value
    bound = unchunked.error + 16 * np.finfo(float).eps * abs(unchunked.value)
    assert np.all(difference <= bound), (difference, bound)


def test_chunked_value_hessian_and_single_chunk():
    loss = _chunk_losses(extended=True, weighted=True)
    value, hessian = loss.value(), loss.hessian()
    zgrad.run.chunksize = 3001
    assert loss.value() == pytest.approx(value, rel=1e-12)
    # entries that vanish analytically (the yield does not enter the shape) are rounding noise
    np.testing.assert_allclose(loss.hessian(), hessian, rtol=1e-10, atol=1e-12 * np.abs(hessian).max())
    zgrad.run.chunksize = 10**6  # larger than the data: one chunk, the unchunked path
    assert loss.value() == value


class _CountingGauss(Gauss):
    """A Gauss whose log-density counts how often its Python body runs (only while tracing)."""

    traces = 0

    def _log_unnormalized_pdf(self, x):
        type(self).traces += 1
        return super()._log_unnormalized_pdf(x)


def test_chunksize_is_part_of_the_trace_key():
    _CountingGauss.traces = 0
    loss = UnbinnedNLL(_CountingGauss(OBS, P("mu", MU), P("sigma", SIGMA)), _sample(n=2001))
    value = loss.value()
    assert _CountingGauss.traces == 1
    loss.value()
    assert _CountingGauss.traces == 1  # cached
    zgrad.run.chunksize = 500
    chunked = loss.value()
    assert _CountingGauss.traces == 2  # a new chunk size traces anew
    assert chunked == pytest.approx(value, rel=1e-12)
    loss.value()
    assert _CountingGauss.traces == 2
    zgrad.run.chunksize = None
    assert loss.value() == value
    assert _CountingGauss.traces == 2  # back to the first key: its trace is reused
    loss.model.params["mu"].set_value(0.5)
    assert loss.value() != value
    assert _CountingGauss.traces == 2  # a Parameter value never retraces


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("loss_class", [UnbinnedNLL, ExtendedUnbinnedNLL])
def test_data_outside_the_range_is_named(loss_class):
    model = _extended_gauss()[0] if loss_class is ExtendedUnbinnedNLL else _gauss()
    data = np.array([0.0, 1.0, 4.5, -7.0, 2.0])
    with pytest.raises(
        ValueError,
        match=r"2 of 5 events lie outside the range \(-3.0, 4.0\) of observable 'x' "
        r"\(e.g. data\[2\] = 4.5\)",
    ):
        loss_class(model, data)


def test_empty_data_raises():
    with pytest.raises(ValueError, match="data is empty"):
        UnbinnedNLL(_gauss(), np.array([]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data_raises(bad):
    data = np.array([0.0, 1.0, bad, 2.0])
    with pytest.raises(ValueError, match=r"data holds 1 non-finite values \(NaN or inf\), e.g. at index 2"):
        UnbinnedNLL(_gauss(), data)


def test_data_of_the_wrong_shape_or_type_raises():
    with pytest.raises(ValueError, match=r"data must be 1-D; got shape \(2, 2\)"):
        UnbinnedNLL(_gauss(), np.zeros((2, 2)))
    with pytest.raises(TypeError, match="data must hold real numbers; got dtype <U1"):
        UnbinnedNLL(_gauss(), np.array(["a", "b"]))


def test_mismatched_weights_raise():
    with pytest.raises(ValueError, match="weights has 2 entries but the data has 3; they must match"):
        UnbinnedNLL(_gauss(), np.array([0.0, 1.0, 2.0]), weights=np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="weights holds 1 non-finite values"):
        UnbinnedNLL(_gauss(), np.array([0.0, 1.0]), weights=np.array([1.0, np.nan]))


def test_two_parameters_with_one_name_in_a_loss_raise():
    x = _sample(n=200)
    first = UnbinnedNLL(_gauss(), x)
    second = UnbinnedNLL(_gauss(), x)  # its own Parameters, also named 'mu' and 'sigma'
    with pytest.raises(ValueError, match="two different Parameters named 'mu'"):
        first + second
    a1, a2 = P("a", 1.0), P("a", 2.0)
    with pytest.raises(ValueError, match="SimpleLoss holds two different Parameters named 'a'"):
        SimpleLoss(lambda: a1 * a2, [a1, a2], errordef=1.0)
    model = _gauss()
    with pytest.raises(ValueError, match="UnbinnedNLL holds two different Parameters named 'mu'"):
        UnbinnedNLL(model, x, constraints=[GaussianConstraint(P("mu", 0.0), 0.0, 1.0)])
    with pytest.raises(ValueError, match="Sum: two different Parameters are named 'sigma'"):
        Sum([_gauss(), _gauss(names=("mu2", "sigma"))], yields=[P("n1", 1.0), P("n2", 1.0)])


def test_parameter_value_outside_its_limits_raises():
    sigma = P("sigma", 1.0, lower=0.1, upper=3.0)
    with pytest.raises(ValueError, match=r"Parameter 'sigma': value 5.0 is outside its limits \[0.1, 3.0\]"):
        sigma.set_value(5.0)
    assert float(sigma.numpy()) == 1.0
    with pytest.raises(ValueError, match=r"Parameter 'mu': value -2.0 is outside its limits \[-1.0, 1.0\]"):
        P("mu", -2.0, lower=-1.0, upper=1.0)


def test_model_that_is_not_a_model_raises():
    with pytest.raises(TypeError, match="model must be a zgrad model"):
        UnbinnedNLL(lambda x: x, np.array([0.0]))


def test_loss_without_floating_parameters_cannot_be_differentiated():
    x = P("x", 1.0, floating=False)
    loss = SimpleLoss(lambda: x**2, [x], errordef=1.0)
    assert loss.params == []
    with pytest.raises(ValueError, match="SimpleLoss has no floating Parameters to differentiate"):
        loss.gradient()
    with pytest.raises(ValueError, match="The loss has no floating Parameters to minimize"):
        zgrad.minimize.Minuit().minimize(loss)


def test_losses_are_tensors_inside_a_trace():
    loss = UnbinnedNLL(_gauss(), _sample(n=300))

    @zgrad.z.function(wraps="tensor")
    def doubled():
        return 2.0 * loss.value()

    assert float(doubled()) == pytest.approx(2 * loss.value(), rel=1e-14)
    assert isinstance(loss(), tf.Tensor)


def test_hessian_in_chunks_equals_one_pass_and_bounds_chunk_size(monkeypatch):
    """The loss's Hessian hook sums nested-tape Hessians per chunk: same numbers as one pass.

    A Crystal Ball has no closed-form jet, so its Hessian takes the tape path.
    """
    from zgrad.gradients import autodiff
    from zgrad.losses import _jet_derivatives, _kernel, unbinned

    rng = np.random.default_rng(3)
    data = rng.normal(0.1, 1.2, 5003)
    data = data[np.abs(data) < 5]
    obs = zgrad.Space("x", limits=(-5.0, 5.0))
    mu, sigma = zgrad.Parameter("mu", 0.1), zgrad.Parameter("sigma", 1.1, lower=0.1)
    alpha, n = zgrad.Parameter("alpha", 1.5, lower=0.1), zgrad.Parameter("n", 3.0, lower=0.5)
    model = zgrad.models.CrystalBall(obs, mu, sigma, alpha, n)
    loss = zgrad.losses.UnbinnedNLL(model, data, constraints=[zgrad.losses.GaussianConstraint(mu, 0.0, 0.5)])
    assert not _jet_derivatives.supported(model, tuple(loss.params))
    params = tuple(loss.params)
    _, grad_once, hess_once = autodiff._value_gradient_hessian(loss, params, autodiff._identities(params))
    monkeypatch.setattr(unbinned, "HESSIAN_CHUNK", 1000)  # 5 chunks (the last one short)
    loops = []
    real_while_loop = _kernel.tf.while_loop
    monkeypatch.setattr(
        _kernel.tf, "while_loop", lambda *a, **k: loops.append(1) or real_while_loop(*a, **k)
    )
    zgrad.run.clear_graph_cache()
    result = zgrad.derivatives(loss, params, strategy="autodiff", hessian=True)
    assert loops == [1]  # the chunked path ran
    np.testing.assert_allclose(result.hessian, hess_once.numpy(), rtol=1e-12)
    np.testing.assert_allclose(result.gradient, grad_once.numpy(), rtol=1e-12)
    assert np.array_equal(result.hessian, result.hessian.T)
