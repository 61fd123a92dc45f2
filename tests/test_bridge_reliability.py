"""z.py_function under bad bodies and odd inputs: a clear error naming the function, never a silent result.

Each test reproduces one way the bridge used to fail silently or with TensorFlow's own message: a
wrong elementwise shape inside a graph, a body returning None or complex values, an integer output
under a tape, the gradient of an empty input, and an unbounded ``threads=``.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.special as sc
import tensorflow as tf

import zgrad
from zgrad import z
from zgrad.errors import GradientError
from zgrad.z import _slices


@pytest.fixture(params=[False, True], ids=["eager", "graph"])
def graph(request):
    with zgrad.run.set_mode(graph=request.param):
        yield request.param


def _evaluate(body, inp, Tout=tf.float64, **options):
    """The bridge called through a z.function (a graph under the graph fixture), as NumPy."""
    return zgrad.run(z.function(lambda *xs: z.py_function(body, list(xs), Tout, **options))(*inp))


def _too_long(x):
    return np.ones(x.shape[0] + 2)


def _returns_none(x):
    return None


def _complex(x):
    return x + 1j * x


def test_wrong_elementwise_shape_is_refused_in_a_graph_too(graph):
    x = tf.constant([1.0, 2.0, 3.0], tf.float64)
    with pytest.raises(
        (ValueError, tf.errors.InvalidArgumentError),
        match=r"'_too_long' is declared elementwise=True but returned shape \(5,\) for inputs that "
        r"broadcast to \(3,\)",
    ):
        _evaluate(_too_long, [x], elementwise=True)


def test_the_shape_check_applies_to_each_slice_with_the_function_named():
    x = tf.constant(np.linspace(-1.0, 1.0, 2 * _slices.MIN_ELEMENTS))
    with pytest.raises(ValueError, match=r"'_too_long' is declared elementwise=True but returned shape"):
        z.py_function(_too_long, [x], tf.float64, elementwise=True, threads=2)


@pytest.mark.parametrize("elementwise", [False, True])
def test_a_body_returning_none_raises_naming_it(graph, elementwise):
    x = tf.constant([1.0, 2.0], tf.float64)
    with pytest.raises(
        (TypeError, tf.errors.InvalidArgumentError),
        match=r"'_returns_none' returned None; it must return an array or number convertible to Tout=float64",
    ):
        _evaluate(_returns_none, [x], elementwise=elementwise)


def test_a_body_returning_strings_raises_naming_it():
    with pytest.raises(TypeError, match=r"'<lambda>' returned str of dtype <U3; it must return"):
        z.py_function(lambda x: "abc", [tf.constant(1.0, tf.float64)], tf.float64)


def test_complex_values_for_a_real_tout_are_refused(graph):
    x = tf.constant([1.0, 2.0], tf.float64)
    with pytest.raises(
        (TypeError, tf.errors.InvalidArgumentError),
        match=r"'_complex' returned complex values \(dtype complex128\) but Tout=float64",
    ):
        _evaluate(_complex, [x])


def test_complex_values_pass_with_a_complex_tout(graph):
    x = tf.constant([1.0, 2.0], tf.float64)
    y = _evaluate(_complex, [x], Tout=tf.complex128, gradient=None)
    np.testing.assert_array_equal(y, [1.0 + 1.0j, 2.0 + 2.0j])


@pytest.mark.parametrize("Tout", [tf.int32, tf.int64, tf.bool, tf.complex128])
@pytest.mark.parametrize("gradient", ["numerical", lambda x: np.ones_like(x)])
def test_an_output_without_a_gradient_needs_gradient_none(Tout, gradient):
    x = tf.constant([1.0, 2.0], tf.float64)
    with pytest.raises(
        ValueError, match=rf"'floor' has Tout={Tout.name}, an output without a gradient.*gradient=None"
    ):
        z.py_function(np.floor, [x], Tout, gradient=gradient, name="floor")


def test_an_integer_output_under_a_tape_raises_gradient_error(graph):
    mu = zgrad.Parameter("mu", 2.0)

    def counts():
        return z.py_function(lambda m: np.int32(3 * m), [mu], tf.int32, gradient=None, name="counts")

    def gradient():
        with tf.GradientTape() as tape:
            y = counts()
        return tape.gradient(y, mu)

    assert zgrad.run(z.function(counts)()) == 6
    with pytest.raises(GradientError, match=r"'counts' was bridged with gradient=None"):
        z.function(gradient)()


@pytest.mark.parametrize(
    ("body", "shape"),
    [(lambda a: a**2, (0,)), (lambda a: np.full(2, np.sum(a)), (0,)), (lambda a: a.T @ a, (0, 3))],
    ids=["empty-output", "non-empty-output", "matrix"],
)
def test_gradient_of_an_empty_input_is_empty(graph, body, shape):
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(z.py_function(body, [x], tf.float64))
        return tape.gradient(y, x)

    result = z.function(gradient)(tf.zeros(shape, tf.float64))
    assert result.shape == shape
    assert result.dtype == tf.float64


def test_gradient_of_an_empty_input_beside_a_scalar(graph):
    mu = zgrad.Parameter("mu", 0.5)
    x = tf.zeros((0,), tf.float64)

    def gradients():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(z.py_function(lambda a, m: np.append(a, m) ** 2, [x, mu], tf.float64))
        return tape.gradient(y, [x, mu])

    dx, dmu = z.function(gradients)()
    assert dx.shape == (0,)
    np.testing.assert_allclose(zgrad.run(dmu), 2 * 0.5, rtol=1e-8)


@pytest.mark.parametrize("threads", [_slices.MAX_THREADS + 1, 10**6])
def test_threads_above_the_maximum_are_refused(threads):
    before = threading.active_count()
    with pytest.raises(ValueError, match=rf"an int from 1 to 256; got {threads}"):
        z.py_function(sc.erf, [tf.constant([0.5], tf.float64)], tf.float64, elementwise=True, threads=threads)
    assert threading.active_count() == before


def _slice_threads():
    return {t.ident for t in threading.enumerate() if t.name.startswith("zgrad-slices")}


def test_slice_threads_are_bounded_by_the_largest_request():
    # one pool for the process, as large as the most slices asked for: requests of 8, 3, 5 and 2
    # slices start at most 8 threads (a pool per count started up to 18), and repeating them keeps
    # it so (the pool starts its threads lazily, up to its size)
    x = tf.constant(np.linspace(-1.0, 1.0, 2 * _slices.MIN_ELEMENTS))
    before = _slice_threads()
    for threads in (8, 3, 5, 2):
        y = z.py_function(sc.erf, [x], tf.float64, elementwise=True, threads=threads)
        np.testing.assert_array_equal(y.numpy(), sc.erf(x.numpy()))
    assert len(_slice_threads() - before) <= 8
    for threads in (8, 3, 5, 2):
        z.py_function(sc.erf, [x], tf.float64, elementwise=True, threads=threads)
    assert len(_slice_threads() - before) <= 8


def test_default_slices_are_capped_at_the_maximum():
    xs = [np.zeros((10 * _slices.MAX_THREADS, 64))]
    assert _slices.slice_count(xs, 10**6) == _slices.MAX_THREADS
    assert _slices.slice_count(xs, 3) == 3
