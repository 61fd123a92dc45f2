"""Elementwise bridges evaluated in slices on several threads: the same numbers, the work split.

The slices are observed by recording the shapes the Python body is called with; values and
derivatives in slices are compared bit for bit with the one-piece evaluation and with the closed
form of erf's derivative.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.special as sc
import tensorflow as tf

import zgrad
from zgrad import z
from zgrad.z import _slices

N = 2 * _slices.MIN_ELEMENTS  # large enough to be sliced
_TWO_OVER_SQRT_PI = 2.0 / np.sqrt(np.pi)


class _Recorded:
    """erf(x - mu), recording the length of the x it is called with and the threads calling it."""

    __name__ = "recorded_erf"

    def __init__(self):
        self.lengths, self.threads = [], set()
        self._lock = threading.Lock()

    def __call__(self, x, mu):
        with self._lock:
            self.lengths.append(np.shape(x)[0])
            self.threads.add(threading.get_ident())
        return sc.erf(x - mu)


@pytest.fixture(params=[False, True], ids=["eager", "graph"])
def graph(request):
    with zgrad.run.set_mode(graph=request.param):
        yield request.param


def _value_and_gradients(body, threads, x, mu):
    @z.function
    def compute(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            erf = z.py_function(body, [x, mu], tf.float64, elementwise=True, threads=threads)
            y = tf.reduce_sum(erf**2)
        return (y, *tape.gradient(y, [x, mu]))

    return [t.numpy() for t in compute(x)]


def test_slices_give_the_one_piece_numbers_bit_for_bit(graph):
    x = tf.constant(np.linspace(-2.0, 2.0, N))
    mu = zgrad.Parameter("mu", 0.1)
    one, sliced = _Recorded(), _Recorded()
    reference = _value_and_gradients(one, 1, x, mu)
    result = _value_and_gradients(sliced, 3, x, mu)
    for a, b in zip(reference, result, strict=True):
        np.testing.assert_array_equal(a, b)
    # d/dx sum(erf(x - mu)^2) = 2 erf(x - mu) erf'(x - mu): the differences are still accurate
    t = x.numpy() - 0.1
    exact = 2.0 * sc.erf(t) * _TWO_OVER_SQRT_PI * np.exp(-t * t)
    np.testing.assert_allclose(result[1], exact, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(result[2], -exact.sum(), rtol=1e-8)
    # one piece: the forward pass and the 2 evaluations of each derivative (x and mu)
    assert one.lengths == [N] * 5
    # three slices for each of these evaluations, never a slice of a slice
    thirds = [len(part) for part in np.array_split(np.empty(N), 3)]
    assert sorted(sliced.lengths) == sorted(thirds * 5)


def test_slices_run_on_several_threads_at_once():
    x = tf.constant(np.linspace(-2.0, 2.0, N))
    body = _Recorded()
    both_running = threading.Barrier(2, timeout=10)  # broken unless two slices run at the same time

    def func(x, mu):
        both_running.wait()
        return body(x, mu)

    z.py_function(func, [x, 0.0], tf.float64, elementwise=True, threads=2)
    assert body.lengths == [N // 2, N // 2]
    assert len(body.threads) == 2


def test_default_follows_run_n_cpu(monkeypatch):
    x = tf.constant(np.linspace(-2.0, 2.0, N))
    for n_cpu, expected in [(1, [N]), (4, [N // 4] * 4)]:
        monkeypatch.setattr(zgrad.run, "_n_cpu", n_cpu)
        body = _Recorded()
        z.py_function(body, [x, 0.0], tf.float64, elementwise=True)
        assert body.lengths == expected


def test_small_or_not_elementwise_evaluations_are_not_sliced(monkeypatch):
    monkeypatch.setattr(zgrad.run, "_n_cpu", 4)
    body = _Recorded()
    small = tf.constant(np.linspace(-2.0, 2.0, _slices.MIN_ELEMENTS - 1))
    z.py_function(body, [small, 0.0], tf.float64, elementwise=True)
    assert body.lengths == [_slices.MIN_ELEMENTS - 1]
    body.lengths.clear()
    z.py_function(body, [tf.constant(np.zeros(N)), 0.0], tf.float64)  # not declared elementwise
    assert body.lengths == [N]


def test_slice_count_rules():
    big = np.zeros(N)
    assert _slices.slice_count([big, np.float64(1.0)], 4) == 4
    assert _slices.slice_count([big], 1) == 1
    assert _slices.slice_count([np.float64(1.0)], 4) == 1  # a scalar output
    assert _slices.slice_count([np.zeros((2, N))], 4) == 2  # never more slices than rows
    assert _slices.slice_count([np.zeros(3), np.zeros(4)], 4) == 1  # not broadcastable: left to func


def test_inputs_that_broadcast_along_the_first_axis_go_whole_to_every_slice():
    rows = np.arange(6.0).reshape(6, 1) * np.ones((6, _slices.MIN_ELEMENTS // 4))
    column_offsets = np.linspace(0.0, 1.0, rows.shape[1])  # 1-d: broadcast along the rows
    first_row = rows[:1] * 0.5  # first axis of length 1
    seen = []

    def func(a, b, c):
        seen.append((a.shape, b.shape, c.shape))
        return a * 2.0 + b - c

    result = _slices.evaluate_in_slices(func, [rows, column_offsets, first_row], 3)
    np.testing.assert_array_equal(result, func(rows, column_offsets, first_row))
    width = rows.shape[1]
    assert seen[:3] == [((2, width), (width,), (1, width))] * 3


def test_a_function_that_is_not_elementwise_fails_loudly():
    x = tf.constant(np.linspace(-2.0, 2.0, N))
    with pytest.raises(
        ValueError, match=r"'<lambda>' is declared elementwise=True but returned shape \(10,\)"
    ):
        z.py_function(lambda a: np.cumsum(a)[:10], [x], tf.float64, elementwise=True, threads=2)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_invalid_threads_are_refused(threads):
    with pytest.raises(ValueError, match="threads must be None"):
        z.py_function(sc.erf, [tf.constant([0.5])], tf.float64, elementwise=True, threads=threads)


def test_threads_need_elementwise():
    with pytest.raises(ValueError, match="needs elementwise=True"):
        z.py_function(sc.erf, [tf.constant([0.5])], tf.float64, threads=2)
    # threads=1 asks for nothing that needs the declaration
    y = z.py_function(sc.erf, [tf.constant([0.5], tf.float64)], tf.float64, threads=1)
    np.testing.assert_allclose(y.numpy(), sc.erf([0.5]))


def test_default_leaves_evaluations_whole_in_a_differentiated_graph(monkeypatch, graph):
    # in a graph traced under a tape TensorFlow runs the forward and derivative evaluations side
    # by side already; eagerly they run one after the other, and a value alone is always sliced
    monkeypatch.setattr(zgrad.run, "_n_cpu", 2)
    x = tf.constant(np.linspace(-2.0, 2.0, N))
    mu = zgrad.Parameter("mu", 0.1)
    differentiated, value_only = _Recorded(), _Recorded()
    _value_and_gradients(differentiated, None, x, mu)
    z.function(lambda x: tf.reduce_sum(z.py_function(value_only, [x, mu], tf.float64, elementwise=True)))(x)
    assert differentiated.lengths == ([N] * 5 if graph else [N // 2] * 10)
    assert value_only.lengths == [N // 2] * 2
