"""z.function: decorator forms, argument validation, and exact trace counts under every policy.

A counter appended to in the Python body only moves while the body runs as Python: once per
trace in graph mode, once per call in eager mode. Every count below is asserted exactly.
"""

from __future__ import annotations

import collections
import functools

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad import z

Point = collections.namedtuple("Point", ["x", "y"])


def _counted(kind: str = "tensor"):
    """A traced ``sum(x) * scale`` whose Python body appends to the returned list."""
    calls: list[int] = []

    @z.function(wraps=kind)
    def func(x, scale=1.0):
        calls.append(1)
        return tf.reduce_sum(x) * scale

    return func, calls


# --- decorator forms and validation -----------------------------------------------------------


def test_bare_decorator_and_metadata():
    @z.function
    def square(x):
        """Square of x."""
        return x * x

    assert isinstance(square, z.GraphFunction)
    assert square.kind == "tensor"
    assert square.__name__ == "square"
    assert square.__doc__ == "Square of x."
    assert square.__wrapped__(3.0) == 9.0  # the undecorated function
    assert float(square(np.float64(3.0))) == 9.0


def test_decorator_with_options_and_metadata():
    def nll(x):
        """Negative log-likelihood."""
        return -tf.reduce_sum(tf.math.log(x))

    wrapped = z.function(wraps="loss")(nll)
    assert wrapped.kind == "loss"
    assert wrapped.__name__ == "nll"
    assert wrapped.__qualname__ == nll.__qualname__
    assert wrapped.__doc__ == "Negative log-likelihood."
    assert wrapped.__wrapped__ is nll
    np.testing.assert_allclose(float(wrapped(np.array([1.0, np.e]))), -1.0, rtol=1e-14)
    assert "nll" in repr(wrapped) and "'loss'" in repr(wrapped)


def test_decorator_forms_on_methods():
    class Model:
        def __init__(self, factor):
            self.factor = factor

        @z.function
        def plain(self, x):
            """Plain method."""
            return x * self.factor

        @z.function(wraps="model")
        def pdf(self, x):
            return x + self.factor

    m = Model(3.0)
    np.testing.assert_array_equal(m.plain(np.array([1.0, 2.0])), [3.0, 6.0])
    np.testing.assert_array_equal(m.pdf(np.array([1.0, 2.0])), [4.0, 5.0])
    assert Model.plain.__name__ == "plain"
    assert Model.plain.__doc__ == "Plain method."
    assert Model.pdf.kind == "model"
    assert m.plain.__wrapped__ is Model.plain.__wrapped__
    # called through the class with the instance given explicitly
    np.testing.assert_array_equal(Model.plain(m, np.array([2.0])), [6.0])


@pytest.mark.parametrize("wraps", [None, "", 3, b"loss", ["loss"]])
def test_bad_wraps_raises_type_error(wraps):
    with pytest.raises(TypeError, match="wraps must be a non-empty str"):
        z.function(wraps=wraps)
    with pytest.raises(TypeError, match="wraps must be a non-empty str"):
        z.function(lambda x: x, wraps=wraps)


@pytest.mark.parametrize("flag", [None, 1, 0, "yes", 1.0])
@pytest.mark.parametrize("option", ["jit_compile", "autograph"])
def test_bad_flag_types_raise_type_error(option, flag):
    with pytest.raises(TypeError, match=f"{option} must be True or False; got {flag!r}"):
        z.function(lambda x: x, **{option: flag})
    with pytest.raises(TypeError, match=f"{option} must be True or False"):
        z.function(**{option: flag})


@pytest.mark.parametrize("not_callable", [3, "f", [lambda: 1], object()])
def test_non_callable_raises_type_error(not_callable):
    with pytest.raises(TypeError, match="z.function expects a callable"):
        z.function(not_callable)
    with pytest.raises(TypeError, match="z.function expects a callable"):
        z.function(wraps="loss")(not_callable)


def test_jit_compile_gives_same_result():
    @z.function(jit_compile=True)
    def poly(x):
        return 3.0 * x**2 + 2.0 * x + 1.0

    x = np.linspace(-2.0, 2.0, 7)
    np.testing.assert_allclose(poly(x).numpy(), 3 * x**2 + 2 * x + 1, rtol=1e-14)


# --- trace counts: shapes, dtypes, Python values ----------------------------------------------


def test_same_dtype_and_shape_traces_once():
    func, calls = _counted()
    for values in ([1.0, 2.0], [3.0, 4.0], [-1.0, 0.5]):
        assert float(func(np.array(values))) == sum(values)
    assert len(calls) == 1
    # a tensor of the same dtype and shape shares the NumPy array's trace
    assert float(func(tf.constant([5.0, 6.0], tf.float64))) == 11.0
    assert len(calls) == 1


def test_new_shape_and_new_dtype_each_trace_once():
    func, calls = _counted()
    func(np.ones(2))
    func(np.ones(3))  # new shape
    assert len(calls) == 2
    func(np.ones(3, dtype=np.float32))  # new dtype
    assert len(calls) == 3
    func(np.ones(2))
    func(np.ones(3))
    func(np.ones(3, dtype=np.float32))
    assert len(calls) == 3


def test_python_float_traces_per_value_and_is_frozen():
    func, calls = _counted()
    x = np.array([1.0, 2.0])
    assert float(func(x, 1.5)) == 4.5
    assert len(calls) == 1
    assert float(func(x, 2.5)) == 7.5
    assert len(calls) == 2
    assert float(func(x, 3.5)) == 10.5
    assert len(calls) == 3
    assert float(func(x, 2.5)) == 7.5  # an old value again: a cache hit
    assert len(calls) == 3


def test_python_int_and_float_of_equal_value_are_separate_keys():
    seen = []

    @z.function
    def kind_of(x, n):
        seen.append(type(n))
        return x * n

    kind_of(np.ones(1), 2)
    kind_of(np.ones(1), 2.0)
    assert seen == [int, float]


def test_keyword_and_positional_share_one_trace():
    func, calls = _counted()
    x = np.array([1.0, 2.0])
    assert float(func(x, scale=2.0)) == 6.0
    assert float(func(x, 2.0)) == 6.0
    assert float(func(x=x, scale=2.0)) == 6.0
    assert len(calls) == 1
    assert float(func(x)) == 3.0  # the default is a different call: scale is not given
    assert len(calls) == 2


def test_keyword_only_and_var_keyword_arguments():
    calls = []

    @z.function
    def func(x, *rest, offset=0.0, **extra):
        calls.append(1)
        return tf.reduce_sum(x) + sum(rest) + offset + sum(extra.values())

    x = np.array([1.0, 2.0])
    assert float(func(x, 1.0, 2.0, offset=10.0, a=100.0)) == 116.0
    assert float(func(x, 1.0, 2.0, a=100.0, offset=10.0)) == 116.0
    assert len(calls) == 1
    with pytest.raises(TypeError):
        func()  # missing x: Python's own binding error


def test_nested_arguments_are_rebuilt():
    seen = []

    @z.function
    def func(data, pair, point):
        seen.append((type(data), type(data["b"]), type(pair), type(point), point._fields))
        a = data["a"]
        first, factor = data["b"]
        return tf.reduce_sum(a) * factor + first + pair[0] * pair[1] + point.x * point.y

    def call(a, first, x):
        data = collections.OrderedDict(a=np.array(a), b=[np.float64(first), 2.0])
        return float(func(data, (np.float64(3.0), 4.0), Point(x=np.float64(x), y=5.0)))

    assert call([1.0, 2.0], 1.0, 1.0) == 3.0 * 2.0 + 1.0 + 12.0 + 5.0
    assert call([3.0, 4.0], 2.0, 2.0) == 7.0 * 2.0 + 2.0 + 12.0 + 10.0
    assert seen == [(collections.OrderedDict, list, tuple, Point, ("x", "y"))]
    # a plain dict with the same content is a different structure
    func({"a": np.ones(2), "b": [np.float64(0.0), 1.0]}, (np.float64(1.0), 1.0), Point(np.float64(1.0), 1.0))
    assert len(seen) == 2 and seen[1][0] is dict


def test_numpy_scalar_is_keyed_by_dtype_and_shape():
    calls = []

    @z.function
    def scaled(x, scale):
        calls.append(scale.dtype)
        return tf.reduce_sum(x) * tf.cast(scale, x.dtype)

    x = np.array([1.0, 2.0])
    assert float(scaled(x, np.float64(2.0))) == 6.0
    assert float(scaled(x, np.float64(5.0))) == 15.0  # a new value is read live, not frozen
    assert len(calls) == 1
    assert float(scaled(x, np.float32(0.5))) == 1.5  # a new dtype
    assert float(scaled(x, np.float32(2.0))) == 6.0
    np.testing.assert_array_equal(scaled(x, np.array([2.0])), [6.0])  # a new shape
    assert calls == [tf.float64, tf.float32, tf.float64]


def test_unhashable_static_argument_raises_clear_type_error():
    func, calls = _counted()

    class Unhashable:
        __hash__ = None

    with pytest.raises(TypeError, match=r"argument of type set .* must be hashable"):
        func(np.ones(2), {1.0, 2.0})
    with pytest.raises(TypeError, match="argument of type Unhashable"):
        func(np.ones(2), [Unhashable()])
    with pytest.raises(TypeError, match="argument of type ndarray"):
        func(np.array([object()]))
    assert calls == []
    assert zgrad.run.graph_cache_info().traces == 0


# --- Parameters as arguments and in closures --------------------------------------------------


def test_parameter_argument_reuses_trace_and_reads_live_value():
    calls = []

    @z.function(wraps="loss")
    def loss(p, x):
        calls.append(1)
        return tf.reduce_sum((x - p) ** 2)

    x = np.array([1.0, 2.0, 3.0])
    mu = zgrad.Parameter("mu", 2.0)
    nu = zgrad.Parameter("nu", 0.0)
    assert float(loss(mu, x)) == 2.0
    assert float(loss(nu, x)) == 14.0  # a second Parameter of the same dtype and shape
    assert len(calls) == 1
    for _ in range(3):
        assert float(loss(mu, x)) == 2.0
    mu.set_value(1.0)
    assert float(loss(mu, x)) == 5.0
    with mu.set_value(3.0):
        assert float(loss(mu, x)) == 5.0
    assert float(loss(mu, x)) == 5.0
    assert len(calls) == 1


def test_parameter_of_other_dtype_traces_anew():
    func, calls = _counted()
    func(zgrad.Parameter("a", 1.0))
    func(zgrad.Parameter("b", 1.0, dtype=tf.float32))
    assert len(calls) == 2


def test_captured_parameter_reads_live_value_and_differentiates():
    calls = []
    mu = zgrad.Parameter("mu", 0.5)

    @z.function(wraps="loss")
    def loss(x):
        calls.append(1)
        return tf.reduce_sum((x - mu) ** 2)

    x = np.array([0.0, 1.0])
    np.testing.assert_allclose(float(loss(x)), 0.5, rtol=1e-15)
    mu.set_value(2.0)
    np.testing.assert_allclose(float(loss(x)), 5.0, rtol=1e-15)
    with tf.GradientTape() as tape:
        value = loss(x)
    # d/dmu sum (x - mu)^2 = -2 sum (x - mu); at mu = 2, x - mu = (-2, -1): -2 * (-3) = 6
    np.testing.assert_allclose(float(tape.gradient(value, mu)), 6.0, rtol=1e-15)
    np.testing.assert_allclose(float(value), 5.0, rtol=1e-15)
    assert len(calls) == 1


# --- policy changes ---------------------------------------------------------------------------


def test_graph_true_false_true_reuses_earlier_trace():
    func, calls = _counted("loss")
    x = np.array([1.0, 2.0])
    with zgrad.run.set_mode(graph=True):
        assert float(func(x)) == 3.0
        assert float(func(x)) == 3.0
    assert len(calls) == 1
    with zgrad.run.set_mode(graph=False):
        for expected_calls in (2, 3, 4):
            assert float(func(x)) == 3.0  # eager: the Python body runs on every call
            assert len(calls) == expected_calls
    with zgrad.run.set_mode(graph=True):
        assert float(func(x)) == 3.0
    assert len(calls) == 4  # the earlier trace is reused


def test_eager_calls_run_python_eagerly():
    seen = []

    @z.function(wraps="loss")
    def func(x):
        seen.append(tf.executing_eagerly())
        return x

    with zgrad.run.set_mode(graph=False):
        func(np.ones(1))
    func(np.ones(1))
    assert seen == [True, False]


def test_autograd_change_is_part_of_the_key():
    func, calls = _counted("loss")
    x = np.array([1.0, 2.0])
    func(x)
    assert len(calls) == 1
    with zgrad.run.set_mode(autograd=False):
        assert float(func(x)) == 3.0
        assert float(func(x)) == 3.0
    assert len(calls) == 2
    with zgrad.run.set_mode(autograd="minuit"):
        func(x)
    assert len(calls) == 3
    func(x)  # back to the default: its trace is still cached
    with zgrad.run.set_mode(autograd=False):
        func(x)
    assert len(calls) == 3


def test_chunksize_is_part_of_the_key():
    func, calls = _counted()
    func(np.ones(2))
    zgrad.run.chunksize = 10
    func(np.ones(2))
    assert len(calls) == 2
    zgrad.run.chunksize = None
    func(np.ones(2))
    assert len(calls) == 2


def test_auto_traces_loss_but_runs_model_eagerly():
    loss, loss_calls = _counted("loss")
    model, model_calls = _counted("model")
    x = np.array([1.0, 2.0])
    assert zgrad.run.current_policy_graph() == "auto"
    for n in (1, 2, 3):
        assert float(loss(x)) == 3.0
        assert float(model(x)) == 3.0
        assert len(loss_calls) == 1
        assert len(model_calls) == n
    assert zgrad.run.graph_cache_info().traces == 1


@pytest.mark.parametrize("kind", ["gradient", "hessian", "sample", "tensor", "a_kind_never_seen"])
def test_auto_traces_every_kind_but_model(kind):
    func, calls = _counted(kind)
    func(np.ones(2))
    func(np.ones(2))
    assert len(calls) == 1


def test_dict_policy_runs_named_kinds_as_given_and_others_as_auto():
    loss, loss_calls = _counted("loss")
    model, model_calls = _counted("model")
    sample, sample_calls = _counted("sample")
    x = np.array([1.0, 2.0])
    with zgrad.run.set_mode(graph={"loss": False}):
        for _ in range(3):
            loss(x), model(x), sample(x)
    assert (len(loss_calls), len(model_calls), len(sample_calls)) == (3, 3, 1)
    with zgrad.run.set_mode(graph={"loss": False, "model": True}):
        for _ in range(2):
            loss(x), model(x)
    assert (len(loss_calls), len(model_calls)) == (5, 4)


def test_model_inside_traced_loss_becomes_part_of_the_trace():
    model_eager = []

    @z.function(wraps="model")
    def pdf(x, mu):
        model_eager.append(tf.executing_eagerly())
        return tf.exp(-0.5 * (x - mu) ** 2)

    loss_calls = []
    mu = zgrad.Parameter("mu", 0.0)

    @z.function(wraps="loss")
    def nll(x):
        loss_calls.append(1)
        return -tf.reduce_sum(tf.math.log(pdf(x, mu)))

    x = np.array([-1.0, 0.0, 2.0])
    for _ in range(3):
        np.testing.assert_allclose(float(nll(x)), 0.5 * (1.0 + 0.0 + 4.0), rtol=1e-14)
    assert loss_calls == [1]
    assert model_eager == [False]  # ran once, inside the loss's trace
    mu.set_value(1.0)
    np.testing.assert_allclose(float(nll(x)), 0.5 * (4.0 + 1.0 + 1.0), rtol=1e-14)
    assert model_eager == [False]
    pdf(x, mu)  # called directly under 'auto': eager
    assert model_eager == [False, True]
    assert zgrad.run.graph_cache_info().traces == 1  # pdf holds no trace of its own


def test_call_inside_plain_tf_function_is_inlined():
    func, calls = _counted("loss")

    @tf.function
    def outer(x):
        return func(x) * 2.0

    assert float(outer(tf.constant([1.0, 2.0], tf.float64))) == 6.0
    assert float(outer(tf.constant([3.0, 2.0], tf.float64))) == 10.0
    assert len(calls) == 1  # only outer's single trace ran the body
    assert zgrad.run.graph_cache_info().traces == 0


def test_results_equal_in_graph_and_eager_mode():
    @z.function(wraps="loss")
    def nll(x, mu, sigma):
        z_ = (x - mu) / sigma
        return tf.reduce_sum(0.5 * z_**2 + tf.math.log(sigma))

    x = np.linspace(-3.0, 3.0, 11)
    mu, sigma = zgrad.Parameter("mu", 0.3), zgrad.Parameter("sigma", 1.7)
    expected = np.sum(0.5 * ((x - 0.3) / 1.7) ** 2 + np.log(1.7))
    graph = float(nll(x, mu, sigma))
    with zgrad.run.set_mode(graph=False):
        eager = float(nll(x, mu, sigma))
    np.testing.assert_allclose(graph, expected, rtol=1e-13)
    np.testing.assert_allclose(eager, expected, rtol=1e-13)


def test_wrapping_a_partial_and_a_callable_object():
    class Scaler:
        def __call__(self, x, factor):
            return x * factor

    scaled = z.function(functools.partial(Scaler(), factor=4.0))
    np.testing.assert_array_equal(scaled(np.array([1.0, 2.0])), [4.0, 8.0])


def test_signed_zero_and_nan_floats():
    calls = []

    @z.function
    def inverse(x, s):
        calls.append(s)
        return x / s

    assert float(inverse(np.float64(1.0), 0.0)) == np.inf
    assert float(inverse(np.float64(1.0), -0.0)) == -np.inf  # not 0.0's trace: its sign differs
    assert len(calls) == 2
    assert np.isnan(float(inverse(np.float64(1.0), float("nan"))))
    assert np.isnan(float(inverse(np.float64(1.0), float("nan"))))  # another NaN object: a hit
    assert len(calls) == 3


def test_defaultdict_and_mapping_proxy_arguments_are_rebuilt():
    seen = []

    @z.function
    def total(data):
        seen.append((type(data), getattr(data, "default_factory", None)))
        return data["a"] + data["b"]

    dd = collections.defaultdict(list, a=np.float64(1.0), b=np.float64(2.0))
    assert float(total(dd)) == 3.0
    dd2 = collections.defaultdict(list, a=np.float64(5.0), b=np.float64(2.0))
    assert float(total(dd2)) == 7.0
    assert seen == [(collections.defaultdict, list)]
    total(collections.defaultdict(int, a=np.float64(1.0), b=np.float64(2.0)))  # another factory
    from types import MappingProxyType

    assert float(total(MappingProxyType({"a": np.float64(1.0), "b": np.float64(4.0)}))) == 5.0
    assert [s[0] for s in seen] == [collections.defaultdict, collections.defaultdict, MappingProxyType]
    assert seen[1][1] is int


def test_aliased_parameters_get_their_own_key():
    calls = []

    @z.function
    def product(a, b):
        calls.append(1)
        return a * b

    p, q, r = zgrad.Parameter("p", 2.0), zgrad.Parameter("q", 3.0), zgrad.Parameter("r", 5.0)
    assert float(product(p, p)) == 4.0
    assert float(product(p, q)) == 6.0  # TensorFlow traces aliased variables apart: so does the key
    assert float(product(q, q)) == 9.0
    assert float(product(q, r)) == 15.0
    assert len(calls) == 2
    assert zgrad.run.graph_cache_info().traces == 2


def test_bound_method_metadata():
    class Model:
        @z.function(wraps="model")
        def pdf(self, x):
            """Density."""
            return x

    bound = Model().pdf
    assert (bound.__name__, bound.__qualname__, bound.__doc__, bound.kind) == (
        "pdf",
        Model.pdf.__qualname__,
        "Density.",
        "model",
    )
    assert bound.__qualname__.endswith("Model.pdf")
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        bound.missing  # noqa: B018
