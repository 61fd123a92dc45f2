"""``model.sample``: inverse CDF (Gauss, Exponential), by component (Sum), accept-reject (the rest).

Samples are compared with each model's own normalised CDF (from ``bin_probabilities``, i.e.
the closed-form integrals) by Kolmogorov-Smirnov tests at fixed seeds; the quantile
functions are checked point by point against SciPy's and the closed form's CDFs.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import zgrad
from zgrad import z
from zgrad.models import CrystalBall, DoubleCrystalBall, Exponential, Gauss, Polynomial, Sum
from zgrad.models._sampling import truncated_exponential, truncated_normal

P = zgrad.Parameter
N = 20_000
# a correct sampler fails a KS test at this level once in a thousand seeds; the seeds are fixed
P_VALUE = 1e-3


def _cdf(model):
    """The model's normalised CDF on an array, from its closed-form bin probabilities."""
    lower = model.obs.lower

    def cdf(x):
        x = np.asarray(x, dtype=float)
        order = np.argsort(x)
        edges = np.concatenate([[lower], x[order]])
        out = np.empty_like(x)
        out[order] = np.cumsum(np.asarray(model.bin_probabilities(edges)))
        return out

    return cdf


def _ks_pvalue(model, seed, n=N):
    sample = model.sample(n, seed=seed)
    assert sample.shape == (n,)
    assert np.all((sample >= model.obs.lower) & (sample <= model.obs.upper))
    return stats.kstest(sample, _cdf(model)).pvalue


def _gauss(limits, mu, sigma):
    return Gauss(zgrad.Space("x", limits=limits), P("mu", mu), P("sigma", sigma))


def _expo(lam, limits=(0.0, 10.0)):
    return Exponential(zgrad.Space("x", limits=limits), P("lam", lam))


def _crystal_ball():
    obs = zgrad.Space("x", limits=(-10.0, 5.0))
    return CrystalBall(obs, P("mu", 0.0), P("sigma", 1.0), P("alpha", 1.5), P("n", 3.0))


class _CountingCrystalBall(CrystalBall):
    def __init__(self, *args):
        super().__init__(*args)
        self.runs = 0

    def _log_unnormalized_pdf(self, x):
        self.runs += 1
        return super()._log_unnormalized_pdf(x)


# --- inverse CDF -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "mu", "sigma"),
    [
        ((-5.0, 5.0), 0.3, 1.2),
        ((0.0, 10.0), 5.0, 1.0),
        ((-1.0, 4.0), 0.5, 1.5),
        ((5.0, 6.0), 0.0, 1.0),
        ((-6.0, -5.0), 0.0, 1.0),
        ((2.0, 2.001), 0.0, 1.0),
    ],
)
def test_gauss_sample_follows_its_cdf(limits, mu, sigma):
    assert _ks_pvalue(_gauss(limits, mu, sigma), seed=11) > P_VALUE


@pytest.mark.parametrize("limits", [(20.0, 21.0), (-31.0, -30.0), (40.0, 40.5), (-3.0, 3.0)])
def test_truncated_normal_quantiles_match_scipy_far_in_the_tails(limits):
    # the model's own erf-difference normalisation has no digits left this far out; SciPy's
    # truncnorm works in log space there
    u = np.array([0.0, 1e-9, 0.1, 0.5, 0.9, 1.0 - 1e-9])
    x = truncated_normal(u, *limits)
    assert np.all((x >= limits[0]) & (x <= limits[1]))
    np.testing.assert_allclose(stats.truncnorm(*limits).cdf(x), u, rtol=1e-9, atol=1e-12)
    sample = truncated_normal(np.random.default_rng(3).random(N), *limits)
    assert stats.kstest(sample, stats.truncnorm(*limits).cdf).pvalue > P_VALUE


@pytest.mark.parametrize("lam", [-0.5, 0.3, 0.0, 1e-9, -1e-9, -30.0, 2.0])
def test_exponential_sample_follows_its_cdf(lam):
    assert _ks_pvalue(_expo(lam), seed=12) > P_VALUE


@pytest.mark.parametrize("lam", [-0.5, 0.3, 1e-9, -1e-9, 1e-6, -40.0, 0.0])
def test_exponential_quantiles_invert_the_closed_form_cdf(lam):
    lower, upper = 1.0, 4.0
    u = np.array([0.0, 1e-10, 0.25, 0.5, 0.75, 1.0 - 1e-10])
    x = truncated_exponential(u, lam, lower, upper)
    # the CDF from the quantile's own formula, independently: (1 - exp(lam (x - lower))) / (1 - exp(lam w))
    # written with expm1, and the uniform one at lam == 0
    if lam == 0:
        cdf = (x - lower) / (upper - lower)
    else:
        cdf = np.expm1(lam * (x - lower)) / np.expm1(lam * (upper - lower))
    np.testing.assert_allclose(cdf, u, rtol=1e-9, atol=1e-14)
    model = _expo(lam, (lower, upper))
    from_model = [float(model.integrate((lower, v))) if v > lower else 0.0 for v in x[1:]]
    np.testing.assert_allclose(from_model, u[1:], rtol=1e-9, atol=1e-15)


def test_tiny_slope_tilts_the_uniform_by_the_first_order_term():
    # density (1 + lam (x - c)) / w to first order: the median moves by lam w**2 / 8 from the centre
    lam, lower, upper = 1e-9, 0.0, 10.0
    median = truncated_exponential(np.array([0.5]), lam, lower, upper)[0]
    assert median - 5.0 == pytest.approx(lam * 100.0 / 8.0, rel=1e-6)


# --- Sum: multinomial counts, then each component's sampler ---------------------------------------


def _separated_sum(**weights):
    """Two narrow Gaussians at 2 and 8: each event's component is read off its side of 5."""
    obs = zgrad.Space("x", limits=(0.0, 10.0))
    left = Gauss(obs, P("mu_l", 2.0), P("sigma_l", 0.2))
    right = Gauss(obs, P("mu_r", 8.0), P("sigma_r", 0.3))
    return Sum([left, right], **weights)


@pytest.mark.parametrize(
    ("weights", "fraction"),
    [({"yields": [P("n_l", 300.0), P("n_r", 700.0)]}, 0.3), ({"fracs": [P("f", 0.65)]}, 0.65)],
)
def test_sum_component_counts_are_multinomial_and_shuffled(weights, fraction):
    model = _separated_sum(**weights)
    x = model.sample(N, seed=21)
    left = x < 5.0
    # a binomial count: five standard deviations
    assert abs(left.sum() - fraction * N) < 5.0 * np.sqrt(N * fraction * (1.0 - fraction))
    # not ordered by component: each half holds its share of left events
    for half in (left[: N // 2], left[N // 2 :]):
        assert abs(half.mean() - fraction) < 5.0 * np.sqrt(fraction * (1.0 - fraction) / half.size)
    assert stats.kstest(x, _cdf(model)).pvalue > P_VALUE


def test_sum_with_yields_follows_its_cdf():
    obs = zgrad.Space("x", limits=(0.0, 10.0))
    gauss = Gauss(obs, P("mu", 5.0), P("sigma", 1.0))
    model = Sum([gauss, Exponential(obs, P("lam", -0.3))], yields=[P("n_sig", 1000.0), P("n_bkg", 3000.0)])
    assert _ks_pvalue(model, seed=5) > P_VALUE


def test_sum_with_fractions_of_three_kinds_follows_its_cdf():
    obs = zgrad.Space("x", limits=(-10.0, 5.0))
    cb = CrystalBall(obs, P("mu", 0.0), P("sigma", 1.0), P("alpha", 1.5), P("n", 3.0))
    parts = [cb, Gauss(obs, P("mu_g", -4.0), P("sigma_g", 0.5)), Exponential(obs, P("lam", 0.2))]
    model = Sum(parts, fracs=[P("f_cb", 0.5), P("f_g", 0.2)])
    assert _ks_pvalue(model, seed=6) > P_VALUE


def test_sum_with_a_negative_weight_is_drawn_as_a_whole():
    # 1.2 wide - 0.2 narrow stays positive: not a mixture, but a density accept-reject can draw
    obs = zgrad.Space("x", limits=(-6.0, 6.0))
    mu = P("mu", 0.0)
    wide, narrow = Gauss(obs, mu, P("sw", 3.0)), Gauss(obs, mu, P("sn", 1.0))
    model = Sum([wide, narrow], fracs=[P("f", 1.2)])
    assert _ks_pvalue(model, seed=8) > P_VALUE


def test_fractions_that_sum_to_one_leave_no_negative_last_weight():
    # 1 - (0.2 + 0.4 + 0.3 + 0.1) is -2.2e-16 in float64: the last weight is zero, not negative, so
    # the components are drawn apart and the last one (weight zero) is never evaluated
    obs = zgrad.Space("x", limits=(-10.0, 5.0))
    last = _CountingCrystalBall(obs, P("mu", 0.0), P("sigma", 1.0), P("alpha", 1.5), P("n", 3.0))
    gaussians = [Gauss(obs, P(f"mu{k}", -8.0 + 3 * k), P(f"sigma{k}", 0.1)) for k in range(4)]
    fracs = [P(f"f{k}", v) for k, v in enumerate([0.2, 0.4, 0.3, 0.1])]
    x = Sum([*gaussians, last], fracs=fracs).sample(N, seed=2)
    assert last.runs == 0
    counts = np.histogram(x, bins=[-10.0, -6.5, -3.5, -0.5, 2.5, 5.0])[0]
    assert counts[-1] == 0
    expected = N * np.array([0.2, 0.4, 0.3, 0.1])
    assert np.all(np.abs(counts[:4] - expected) < 5.0 * np.sqrt(expected))


# --- accept-reject ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        _crystal_ball(),
        DoubleCrystalBall(
            zgrad.Space("x", limits=(-8.0, 8.0)),
            P("mu", 0.5),
            P("sigma", 1.0),
            P("al", 1.0),
            P("nl", 2.0),
            P("ar", 2.0),
            P("nr", 1.0),
        ),
        Polynomial(zgrad.Space("x", limits=(0.0, 2.0)), [P("c1", 0.5), P("c2", 0.2)]),
    ],
    ids=["crystal-ball", "double-crystal-ball", "polynomial"],
)
def test_accept_reject_sample_follows_its_cdf(model):
    assert _ks_pvalue(model, seed=13) > P_VALUE


def test_accept_reject_traces_once_for_every_sample_size():
    obs = zgrad.Space("x", limits=(-10.0, 5.0))
    model = _CountingCrystalBall(obs, P("mu", 0.0), P("sigma", 1.0), P("alpha", 1.5), P("n", 3.0))
    sizes = [1, 10, 1000, 4097, 30_000, 10]
    samples = [model.sample(n, seed=1) for n in sizes]
    assert [s.size for s in samples] == sizes
    # the pdf runs twice per trace (envelope grid, candidates) and never again
    assert model.runs == 2
    model.params["mu"].set_value(-1.0)  # a Parameter stays live in the trace
    shifted = model.sample(30_000, seed=1)
    assert model.runs == 2
    assert shifted.mean() - samples[4].mean() == pytest.approx(-1.0, abs=0.05)


def test_density_that_is_nowhere_positive_raises():
    obs = zgrad.Space("x", limits=(0.0, 1.0))
    model = Polynomial(obs, [tf.Variable(np.nan, dtype=tf.float64)])
    with pytest.raises(
        ValueError, match=r"Polynomial: cannot sample: the density's maximum on the range is nan"
    ):
        model.sample(10, seed=1)


# --- seeds and zgrad's generator --------------------------------------------------------------------


def _reference_sum():
    obs = zgrad.Space("x", limits=(0.0, 10.0))
    gauss = Gauss(obs, P("mu", 5.0), P("sigma", 1.0))
    expo = Exponential(obs, P("lam", -0.01))
    return Sum([gauss, expo], yields=[P("n_sig", 1000.0), P("n_bkg", 1000.0)])


@pytest.mark.parametrize("make", [_reference_sum, _crystal_ball])
def test_seed_is_deterministic_and_consecutive_seeds_are_independent(make):
    model = make()
    first, again = model.sample(2000, seed=7), model.sample(2000, seed=7)
    np.testing.assert_array_equal(first, again)
    for other in (model.sample(2000, seed=8), model.sample(2000, seed=6)):
        # shifted copies of one stream would share most values; independent draws share none
        assert np.intersect1d(first, other).size == 0
        assert abs(np.corrcoef(np.sort(first) - np.sort(other), first)[0, 1]) < 0.1


@pytest.mark.parametrize("make", [_reference_sum, _crystal_ball])
def test_unseeded_samples_follow_zgrads_generator(make):
    model = make()
    z.random.set_seed(3)
    a, b = model.sample(100), model.sample(100)
    assert np.intersect1d(a, b).size == 0  # each call advances the generator
    z.random.set_seed(3)
    np.testing.assert_array_equal(model.sample(100), a)
    model.sample(100, seed=4)  # a seeded call leaves the generator alone
    np.testing.assert_array_equal(model.sample(100), b)
    z.random.set_seed(4)
    assert np.intersect1d(model.sample(100), a).size == 0


def test_unseeded_sample_advances_the_generator_by_one_step():
    z.random.set_seed(9)
    _reference_sum().sample(10)
    after = z.random.generator().state.numpy()
    z.random.set_seed(9)
    z.random.generator().skip(1)
    np.testing.assert_array_equal(z.random.generator().state.numpy(), after)


def test_sample_reads_the_current_parameter_values():
    model = _reference_sum()
    model.params["mu"].set_value(3.0)
    model.params["n_bkg"].set_value(0.0)
    x = model.sample(4000, seed=1)
    assert x.mean() == pytest.approx(3.0, abs=5.0 / np.sqrt(4000))


@pytest.mark.parametrize("make", [_reference_sum, _crystal_ball, lambda: _expo(-0.1)])
def test_zero_events_and_the_models_dtype(make):
    model = make()
    empty = model.sample(0, seed=1)
    assert empty.shape == (0,) and empty.dtype == np.float64


def test_float32_model_samples_float32():
    obs = zgrad.Space("x", limits=(-3.0, 3.0))
    mu, sigma = P("mu", 0.0, dtype=tf.float32), P("sigma", 1.0, dtype=tf.float32)
    for model in (
        Gauss(obs, mu, sigma),
        CrystalBall(obs, mu, sigma, P("a", 1.0, dtype=tf.float32), P("n", 2.0, dtype=tf.float32)),
    ):
        x = model.sample(500, seed=1)
        assert x.dtype == np.float32 and x.shape == (500,)


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [-1, 1.5, True, "3", None])
def test_bad_sizes_raise(n):
    with pytest.raises(ValueError, match=rf"n must be a non-negative int; got {n!r}"):
        _reference_sum().sample(n)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_bad_seeds_raise(seed):
    with pytest.raises(ValueError, match=rf"seed must be None or a non-negative int; got {seed!r}"):
        _reference_sum().sample(10, seed=seed)


def test_sample_refuses_to_run_inside_a_trace():
    model = _reference_sum()

    @tf.function
    def traced():
        return model.sample(10, seed=1)

    with pytest.raises(RuntimeError, match="call it eagerly, not inside a traced function"):
        traced()


def test_bad_parameter_values_raise_and_name_the_model():
    gauss = _gauss((0.0, 1.0), 0.5, 1.0)
    gauss.params["sigma"].set_value(-1.0)
    with pytest.raises(ValueError, match=r"Gauss: cannot sample with mu=0.5, sigma=-1.0"):
        gauss.sample(10, seed=1)
    model = _reference_sum()
    model.params["n_sig"].set_value(0.0)
    model.params["n_bkg"].set_value(0.0)
    with pytest.raises(ValueError, match=r"Sum: cannot sample with yields \[0.0, 0.0\]"):
        model.sample(10, seed=1)
