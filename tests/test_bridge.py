"""z.py_function: gradients and Hessians through NumPy/SciPy code, their cost, and the bridge's limits.

Every derivative is compared with a closed form (``erf' = 2/sqrt(pi) exp(-x^2)``,
``gammaln' = digamma``, ``gammaln'' = polygamma(1, .)``, a spline's own derivative
methods) and every Hessian also with numdifftools on the plain NumPy function. The
cost is asserted by counting calls of the Python body: a ``tf.numpy_function`` body
runs once per execution, eagerly and in a graph alike (tracing does not run it).
"""

from __future__ import annotations

import numdifftools as nd
import numpy as np
import pytest
import scipy.interpolate
import scipy.special as sc
import tensorflow as tf

import zgrad
from zgrad import z
from zgrad.errors import GradientError, ZgradError, ZgradWarning
from zgrad.z import _bridge
from zgrad.z._bridge import BridgeCostWarning

_KNOTS = np.linspace(-2.0, 3.0, 11)
_SPLINE = scipy.interpolate.CubicSpline(_KNOTS, np.sin(_KNOTS) + 0.3 * _KNOTS**2)
_TWO_OVER_SQRT_PI = 2.0 / np.sqrt(np.pi)


def _phi(x):
    return np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


def _expit_d1(x):
    s = sc.expit(x)
    return s * (1.0 - s)


# name: (f, f', f'', points). The points keep f' and f'' away from zero and of one sign each, so
# relative tolerances mean something and the sums in the scalar-input tests do not cancel
# (digamma vanishes near 1.46; the spline points stay 0.2 away from its knots).
CASES = {
    "erf": (
        sc.erf,
        lambda x: _TWO_OVER_SQRT_PI * np.exp(-x * x),
        lambda x: -2.0 * x * _TWO_OVER_SQRT_PI * np.exp(-x * x),
        np.array([0.35, 0.6, 0.9, 1.3]),
    ),
    "gammaln": (sc.gammaln, sc.digamma, lambda x: sc.polygamma(1, x), np.array([2.3, 2.9, 3.6, 4.4])),
    "ndtr": (sc.ndtr, _phi, lambda x: -x * _phi(x), np.array([0.4, 0.8, 1.2, 1.7])),
    "expit": (
        sc.expit,
        _expit_d1,
        lambda x: _expit_d1(x) * (1.0 - 2.0 * sc.expit(x)),
        np.array([0.5, 1.1, 1.9, 2.8]),
    ),
    "spline": (_SPLINE, lambda x: _SPLINE(x, 1), lambda x: _SPLINE(x, 2), np.array([-1.2, -0.7, -0.2, 0.3])),
}
MU = 0.1  # the scalar input's value: data = points + MU, so that data - MU are the points above

FIRST_ORDER_RTOL = 1e-8
SECOND_ORDER_RTOL = 1e-6


@pytest.fixture(params=[False, True], ids=["eager", "graph"])
def graph(request):
    with zgrad.run.set_mode(graph=request.param):
        yield request.param


def _nd_hessian(fun, x):
    # numdifftools' Richardson extrapolation from steps of at most 0.1 (its default 2.0 would cross
    # the poles of gammaln and the knots of the spline): accurate to about 1e-10 on these functions
    return nd.Hessian(fun, step=nd.MaxStepGenerator(base_step=0.1))(np.atleast_1d(np.asarray(x, float)))


class _Counted:
    """A NumPy function that counts its calls."""

    def __init__(self, func):
        self.func = func
        self.calls = 0
        self.__name__ = getattr(func, "__name__", "counted")

    def __call__(self, *args):
        self.calls += 1
        return self.func(*args)


def _shifted_loss(f, data, mu, *, elementwise=True):
    body = _Counted(lambda a, m: f(a - m))

    def loss():
        return tf.reduce_sum(z.py_function(body, [data, mu], tf.float64, elementwise=elementwise))

    return loss, body


# --- values of first and second derivatives -------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_gradient_wrt_scalar_parameter_matches_closed_form(case, graph):
    f, d1, _, points = CASES[case]
    mu = zgrad.Parameter("mu", MU)
    loss, _ = _shifted_loss(f, points + MU, mu)
    value, grad = zgrad.value_gradient(loss, [mu], strategy="autodiff")
    np.testing.assert_allclose(value, np.sum(f(points)), rtol=1e-14)
    np.testing.assert_allclose(grad, [-np.sum(d1(points))], rtol=FIRST_ORDER_RTOL)


@pytest.mark.parametrize("case", list(CASES))
def test_hessian_wrt_scalar_parameter_matches_closed_form_and_numdifftools(case, graph):
    f, _, d2, points = CASES[case]
    mu = zgrad.Parameter("mu", MU)
    loss, _ = _shifted_loss(f, points + MU, mu)
    hess = zgrad.hessian(loss, [mu], strategy="autodiff")
    reference = _nd_hessian(lambda m: np.sum(f(points + MU - m[0])), MU)
    np.testing.assert_allclose(reference, [[np.sum(d2(points))]], rtol=1e-9)  # the reference is sound
    np.testing.assert_allclose(hess, reference, rtol=SECOND_ORDER_RTOL)


def _elementwise_derivatives(f):
    def first_and_second(x):
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = tf.reduce_sum(z.py_function(f, [x], tf.float64, elementwise=True))
            grad = inner.gradient(y, x)
        # row by row: vectorised jacobians cannot pass through host callbacks
        return grad, outer.jacobian(grad, x, experimental_use_pfor=False)

    return z.function(first_and_second, wraps="hessian")


@pytest.mark.parametrize("case", list(CASES))
def test_gradient_and_hessian_wrt_elementwise_array(case, graph):
    f, d1, d2, points = CASES[case]
    grad, hess = zgrad.run(_elementwise_derivatives(f)(tf.constant(points)))
    np.testing.assert_allclose(grad, d1(points), rtol=FIRST_ORDER_RTOL)
    reference = _nd_hessian(lambda v: np.sum(f(v)), points)
    np.testing.assert_allclose(np.diag(reference), d2(points), rtol=1e-9)
    np.testing.assert_allclose(np.diag(hess), np.diag(reference), rtol=SECOND_ORDER_RTOL)
    # elementwise: the Hessian is diagonal, exactly so through the bridge
    off_diagonal = ~np.eye(points.size, dtype=bool)
    assert np.all(hess[off_diagonal] == 0.0)
    assert np.max(np.abs(reference[off_diagonal])) < 1e-9 * np.max(np.abs(reference))


def test_hessian_of_two_scalar_inputs_with_cross_terms(graph):
    mu = zgrad.Parameter("mu", 0.2)
    sigma = zgrad.Parameter("sigma", 1.3, lower=0.1)
    data = np.array([-1.1, -0.4, 0.5, 1.6, 2.2])

    def loss():
        pulls = z.py_function(
            lambda x, m, s: sc.ndtr((x - m) / s), [data, mu, sigma], tf.float64, elementwise=True
        )
        return -tf.reduce_sum(tf.math.log(pulls))

    def numpy_loss(v):
        return -np.sum(np.log(sc.ndtr((data - v[0]) / v[1])))

    grad = zgrad.gradient(loss, [mu, sigma], strategy="autodiff")
    u = (data - 0.2) / 1.3
    mills = _phi(u) / sc.ndtr(u)  # d(-log ndtr(u))/du = -mills
    np.testing.assert_allclose(grad, [np.sum(mills) / 1.3, np.sum(mills * u) / 1.3], rtol=FIRST_ORDER_RTOL)
    hess = zgrad.hessian(loss, [mu, sigma], strategy="autodiff")
    reference = _nd_hessian(numpy_loss, [0.2, 1.3])
    assert hess[0, 1] == hess[1, 0]
    np.testing.assert_allclose(hess, reference, rtol=SECOND_ORDER_RTOL)


def test_full_jacobian_of_a_non_elementwise_function(graph):
    v = np.array([0.3, -0.8, 1.4, 0.1, 2.0, -0.5])
    weights = np.array([1.0, -2.0, 0.5, 3.0, -1.5, 0.7])

    @z.function(wraps="gradient")
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = z.py_function(lambda t: np.cumsum(np.sin(t)), [x], tf.float64)
            total = tf.reduce_sum(tf.constant(weights) * y)
        return tape.gradient(total, x)

    # y_i = sum_{k <= i} sin(v_k), so d(sum_i w_i y_i)/dv_k = cos(v_k) * sum_{i >= k} w_i
    expected = np.cos(v) * np.cumsum(weights[::-1])[::-1]
    np.testing.assert_allclose(zgrad.run(gradient(tf.constant(v))), expected, rtol=FIRST_ORDER_RTOL)


def test_mixed_second_derivative_with_tapes_watching_different_inputs(graph):
    # the inner tape watches only mu, the outer only x: each backward pass must still reach its input
    f, _, d2, points = CASES["erf"]

    @z.function(wraps="hessian")
    def mixed(x, mu):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape(watch_accessed_variables=False) as inner:
                inner.watch(mu)
                y = tf.reduce_sum(z.py_function(lambda a, m: f(a - m), [x, mu], tf.float64, elementwise=True))
            dy_dmu = inner.gradient(y, mu)
        return outer.gradient(dy_dmu, x)

    result = zgrad.run(mixed(tf.constant(points + MU), zgrad.Parameter("mu", MU)))
    np.testing.assert_allclose(result, -d2(points), rtol=SECOND_ORDER_RTOL)


def test_gradient_of_a_traced_bridge_taken_outside_the_trace():
    f, d1, _, points = CASES["ndtr"]
    mu = zgrad.Parameter("mu", MU)

    @z.function
    def total(x, m):
        return tf.reduce_sum(z.py_function(lambda a, b: f(a - b), [x, m], tf.float64, elementwise=True))

    x = tf.constant(points + MU)
    with zgrad.run.set_mode(graph=True):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = total(x, mu)
        grad_x, grad_mu = tape.gradient(y, [x, mu])
    np.testing.assert_allclose(grad_x.numpy(), d1(points), rtol=FIRST_ORDER_RTOL)
    np.testing.assert_allclose(grad_mu.numpy(), -np.sum(d1(points)), rtol=FIRST_ORDER_RTOL)


# --- evaluation counts ------------------------------------------------------------------------------


@pytest.mark.parametrize("elementwise", [True, False], ids=["elementwise", "not-elementwise"])
def test_gradient_wrt_scalars_costs_two_evaluations_each(graph, elementwise):
    mu = zgrad.Parameter("mu", 0.2)
    sigma = zgrad.Parameter("sigma", 1.3, lower=0.1)
    data = np.linspace(-2.0, 2.0, 50)  # as a full Jacobian, the data would cost 100 evaluations
    body = _Counted(lambda x, m, s: sc.ndtr((x - m) / s))

    def loss():
        return tf.reduce_sum(z.py_function(body, [data, mu, sigma], tf.float64, elementwise=elementwise))

    for params in ([mu], [mu, sigma], [sigma]):
        for _ in range(2):  # the first call in graph mode traces; tracing runs no NumPy body
            body.calls = 0
            zgrad.gradient(loss, params, strategy="autodiff")
            assert body.calls == 1 + 2 * len(params)
    body.calls = 0
    zgrad.run(loss())
    assert body.calls == 1


def test_hessian_wrt_scalar_costs_forward_plus_two_plus_four(graph):
    mu = zgrad.Parameter("mu", MU)
    loss, body = _shifted_loss(sc.erf, CASES["erf"][3] + MU, mu)
    zgrad.hessian(loss, [mu], strategy="autodiff")
    # forward, 2 for the derivative array, 2 x 2 for the derivative of that derivative
    assert body.calls == 1 + 2 + 4


def test_gradient_wrt_elementwise_array_costs_two_evaluations_in_total(graph):
    body = _Counted(sc.erf)

    @z.function(wraps="gradient")
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(z.py_function(body, [x], tf.float64, elementwise=True))
        # the value is returned too: a graph prunes a forward pass that nothing reads
        return y, tape.gradient(y, x)

    x = np.linspace(-1.5, 1.5, 5000)  # beyond LARGE_JACOBIAN, yet no warning: elementwise is cheap
    assert x.size > _bridge.LARGE_JACOBIAN
    _, grad = zgrad.run(gradient(tf.constant(x)))
    assert body.calls == 1 + 2
    np.testing.assert_allclose(grad, _TWO_OVER_SQRT_PI * np.exp(-x * x), rtol=FIRST_ORDER_RTOL)


def _cumsum_gradient(body):
    @z.function(wraps="gradient")
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(z.py_function(body, [x], tf.float64, name="cumulative"))
        return y, tape.gradient(y, x)

    return gradient


def test_full_jacobian_costs_two_evaluations_per_element(graph):
    body = _Counted(lambda t: np.cumsum(np.sin(t)))
    x = np.linspace(0.1, 1.2, 7)
    _, grad = zgrad.run(_cumsum_gradient(body)(tf.constant(x)))
    assert body.calls == 1 + 2 * x.size
    np.testing.assert_allclose(grad, np.cos(x) * np.arange(x.size, 0, -1), rtol=FIRST_ORDER_RTOL)


def test_large_full_jacobian_warns_with_its_cost(graph, monkeypatch):
    assert issubclass(BridgeCostWarning, ZgradWarning)
    monkeypatch.setattr(_bridge, "LARGE_JACOBIAN", 5)
    body = _Counted(lambda t: np.cumsum(np.sin(t)))
    x = np.linspace(0.1, 1.2, 6)
    with pytest.warns(BridgeCostWarning, match=r"'cumulative'.*6 elements.*12 evaluations.*elementwise=True"):
        _, grad = zgrad.run(_cumsum_gradient(body)(tf.constant(x)))
    assert body.calls == 1 + 12
    np.testing.assert_allclose(grad, np.cos(x) * np.arange(x.size, 0, -1), rtol=FIRST_ORDER_RTOL)


def test_full_jacobian_at_the_threshold_does_not_warn(graph, monkeypatch):
    monkeypatch.setattr(_bridge, "LARGE_JACOBIAN", 6)
    body = _Counted(lambda t: np.cumsum(np.sin(t)))
    zgrad.run(_cumsum_gradient(body)(tf.constant(np.linspace(0.1, 1.2, 6))))  # warnings are errors here
    assert body.calls == 1 + 12


# --- user Jacobians ---------------------------------------------------------------------------------


def test_user_jacobian_for_several_inputs_is_used_instead_of_differences(graph):
    data = np.array([-1.1, -0.4, 0.5, 1.6])
    mu = zgrad.Parameter("mu", 0.2)
    sigma = zgrad.Parameter("sigma", 1.3, lower=0.1)
    body = _Counted(lambda x, m, s: sc.ndtr((x - m) / s))

    def jacobian(x, m, s):
        jacobian.calls += 1
        u = (x - m) / s
        return _phi(u) / s, -_phi(u) / s, -_phi(u) * u / s  # one per input, each of the output's shape

    jacobian.calls = 0

    def loss():
        return tf.reduce_sum(
            z.py_function(body, [data, mu, sigma], tf.float64, gradient=jacobian, elementwise=True)
        )

    grad = zgrad.gradient(loss, [mu, sigma], strategy="autodiff")
    u = (data - 0.2) / 1.3
    # the user's derivative is exact: agreement to rounding, not to finite-difference accuracy
    np.testing.assert_allclose(grad, [-np.sum(_phi(u)) / 1.3, -np.sum(_phi(u) * u) / 1.3], rtol=1e-13)
    assert body.calls == 1  # the forward pass only: no differences of the body
    assert jacobian.calls == 2  # one derivative array per Parameter asked for

    # second order: the user's Jacobian is differentiated (numerically); the body still only runs forward
    body.calls = jacobian.calls = 0
    hess = zgrad.hessian(loss, [mu, sigma], strategy="autodiff")
    assert body.calls == 1
    assert jacobian.calls > 0
    reference = _nd_hessian(lambda v: np.sum(sc.ndtr((data - v[0]) / v[1])), [0.2, 1.3])
    np.testing.assert_allclose(hess, reference, rtol=SECOND_ORDER_RTOL)


def test_user_full_jacobian_of_one_input(graph):
    body = _Counted(lambda t: np.cumsum(np.sin(t)))

    def jacobian(t):
        jacobian.calls += 1
        return np.tril(np.ones((t.size, t.size))) * np.cos(t)[None, :]  # d y_i / d t_k

    jacobian.calls = 0

    @z.function(wraps="gradient")
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(z.py_function(body, [x], tf.float64, gradient=jacobian))
        return y, tape.gradient(y, x)

    x = np.linspace(0.1, 1.2, 7)
    _, grad = zgrad.run(gradient(tf.constant(x)))
    np.testing.assert_allclose(grad, np.cos(x) * np.arange(x.size, 0, -1), rtol=1e-14)
    assert (body.calls, jacobian.calls) == (1, 1)


# --- not differentiable -----------------------------------------------------------------------------


def _opaque(x, m):
    return np.floor(x - m)


def test_gradient_none_evaluates_but_refuses_to_differentiate_eagerly():
    mu = zgrad.Parameter("mu", 0.25)
    data = np.array([0.5, 1.5, 2.75])
    y = z.py_function(_opaque, [data, mu], tf.float64, gradient=None)
    np.testing.assert_array_equal(y.numpy(), [0.0, 1.0, 2.0])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(z.py_function(_opaque, [data, mu], tf.float64, gradient=None))
    with pytest.raises(GradientError, match=r"'_opaque'.*gradient=None.*gradient='numerical'"):
        tape.gradient(y, mu)


def test_gradient_none_refuses_in_a_trace():
    mu = zgrad.Parameter("mu", 0.25)
    data = np.array([0.5, 1.5, 2.75])

    def loss():
        return tf.reduce_sum(z.py_function(_opaque, [data, mu], tf.float64, gradient=None, name="binning"))

    with zgrad.run.set_mode(graph=True):
        assert zgrad.run(z.function(loss, wraps="loss")()) == 3.0
        with pytest.raises(
            GradientError, match=r"'binning'.*cannot be differentiated.*callable returning its Jacobian"
        ):
            zgrad.gradient(loss, [mu], strategy="autodiff")


# --- Parameters must be explicit inputs -------------------------------------------------------------


def test_parameter_in_the_closure_is_refused_naming_it():
    mu = zgrad.Parameter("mu_hidden", 0.3)
    data = np.array([0.1, 0.2])

    def body(x):
        return x - mu.numpy()

    with pytest.raises(ZgradError, match=r"'body' reads .*mu_hidden.*Pass them through inp"):
        z.py_function(body, [data], tf.float64)
    with pytest.raises(ZgradError, match="mu_hidden"):
        z.py_function(lambda x, m=mu: x - m.numpy(), [data], tf.float64)


def test_parameter_in_the_globals_is_refused():
    namespace = {"shift": zgrad.Parameter("global_shift", 0.3)}
    exec("def body(x):\n    return x - shift.numpy()\n", namespace)
    with pytest.raises(ZgradError, match="global_shift"):
        z.py_function(namespace["body"], [np.array([0.1])], tf.float64)


def test_parameter_passed_through_inp_is_differentiated(graph):
    mu = zgrad.Parameter("mu", 0.3)
    data = np.array([0.1, 0.4, 0.9])

    def loss():
        return tf.reduce_sum(
            z.py_function(lambda x, m: (x - m) ** 3, [data, mu], tf.float64, elementwise=True)
        )

    np.testing.assert_allclose(
        zgrad.gradient(loss, [mu]), [-3.0 * np.sum((data - 0.3) ** 2)], rtol=FIRST_ORDER_RTOL
    )


# --- limits and bad arguments -----------------------------------------------------------------------


def test_xla_compiled_trace_with_a_bridge_raises_at_trace_time():
    body = _Counted(sc.erf)

    @z.function(jit_compile=True)
    def compiled(x):
        return tf.reduce_sum(z.py_function(body, [x], tf.float64, elementwise=True))

    with zgrad.run.set_mode(graph=True):
        for _ in range(2):  # a failed trace is not cached: the second call fails the same way
            with pytest.raises(ZgradError, match=r"'erf'.*XLA.*jit_compile=True"):
                compiled(tf.constant([0.1, 0.2]))
    assert body.calls == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"func": 3.0}, TypeError, r"func must be callable; got 3\.0"),
        ({"gradient": "bogus"}, ValueError, r"gradient='bogus' is not allowed; allowed: 'numerical'"),
        ({"gradient": True}, ValueError, "gradient=True is not allowed"),
        ({"elementwise": "yes"}, TypeError, "elementwise must be True or False; got 'yes'"),
        ({"name": 7}, TypeError, "name must be a str; got 7"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    arguments = {"func": sc.erf, "inp": [np.array([0.1])], "Tout": tf.float64, **kwargs}
    with pytest.raises(error, match=match):
        z.py_function(arguments.pop("func"), arguments.pop("inp"), arguments.pop("Tout"), **arguments)
