"""The 'autodiff' strategy against closed-form gradients and Hessians, eagerly and traced."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad.errors import GradientError

RTOL64 = 1e-12
RTOL32 = 1e-6
GRAPH_MODES = [pytest.param(False, id="eager"), pytest.param(True, id="graph")]


def assert_close(actual, desired, rtol):
    """Per-component relative comparison; a zero in ``desired`` is allowed ``rtol`` times the largest entry.

    A norm-wide tolerance would hide errors in the small components of the scale-disparity case.
    """
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape
    bound = np.where(desired != 0, rtol * np.abs(desired), rtol * np.max(np.abs(desired)))
    err = np.abs(actual - desired)
    assert np.all(err <= bound), f"\nactual  {actual}\ndesired {desired}\nrel err {err / np.abs(desired)}"


# --- the test set: each case builds fresh Parameters and returns (func, params, value, grad, hess) -----


def _gaussian_nll():
    data = np.random.default_rng(20240611).normal(0.1, 1.1, size=1000)
    mu0, sigma0 = 0.3, 1.2
    mu, sigma = zgrad.Parameter("mu", mu0), zgrad.Parameter("sigma", sigma0, lower=0.01)
    x = tf.constant(data)

    def nll():
        z = (x - mu) / sigma
        return tf.reduce_sum(0.5 * z * z + tf.math.log(sigma) + 0.5 * np.log(2 * np.pi))

    n, d = data.size, data - mu0
    s1, s2 = d.sum(), (d * d).sum()
    value = s2 / (2 * sigma0**2) + n * np.log(sigma0) + 0.5 * n * np.log(2 * np.pi)
    grad = [-s1 / sigma0**2, -s2 / sigma0**3 + n / sigma0]
    hess = [
        [n / sigma0**2, 2 * s1 / sigma0**3],
        [2 * s1 / sigma0**3, 3 * s2 / sigma0**4 - n / sigma0**2],
    ]
    return nll, [mu, sigma], value, grad, hess


def _rosenbrock():
    x0 = np.array([-1.2, 1.0, 0.8, 1.5, -0.5])
    params = [zgrad.Parameter(f"x{i}", v) for i, v in enumerate(x0)]

    def rosen():
        return tf.add_n(
            [100.0 * (params[i + 1] - params[i] ** 2) ** 2 + (1.0 - params[i]) ** 2 for i in range(4)]
        )

    x = x0
    value = sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(4))
    grad = np.zeros(5)
    hess = np.zeros((5, 5))
    for j in range(5):
        if j < 4:
            grad[j] += -400 * x[j] * (x[j + 1] - x[j] ** 2) - 2 * (1 - x[j])
            hess[j, j] += 1200 * x[j] ** 2 - 400 * x[j + 1] + 2
            hess[j, j + 1] = hess[j + 1, j] = -400 * x[j]
        if j > 0:
            grad[j] += 200 * (x[j] - x[j - 1] ** 2)
            hess[j, j] += 200
    return rosen, params, value, grad, hess


def _scale_disparity():
    x0, y0 = 0.3, -2.0
    x, y = zgrad.Parameter("x", x0), zgrad.Parameter("y", y0)
    value = 1e6 * x0**2 + 1e-6 * y0**2
    return (lambda: 1e6 * x**2 + 1e-6 * y**2), [x, y], value, [2e6 * x0, 2e-6 * y0], [[2e6, 0.0], [0.0, 2e-6]]


def _exp_at_20():
    x = zgrad.Parameter("x", 20.0)
    e = np.exp(20.0)
    return (lambda: tf.exp(x)), [x], e, [e], [[e]]


CASES64 = {
    "gaussian_nll": _gaussian_nll,
    "rosenbrock5": _rosenbrock,
    "scale_disparity": _scale_disparity,
    "exp_at_20": _exp_at_20,
}


def _float32_objective():
    x = zgrad.Parameter("x", 0.7, dtype=tf.float32)
    y = zgrad.Parameter("y", 1.3, dtype=tf.float32)
    # closed forms evaluated at the float32 values the Parameters actually hold
    x0, y0 = float(np.float32(0.7)), float(np.float32(1.3))
    value = x0**2 * y0 + np.sin(x0)
    grad = [2 * x0 * y0 + np.cos(x0), x0**2]
    hess = [[2 * y0 - np.sin(x0), 2 * x0], [2 * x0, 0.0]]
    return (lambda: x**2 * y + tf.sin(x)), [x, y], value, grad, hess


@pytest.mark.parametrize("make", [*CASES64.values(), _float32_objective])
def test_reference_gradients_have_no_cancelling_components(make):
    # per-component relative tolerances mean something only if no closed-form component is a tiny
    # difference of large terms; the scale-disparity case is small on purpose, not by cancellation
    _, _, _, grad, _ = make()
    grad = np.abs(np.asarray(grad))
    assert np.all(grad > 0)
    if make is not _scale_disparity:
        assert grad.min() > 1e-3 * grad.max()


@pytest.mark.parametrize("graph", GRAPH_MODES)
@pytest.mark.parametrize("case", list(CASES64))
def test_float64_gradient_and_hessian_match_closed_forms(case, graph):
    func, params, value, grad, hess = CASES64[case]()
    with zgrad.run.set_mode(graph=graph):
        v, g = zgrad.value_gradient(func, params, strategy="autodiff")
        h = zgrad.hessian(func, params, strategy="autodiff")
        result = zgrad.derivatives(func, params, strategy="autodiff", hessian=True)
    assert isinstance(g, np.ndarray) and g.dtype == np.float64 and g.shape == (len(params),)
    assert isinstance(h, np.ndarray) and h.dtype == np.float64 and h.shape == (len(params),) * 2
    assert isinstance(v, np.float64)
    assert_close(v, value, RTOL64)
    assert_close(g, grad, RTOL64)
    assert_close(h, hess, RTOL64)
    assert np.array_equal(h, h.T)
    assert_close(result.gradient, grad, RTOL64)
    assert_close(result.hessian, hess, RTOL64)
    assert np.array_equal(result.hessian, result.hessian.T)


@pytest.mark.parametrize("graph", GRAPH_MODES)
def test_float32_objective_matches_closed_forms_at_float32_tolerance(graph):
    func, params, value, grad, hess = _float32_objective()
    with zgrad.run.set_mode(graph=graph):
        result = zgrad.derivatives(func, params, strategy="autodiff", hessian=True)
        g = zgrad.gradient(func, params, strategy="autodiff")
    assert result.gradient.dtype == np.float32 and g.dtype == np.float32
    assert result.hessian.dtype == np.float32
    assert_close(result.value, value, RTOL32)
    assert_close(result.gradient, grad, RTOL32)
    assert_close(g, grad, RTOL32)
    assert_close(result.hessian, hess, RTOL32)
    assert np.array_equal(result.hessian, result.hessian.T)
    # float32 really is float32: the answer is not float64-accurate on every component
    assert not np.allclose(result.gradient.astype(np.float64), grad, rtol=1e-12, atol=0)


@pytest.mark.parametrize("graph", GRAPH_MODES)
def test_strategy_object_returns_gradient_result_with_numpy_fields(graph):
    func, params, value, grad, hess = _rosenbrock()
    strategy = zgrad.gradients.get("autodiff")
    with zgrad.run.set_mode(graph=graph):
        vg = strategy.value_gradient(func, params)
        full = strategy.hessian(func, params)
    for r in (vg, full):
        assert isinstance(r, zgrad.GradientResult)
        assert isinstance(r.gradient, np.ndarray)
        assert r.strategy == "autodiff" and r.n_evals == 1 and r.error is None
        assert r.params == ("x0", "x1", "x2", "x3", "x4")
        assert r.status == ("ok",) * 5
        assert_close(r.gradient, grad, RTOL64)
    assert vg.hessian is None
    assert_close(full.hessian, hess, RTOL64)
    assert np.array_equal(full.hessian, full.hessian.T)


def test_parameter_changes_are_read_live_by_the_cached_trace():
    x = zgrad.Parameter("x", 1.0)
    f = lambda: x**3  # noqa: E731
    with zgrad.run.set_mode(graph=True):
        assert zgrad.gradient(f, [x]).tolist() == [3.0]
        x.assign(2.0)
        assert zgrad.gradient(f, [x]).tolist() == [12.0]
        assert zgrad.hessian(f, [x]).tolist() == [[12.0]]
    info = zgrad.run.graph_cache_info()
    assert (info.misses, info.hits) == (2, 1)  # gradient traced once, hessian once


# --- trace counts ---------------------------------------------------------------------------------


def _counted_quadratic():
    x, y = zgrad.Parameter("x", 1.5), zgrad.Parameter("y", -0.5)
    calls = []

    def f():
        calls.append(1)  # moves only when the Python body runs: while tracing, or eagerly
        return x**2 * y

    return f, [x, y], calls


def test_gradient_of_the_same_function_is_traced_once():
    f, params, calls = _counted_quadratic()
    with zgrad.run.set_mode(graph=True):
        first = zgrad.gradient(f, params)
        second = zgrad.gradient(f, params)
    assert first.tolist() == second.tolist() == [2 * 1.5 * -0.5, 1.5**2]
    assert len(calls) == 1
    info = zgrad.run.graph_cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_hessian_is_traced_once_and_separately_from_the_gradient():
    f, params, calls = _counted_quadratic()
    with zgrad.run.set_mode(graph=True):
        for _ in range(3):
            h = zgrad.hessian(f, params)
        zgrad.gradient(f, params)
    assert h.tolist() == [[2 * -0.5, 2 * 1.5], [2 * 1.5, 0.0]]
    assert len(calls) == 2
    info = zgrad.run.graph_cache_info()
    assert (info.misses, info.hits) == (2, 2)


def test_eager_mode_runs_the_body_on_every_call_and_traces_nothing():
    f, params, calls = _counted_quadratic()
    with zgrad.run.set_mode(graph=False):
        zgrad.gradient(f, params)
        zgrad.gradient(f, params)
    assert len(calls) == 2
    assert zgrad.run.graph_cache_info().misses == 0


def test_same_function_with_other_parameters_or_order_is_not_served_by_a_stale_trace():
    # Parameters of one dtype and shape share a trace signature, but the function reads them through
    # its closure: reusing the trace of (x, y) for (y, x), or of [x] for [y], would give wrong numbers.
    x, y = zgrad.Parameter("x", 1.0), zgrad.Parameter("y", 2.0)
    f = lambda: x * y**2 + 5.0 * x  # noqa: E731
    with zgrad.run.set_mode(graph=True):
        assert zgrad.gradient(f, [x, y]).tolist() == [9.0, 4.0]
        assert zgrad.gradient(f, [y, x]).tolist() == [4.0, 9.0]
        assert zgrad.gradient(f, [x]).tolist() == [9.0]
        assert zgrad.gradient(f, [y]).tolist() == [4.0]
        assert zgrad.hessian(f, [y, x]).tolist() == [[2.0, 4.0], [4.0, 0.0]]
        assert zgrad.gradient(f, [x, y]).tolist() == [9.0, 4.0]
    info = zgrad.run.graph_cache_info()
    assert (info.misses, info.hits) == (5, 1)


# --- parameters without a gradient, IndexedSlices ------------------------------------------------


@pytest.mark.parametrize("graph", GRAPH_MODES)
@pytest.mark.parametrize("hessian", [False, True])
def test_parameter_the_function_does_not_depend_on_raises_naming_it(graph, hessian):
    x, unused = zgrad.Parameter("x", 1.0), zgrad.Parameter("unused_param", 2.0)
    with zgrad.run.set_mode(graph=graph):
        with pytest.raises(GradientError, match=r"w\.r\.t\. \['unused_param'\] is None"):
            zgrad.derivatives(lambda: x**2, [x, unused], strategy="autodiff", hessian=hessian)
        # a failed trace is not kept: the valid request afterwards works
        assert zgrad.gradient(lambda: x**2, [x], strategy="autodiff").tolist() == [2.0]


@pytest.mark.parametrize("graph", GRAPH_MODES)
def test_dependence_only_through_numpy_function_raises_never_a_zero(graph):
    x, hidden = zgrad.Parameter("x", 1.0), zgrad.Parameter("hidden", 0.5)

    def f():
        doubled = tf.numpy_function(lambda a: 2.0 * a, [hidden], tf.float64)  # no gradient registered
        return x * tf.reshape(doubled, [])

    with zgrad.run.set_mode(graph=graph):
        assert float(f()) == 1.0  # the function does depend on `hidden` ...
        with pytest.raises(GradientError, match=r"\['hidden'\] is None.*tf\.numpy_function"):
            zgrad.gradient(f, [x, hidden])  # ... but autodiff cannot see it: an error, not 0
        with pytest.raises(GradientError, match=r"\['hidden'\]"):
            zgrad.hessian(f, [x, hidden])


@pytest.mark.parametrize("graph", GRAPH_MODES)
def test_gather_on_a_variable_gives_a_dense_correct_gradient(graph):
    # tf.gather's gradient w.r.t. a variable is IndexedSlices; repeated indices must be summed
    v = tf.Variable([2.0], dtype=tf.float64, name="v")
    f = lambda: tf.reduce_sum(tf.gather(v, [0, 0, 0]) ** 2)  # noqa: E731  3 v^2
    with zgrad.run.set_mode(graph=graph):
        result = zgrad.derivatives(f, [v], strategy="autodiff", hessian=True)
    assert isinstance(result.gradient, np.ndarray)
    assert result.value == 12.0
    assert result.gradient.tolist() == [12.0]
    assert result.hessian.tolist() == [[6.0]]


@pytest.mark.parametrize("graph", GRAPH_MODES)
def test_gather_of_a_vector_built_from_parameters(graph):
    a, b = zgrad.Parameter("a", 1.5), zgrad.Parameter("b", -2.0)

    def f():
        vec = tf.stack([a, a * b, b**2])
        return tf.reduce_sum(tf.gather(vec, [1, 2, 2]))  # a*b + 2 b^2

    with zgrad.run.set_mode(graph=graph):
        result = zgrad.derivatives(f, [a, b], strategy="autodiff", hessian=True)
    assert result.value == 1.5 * -2.0 + 2 * 4.0
    assert result.gradient.tolist() == [-2.0, 1.5 + 4 * -2.0]
    assert result.hessian.tolist() == [[0.0, 1.0], [1.0, 4.0]]


def test_vector_variables_are_refused_with_a_clear_message():
    v = tf.Variable([1.0, 2.0], dtype=tf.float64, name="vec")
    with pytest.raises(ValueError, match=r"scalar Parameters; 'vec:0' has shape \[2\]"):
        zgrad.gradient(lambda: tf.reduce_sum(v**2), [v], strategy="autodiff")


# --- inside a user's tf.function -------------------------------------------------------------------


def test_gradient_and_hessian_inside_a_user_tf_function_are_tensors():
    x, y = zgrad.Parameter("x", 0.5), zgrad.Parameter("y", 3.0)
    f = lambda: tf.exp(x) * y  # noqa: E731
    seen = []

    @tf.function
    def both():
        g = zgrad.gradient(f, [x, y], strategy="autodiff")
        h = zgrad.hessian(f, [x, y], strategy="autodiff")
        seen.append((g, h))
        return g, h

    g, h = both()
    ((g_in, h_in),) = seen
    assert isinstance(g_in, tf.Tensor) and isinstance(h_in, tf.Tensor)
    assert not isinstance(g_in, np.ndarray)
    e = np.exp(0.5)
    assert_close(g.numpy(), [3.0 * e, e], RTOL64)
    assert_close(h.numpy(), [[3.0 * e, e], [e, 0.0]], RTOL64)
    assert np.array_equal(h.numpy(), h.numpy().T)
    x.assign(1.0)  # the user's trace reads the Parameter live, too
    assert_close(both()[0].numpy(), [3.0 * np.exp(1.0), np.exp(1.0)], RTOL64)
    assert len(seen) == 1
