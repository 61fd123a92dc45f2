"""The 'numerical' strategy against closed forms: accuracy, honest errors, budgets, limits, restoring."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad.gradients.numerical import NumericalStrategy

SAMPLE = np.random.default_rng(20240611).normal(0.4, 1.3, size=400)


class Counted:
    """Wrap a loss: count its calls and record the Parameter values it sees."""

    def __init__(self, func, params):
        self.func, self.params, self.seen = func, params, []

    def __call__(self):
        self.seen.append([float(p.numpy()) for p in self.params])
        return self.func()

    @property
    def n(self):
        return len(self.seen)


# --- the test set: (loss on Parameters, closed-form gradient, closed-form Hessian or None) ------------


def gaussian_nll(mu, sigma):
    data = tf.constant(SAMPLE)
    return lambda: tf.reduce_sum(0.5 * ((data - mu) / sigma) ** 2 + tf.math.log(sigma))


def gaussian_nll_exact(x):
    mu, sigma = x
    n, r = SAMPLE.size, SAMPLE - mu
    grad = np.array([-np.sum(r) / sigma**2, n / sigma - np.sum(r**2) / sigma**3])
    off = 2 * np.sum(r) / sigma**3
    hess = np.array([[n / sigma**2, off], [off, -n / sigma**2 + 3 * np.sum(r**2) / sigma**4]])
    return grad, hess


def rosenbrock(*p):
    terms = lambda: [100.0 * (p[i + 1] - p[i] ** 2) ** 2 + (1.0 - p[i]) ** 2 for i in range(len(p) - 1)]  # noqa: E731
    return lambda: tf.add_n(terms())


def rosenbrock_exact(x):
    g, h = np.zeros_like(x), np.zeros((x.size, x.size))
    for i in range(x.size - 1):
        g[i] += -400 * x[i] * (x[i + 1] - x[i] ** 2) - 2 * (1 - x[i])
        g[i + 1] += 200 * (x[i + 1] - x[i] ** 2)
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i + 1, i + 1] += 200
        h[i, i + 1] = h[i + 1, i] = -400 * x[i]
    return g, h


def disparity(x, y):
    return lambda: 1e6 * x**2 + 1e-6 * y**2


def disparity_exact(v):
    return np.array([2e6 * v[0], 2e-6 * v[1]]), np.diag([2e6, 2e-6])


def exponential(x):
    return lambda: tf.exp(x)


def exponential_exact(v):
    return np.exp(v), np.exp(v)[:, None]


A32 = np.array([0.3, -1.2, 2.5], dtype=np.float32)


def float32_squares(*p):
    return lambda: tf.reduce_sum((tf.cast(tf.stack(p), tf.float32) - A32) ** 2)


def float32_exact(x):
    return 2 * (x - A32.astype(np.float64)), 2 * np.eye(x.size)


SMOOTH = {
    "gaussian_nll": (gaussian_nll, gaussian_nll_exact, [[0.4, 1.3], [0.0, 1.0], [1.1, 0.8], [-0.5, 2.2]]),
    "rosenbrock": (
        rosenbrock,
        rosenbrock_exact,
        [
            [-1.2, 1.0, 0.5, 0.8, 1.3],
            [0.3, 0.6, 0.9, 1.2, 1.5],
            [2.0, -1.0, 0.25, -0.5, 0.75],
            [1.1, 1.3, 0.7, 0.4, 2.1],
            [-0.7, 0.2, 1.6, 0.9, -1.1],
            [0.5, -0.4, 0.3, 1.8, 0.6],
        ],
    ),
    "exp": (exponential, exponential_exact, [[20.0], [5.0], [-3.0], [0.5]]),
}
HARD = {
    "disparity": (disparity, disparity_exact, [[1.0, 1.0], [0.3, -2.0], [-0.01, 5.0], [2.0, 0.1]]),
    "float32": (
        float32_squares,
        float32_exact,
        [[1.1, 0.4, -0.3], [0.31, -1.0, 2.5], [5.0, 3.0, 1.0], [0.0, 0.0, 0.0]],
    ),
}


def run_case(table, name, i, strategy, method="value_gradient"):
    build, exact, points = table[name]
    x = np.array(points[i], dtype=np.float64)
    params = [zgrad.Parameter(f"p{k}", v) for k, v in enumerate(x)]
    loss = Counted(build(*params), params)
    result = getattr(strategy, method)(loss, params)
    assert result.n_evals == loss.n
    assert [float(p.numpy()) for p in params] == list(x)
    return result, x, *exact(x)


def component_scale(exact):
    # relative accuracy per component, with the gradient's norm as a floor where a component is ~0
    return np.maximum(np.abs(exact), 1e-3 * np.linalg.norm(exact))


# --- accuracy, budgets --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SMOOTH))
def test_accurate_matches_closed_form_on_smooth_objectives(name):
    for i in range(len(SMOOTH[name][2])):
        r, x, grad, _ = run_case(SMOOTH, name, i, NumericalStrategy())
        assert r.n_evals <= 30 * x.size + 1
        assert r.strategy == "numerical" and r.params == tuple(f"p{k}" for k in range(x.size))
        assert r.gradient.dtype == np.float64 and r.error.shape == (x.size,)
        np.testing.assert_array_less(np.abs(r.gradient - grad) / component_scale(grad), 1e-7)
        assert set(r.status) == {"ok"}


@pytest.mark.parametrize("name", list(HARD))
def test_accurate_on_hard_objectives_is_accurate_or_says_so(name):
    for i in range(len(HARD[name][2])):
        r, x, grad, _ = run_case(HARD, name, i, NumericalStrategy())
        true_error = np.abs(r.gradient - grad)
        accurate = true_error <= 1e-7 * component_scale(grad)
        covered = true_error <= r.error
        assert np.all(accurate | covered), (name, i, true_error, r.error)


def test_error_estimates_are_honest_across_the_test_set():
    strategy = NumericalStrategy()
    covered, total = 0, 0
    for table in (SMOOTH, HARD):
        for name, (_, _, points) in table.items():
            for i in range(len(points)):
                r, _, grad, _ = run_case(table, name, i, strategy)
                covered += int(np.sum(np.abs(r.gradient - grad) <= r.error))
                total += grad.size
    print(f"honest error estimates: {covered} of {total} components ({covered / total:.1%})")
    assert total >= 60
    assert covered == total


@pytest.mark.parametrize("name", list(SMOOTH))
def test_fast_budget_costs_2n_plus_1_and_is_accurate_to_1e_5(name):
    for i in range(len(SMOOTH[name][2])):
        r, x, grad, _ = run_case(SMOOTH, name, i, NumericalStrategy("fast"))
        assert r.n_evals == 2 * x.size + 1
        np.testing.assert_array_less(np.abs(r.gradient - grad) / component_scale(grad), 1e-5)
        assert np.all(np.abs(r.gradient - grad) <= r.error)


def test_float32_parameters_are_restored_exactly_and_errors_cover():
    x = zgrad.Parameter("x", 0.7, dtype=tf.float32)
    before = x.numpy()
    for strategy in (NumericalStrategy(), NumericalStrategy("fast")):
        r = strategy.value_gradient(lambda: (x - 0.2) ** 2, [x])
        exact = 2 * (float(before) - 0.2)
        assert abs(r.gradient[0] - exact) <= r.error[0]
        assert x.numpy() == before


def test_plain_tf_variables_work():
    v = tf.Variable(3.0, dtype=tf.float64)
    r = NumericalStrategy().value_gradient(lambda: (v - 1.0) ** 3, [v])
    assert abs(r.gradient[0] - 12.0) <= 1e-9
    assert float(r.value) == 8.0 and v.numpy() == 3.0


# --- Hessians --------------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", ["accurate", "fast"])
def test_hessian_is_symmetric_and_matches_closed_form(budget):
    for name, i in [("gaussian_nll", 0), ("gaussian_nll", 2), ("rosenbrock", 0), ("rosenbrock", 3)]:
        r, x, grad, hess = run_case(SMOOTH, name, i, NumericalStrategy(budget), method="hessian")
        assert np.array_equal(r.hessian, r.hessian.T)
        assert np.array_equal(r.hessian_error, r.hessian_error.T)
        scale = np.maximum(np.abs(hess), 1e-3 * np.max(np.abs(hess)))
        np.testing.assert_array_less(np.abs(r.hessian - hess) / scale, 1e-6)
        tolerance = 1e-7 if budget == "accurate" else 1e-5
        np.testing.assert_array_less(np.abs(r.gradient - grad) / component_scale(grad), tolerance)


# --- limits and restoring ------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", ["accurate", "fast"])
@pytest.mark.parametrize("method", ["value_gradient", "hessian"])
def test_limits_are_never_crossed_and_gradient_is_one_sided(budget, method):
    a = zgrad.Parameter("a", 0.0, lower=0.0, upper=2.0)
    b = zgrad.Parameter("b", 1.0 - 1e-7, lower=-1.0, upper=1.0)
    c = zgrad.Parameter("c", 0.5, lower=0.0, upper=1.0)
    params = [a, b, c]
    loss = Counted(lambda: tf.exp(a) * b + b**3 * c + tf.sin(c), params)
    r = getattr(NumericalStrategy(budget), method)(loss, params)
    seen = np.array(loss.seen)
    assert np.all(seen >= [0.0, -1.0, 0.0]) and np.all(seen <= [2.0, 1.0, 1.0])
    x = np.array([0.0, 1.0 - 1e-7, 0.5])
    exact = np.array([np.exp(x[0]) * x[1], np.exp(x[0]) + 3 * x[1] ** 2 * x[2], x[1] ** 3 + np.cos(x[2])])
    tolerance = 1e-7 if budget == "accurate" else 1e-5
    np.testing.assert_array_less(np.abs(r.gradient - exact) / np.abs(exact), tolerance)
    # a sits on its limit: one-sided; b is 1e-7 from one: one-sided (accurate, where both rules agree)
    # or central over half the room (fast), which the status names
    near = "one-sided" if budget == "accurate" else "near-limit"
    assert r.status == ("one-sided", near, "ok")
    assert [p.numpy() for p in params] == list(x)


@pytest.mark.parametrize("budget", ["accurate", "fast"])
@pytest.mark.parametrize("method", ["value_gradient", "hessian"])
def test_parameters_are_restored_when_the_loss_raises(budget, method):
    x = zgrad.Parameter("x", 0.1234567890123, lower=0.0, upper=1.0)
    y = zgrad.Parameter("y", -2.5)
    before = [x.numpy(), y.numpy()]
    calls = []

    def loss():
        calls.append(1)
        if len(calls) == 4:
            raise ArithmeticError("boom")
        return x**2 + y

    with pytest.raises(ArithmeticError, match="boom"):
        getattr(NumericalStrategy(budget), method)(loss, [x, y])
    assert [x.numpy(), y.numpy()] == before


# --- errors ------------------------------------------------------------------------------------------


def test_inside_a_trace_raises():
    x = zgrad.Parameter("x", 1.0)
    strategy = NumericalStrategy()

    @tf.function
    def traced():
        return strategy.value_gradient(lambda: x**2, [x])

    with pytest.raises(RuntimeError, match="evaluates the loss from Python; call it eagerly"):
        traced()
    assert float(x.numpy()) == 1.0


def test_bad_budget_raises():
    for budget in ["precise", "", None, 1, "Fast"]:
        match = r"budget=.* is not allowed; choose one of \['accurate', 'fast'\]"
        with pytest.raises(ValueError, match=match):
            NumericalStrategy(budget)
        with pytest.raises(ValueError, match="accurate"):
            NumericalStrategy().with_budget(budget)


def test_with_budget_returns_a_new_strategy():
    accurate = NumericalStrategy()
    fast = accurate.with_budget("fast")
    assert (accurate.budget, fast.budget) == ("accurate", "fast") and fast is not accurate
    assert (fast.name, fast.is_autograd, fast.provides_gradient) == ("numerical", False, True)


@pytest.mark.parametrize(
    ("params", "match"),
    [([], "non-empty sequence"), (None, "non-empty sequence"), ([1.0], r"params\[0\] must be a tf.Variable")],
)
def test_bad_params_raise_type_error(params, match):
    with pytest.raises(TypeError, match=match):
        NumericalStrategy().value_gradient(lambda: 1.0, params)


def test_a_single_variable_is_not_a_sequence():
    x = zgrad.Parameter("x", 1.0)
    with pytest.raises(TypeError, match=r"non-empty sequence .* got <zgrad.Parameter 'x'"):
        NumericalStrategy().value_gradient(lambda: x**2, x)


def test_fast_budget_uses_a_losss_batched_evaluation_with_identical_numbers():
    """A loss offering ``zgrad_values`` is evaluated at all 2n points in one call, same numbers."""
    rng = np.random.default_rng(11)
    data = rng.normal(0.3, 1.1, 4000)
    data = data[np.abs(data) < 5]
    obs = zgrad.Space("x", limits=(-5.0, 5.0))
    mu = zgrad.Parameter("mu", 0.2, lower=-5.0, upper=5.0)
    sigma = zgrad.Parameter("sigma", 1.0, lower=1.0, upper=5.0)  # at its limit: one-sided points
    loss = zgrad.losses.UnbinnedNLL(zgrad.models.Gauss(obs, mu, sigma), data)
    fast = zgrad.gradients.get("numerical").with_budget("fast")
    batches = []
    real = type(loss).zgrad_values.__get__(loss)

    class Spy:
        """The loss, with its batched entry point counted."""

        def __call__(self):
            return loss()

        def zgrad_values(self, params, identities, points):
            batches.append(np.array(points))
            return real(params, identities, points)

    before = [mu.numpy(), sigma.numpy()]
    batched = fast.value_gradient(Spy(), [mu, sigma])
    sequential = fast.value_gradient(lambda: loss(), [mu, sigma])
    assert [mu.numpy(), sigma.numpy()] == before  # restored exactly
    assert len(batches) == 1 and batches[0].shape == (4, 2)  # all 2n points in one call
    assert np.all(batches[0][:, 1] >= 1.0)  # never outside the limits
    np.testing.assert_array_equal(batched.gradient, sequential.gradient)
    assert batched.n_evals == sequential.n_evals == 5
    assert batched.status == sequential.status


# --- singular functions at limits, float32 Hessians, noise ------------------------------------------


@pytest.mark.parametrize(
    ("value", "lower", "upper", "build", "exact"),
    [
        (1 - 1e-6, 0.0, 1.0, lambda x: tf.math.log(1 - x), lambda v: -1 / (1 - v)),
        (1 - 5e-9, 0.0, 1.0, lambda x: tf.math.log(1 - x), lambda v: -1 / (1 - v)),
        (1e-6, 0.0, 1.0, tf.math.log, lambda v: 1 / v),
        (2e-9, 0.0, 1.0, tf.math.sqrt, lambda v: 0.5 / np.sqrt(v)),
    ],
)
def test_singular_losses_next_to_a_limit(value, lower, upper, build, exact):
    x = zgrad.Parameter("x", value, lower=lower, upper=upper)
    r = zgrad.derivatives(lambda: build(x), [x], strategy="numerical")
    truth = exact(value)
    assert abs(r.gradient[0] - truth) <= r.error[0] <= 1e-3 * abs(truth)
    # at the lower limit the default step (1 % of the value) already fits: 'ok' there
    assert r.status[0] in ("ok", "near-limit", "rounding-limited")
    assert float(x.numpy()) == value


def test_float32_rosenbrock_hessian_to_2e_3_on_entries_above_1():
    worst = 0.0
    for i in range(len(SMOOTH["rosenbrock"][2])):
        values = SMOOTH["rosenbrock"][2][i][:3]
        params = [zgrad.Parameter(f"p{k}", v, dtype=tf.float32) for k, v in enumerate(values)]
        r = NumericalStrategy().hessian(rosenbrock(*params), params)
        x = np.array([p.numpy() for p in params], dtype=np.float64)
        _, exact = rosenbrock_exact(x)
        large = np.abs(exact) > 1.0
        worst = max(worst, float(np.max(np.abs(r.hessian - exact)[large] / np.abs(exact)[large])))
        assert np.all(np.abs(r.hessian - exact) <= r.hessian_error)
    print(f"float32 Rosenbrock Hessian: worst relative error {worst:.2e} on entries above 1")
    assert worst <= 2e-3


def test_a_noisy_loss_reports_an_error_that_covers_its_true_error():
    x = zgrad.Parameter("x", 0.3)
    rng = np.random.default_rng(5)

    def loss():  # a Monte Carlo-like loss: noise of 1e-6 on a parabola
        return (x - 1.0) ** 2 + 1e-6 * rng.uniform(-1.0, 1.0)

    r = NumericalStrategy().value_gradient(loss, [x])
    assert abs(r.gradient[0] - 2 * (0.3 - 1.0)) <= r.error[0]
    assert r.error[0] > 1e-6  # far above float64 rounding: the noise was measured
