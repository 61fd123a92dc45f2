"""Many data sets, one trace: losses of one kind on one model share their traced graphs."""

from __future__ import annotations

import numpy as np
import pytest

import zgrad
from zgrad.minimize import _objective

LENGTHS = (1, 10, 37, 500, 2001)


def _gauss(mu=0.3, sigma=1.2):
    obs = zgrad.Space("x", limits=(-5.0, 5.0))
    mu = zgrad.Parameter("mu", mu, lower=-3.0, upper=3.0)
    sigma = zgrad.Parameter("sigma", sigma, lower=0.1, upper=5.0)
    return zgrad.models.Gauss(obs, mu, sigma), (mu, sigma)


def _sum_with_yields():
    obs = zgrad.Space("x", limits=(0.0, 10.0))
    mu = zgrad.Parameter("mu", 5.0, lower=0.0, upper=10.0)
    sg = zgrad.Parameter("sg", 1.0, lower=0.1, upper=10.0)
    lb = zgrad.Parameter("lb", -0.2, lower=-1.0, upper=0.0)
    ns = zgrad.Parameter("nsig", 400.0, lower=0.0, upper=1e4)
    nb = zgrad.Parameter("nbkg", 600.0, lower=0.0, upper=1e4)
    pdfs = [zgrad.models.Gauss(obs, mu, sg), zgrad.models.Exponential(obs, lb)]
    return zgrad.models.Sum(pdfs, yields=[ns, nb]), (mu, sg, lb, ns, nb)


def _data(n, seed, low=-5.0, high=5.0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0.2, 1.1, size=n), low, high)


def _misses():
    return zgrad.run.graph_cache_info().misses


def _all_derivatives(loss):
    result = loss.derivatives(hessian=True)
    gradient = loss.derivatives().gradient
    return loss.value(), gradient, result.hessian


def test_new_losses_of_any_length_reuse_the_three_traces():
    zgrad.run.set_mode(graph=True)
    model, _ = _gauss()
    before = _misses()
    losses = []  # kept alive: a cache's counts leave the sum with its owner
    for i, n in enumerate(LENGTHS):
        losses.append(zgrad.losses.UnbinnedNLL(model, _data(n, i)))
        _all_derivatives(losses[-1])
        # value, gradient and Hessian: traced for the first loss only
        assert _misses() - before == 3, f"after {i + 1} losses"


def test_weights_and_a_second_kind_trace_once_each():
    zgrad.run.set_mode(graph=True)
    model, _ = _sum_with_yields()
    before = _misses()
    keep = []
    for i, n in enumerate((50, 300, 1200)):
        x = np.random.default_rng(i).uniform(0.0, 10.0, n)
        w = np.random.default_rng(i + 10).uniform(0.5, 1.5, n)
        keep += [
            zgrad.losses.ExtendedUnbinnedNLL(model, x),
            zgrad.losses.ExtendedUnbinnedNLL(model, x, weights=w),
            zgrad.losses.UnbinnedNLL(model, x),
        ]
        for loss in keep[-3:]:
            _all_derivatives(loss)
    assert _misses() - before == 3 * 3  # three (kind, weighted) combinations x (value, gradient, Hessian)


def test_chunked_losses_trace_once_below_and_once_above_the_chunk_size():
    zgrad.run.set_mode(graph=True)
    model, _ = _gauss()
    before = _misses()
    with_chunks = []
    with zgrad.run.set_mode(graph=True):
        zgrad.run.chunksize = 500
        try:
            for i, n in enumerate((20, 499, 500, 501, 1700, 2600)):
                with_chunks.append(zgrad.losses.UnbinnedNLL(model, _data(n, i)))
                with_chunks[-1].value()
        finally:
            zgrad.run.chunksize = None
    assert _misses() - before == 2


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n", [1, 37, 2001])
def test_a_reused_trace_gives_the_numbers_of_a_fresh_model(n, weighted):
    zgrad.run.set_mode(graph=True)
    shared, _ = _sum_with_yields()
    x = np.random.default_rng(n).uniform(0.0, 10.0, n)
    w = np.random.default_rng(n + 1).uniform(0.5, 1.5, n) if weighted else None
    # the shared model has traced for another data set (another length) first
    other = np.linspace(0.5, 9.5, 333)
    zgrad.losses.ExtendedUnbinnedNLL(shared, other, weights=None if w is None else np.ones(333)).value()
    reused = zgrad.losses.ExtendedUnbinnedNLL(shared, x, weights=w)
    fresh_model, _ = _sum_with_yields()
    fresh = zgrad.losses.ExtendedUnbinnedNLL(fresh_model, x, weights=w)
    got, want = _all_derivatives(reused), _all_derivatives(fresh)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.max(np.abs(b)))


def test_a_reused_trace_matches_a_closed_form_gaussian_nll():
    zgrad.run.set_mode(graph=True)
    model, (mu, sigma) = _gauss(mu=0.0, sigma=1.0)
    zgrad.losses.UnbinnedNLL(model, _data(100, 0, -4.0, 4.0)).gradient()
    x = _data(57, 1, -4.0, 4.0)
    loss = zgrad.losses.UnbinnedNLL(model, x)
    from scipy.special import ndtr

    m, s = 0.0, 1.0
    z = (x - m) / s
    norm = ndtr((5.0 - m) / s) - ndtr((-5.0 - m) / s)
    value = np.sum(0.5 * z**2 + np.log(s * np.sqrt(2 * np.pi) * norm))
    # d/dmu of N log(norm) vanishes at mu = 0 by symmetry of [-5, 5]
    d_mu = -np.sum(z / s)
    np.testing.assert_allclose(loss.value(), value, rtol=1e-12)
    np.testing.assert_allclose(loss.gradient([mu])[0], d_mu, rtol=1e-10, atol=1e-10)


def test_many_fits_trace_once_and_agree_with_the_generic_path():
    zgrad.run.set_mode(graph=True)
    model, params = _sum_with_yields()
    start = [float(p.numpy()) for p in params]
    before = _misses()
    keep = []
    for seed in range(4):
        for p, v in zip(params, start, strict=True):
            p.set_value(v)
        loss = zgrad.losses.ExtendedUnbinnedNLL(model, model.sample(900 + 50 * seed, seed=seed))
        keep.append(zgrad.minimize.Minuit().minimize(loss))
        assert keep[-1].valid, keep[-1].message
    # one trace each for the value with its gradient (a small loss's value calls compute the
    # gradient too: FUSED_EVENTS) and for the Hessian at a point
    assert _misses() - before == 2


def test_the_one_call_objective_equals_the_strategy_path():
    zgrad.run.set_mode(graph=True)
    model, params = _sum_with_yields()
    loss = zgrad.losses.ExtendedUnbinnedNLL(model, np.random.default_rng(3).uniform(0.0, 10.0, 800))
    autodiff = zgrad.gradients.get("autodiff")
    fast = _objective.Objective(loss, params, autodiff, autodiff)
    slow = _objective.Objective(loss, params, autodiff, autodiff)
    slow._at, slow._fast_grad, slow._fast_hess = None, False, False
    x = np.array([5.1, 0.9, -0.15, 380.0, 640.0])
    np.testing.assert_allclose(fast.fcn(x), slow.fcn(x), rtol=1e-13)
    np.testing.assert_allclose(fast.grad(x), slow.grad(x), rtol=1e-12)
    y = x + np.array([0.01, 0.02, 0.01, 3.0, -2.0])
    np.testing.assert_allclose(fast.hess(y), slow.hess(y), rtol=1e-12)
    # the one-call path leaves the Parameters at the point it evaluated, as the generic one does
    np.testing.assert_allclose([float(p.numpy()) for p in params], y, rtol=0, atol=0)


def test_the_one_call_objective_is_not_used_for_other_strategies():
    model, params = _gauss()
    loss = zgrad.losses.UnbinnedNLL(model, _data(100, 0))
    numerical = zgrad.gradients.get("numerical")
    objective = _objective.Objective(loss, params, numerical, None)
    assert objective._at is not None and not objective._fast_grad and not objective._fast_hess


def test_zgrad_at_refuses_an_unknown_order():
    model, params = _gauss()
    loss = zgrad.losses.UnbinnedNLL(model, _data(10, 0))
    with pytest.raises(ValueError, match="order must be 0, 1 or 2; got 3"):
        loss.zgrad_at(params, tuple(p.ref() for p in params), np.array([0.1, 1.0]), 3)


def test_a_sum_of_losses_on_one_model_sums_the_parts():
    model, _ = _gauss()
    a = zgrad.losses.UnbinnedNLL(model, _data(30, 0))
    b = zgrad.losses.UnbinnedNLL(model, _data(70, 1))
    np.testing.assert_allclose((a + b).value(), a.value() + b.value(), rtol=1e-13)
    np.testing.assert_allclose((a + b).gradient(), a.gradient() + b.gradient(), rtol=1e-12)


def test_any_length_arguments_trace_once_for_every_length_and_run_eagerly_unwrapped():
    import tensorflow as tf

    from zgrad import z
    from zgrad.z._signature import AnyLength

    traces = []

    @z.function(wraps="loss")
    def total(x, scale):
        traces.append(x.shape.as_list())
        return tf.reduce_sum(x) * scale

    zgrad.run.set_mode(graph=True)
    for n in (1, 3, 1000):
        assert float(total(AnyLength(np.ones(n)), 2.0)) == 2.0 * n
    assert traces == [[None]]
    assert float(total(AnyLength(np.ones(4)), 3.0)) == 12.0  # a new Python float: a trace of its own
    assert traces == [[None], [None]]
    with zgrad.run.set_mode(graph=False):
        assert float(total(AnyLength(np.ones(5)), 1.0)) == 5.0
    assert traces[-1] == [5]  # eagerly the function sees the tensor itself


def test_any_length_refuses_a_scalar():
    from zgrad.z._signature import AnyLength

    with pytest.raises(ValueError, match=r"at least one axis; got shape \(\)"):
        AnyLength(1.0)


def test_binned_and_chi2_losses_on_one_model_share_traces_and_match_closed_forms():
    zgrad.run.set_mode(graph=True)
    model, (mu, sigma) = _gauss(mu=0.0, sigma=1.0)
    from scipy.special import ndtr

    def cdf(e):
        return ndtr(e)  # mu = 0, sigma = 1: the range [-5, 5] holds all but 6e-7 of it

    before = _misses()
    keep = []
    for i, n_bins in enumerate((3, 8, 20)):
        edges = np.linspace(-3.0, 3.0, n_bins + 1)
        counts = np.random.default_rng(i).integers(0, 30, n_bins).astype(float)
        loss = zgrad.losses.BinnedNLL(model, counts, edges)
        keep.append(loss)
        total = cdf(5.0) - cdf(-5.0)
        probs = (cdf(edges[1:]) - cdf(edges[:-1])) / total
        expected = counts.sum() * probs / probs.sum()
        safe = np.where(counts > 0, counts, 1.0)
        want = np.sum(expected - counts + np.where(counts > 0, counts * np.log(safe / expected), 0.0))
        np.testing.assert_allclose(loss.value(), want, rtol=1e-12)
        loss.gradient(), loss.hessian()
    assert _misses() - before == 3
    before = _misses()
    for i, n in enumerate((4, 9)):
        x = np.linspace(-2.0, 2.0, n)
        y = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi) * (1 + 0.01 * (i + 1))
        keep.append(zgrad.losses.Chi2(model, x, y, np.full(n, 0.01)))
        pred = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi) / (ndtr(5.0) - ndtr(-5.0))
        np.testing.assert_allclose(keep[-1].value(), np.sum(((y - pred) / 0.01) ** 2), rtol=1e-10)
        keep[-1].gradient()
    assert _misses() - before == 2
