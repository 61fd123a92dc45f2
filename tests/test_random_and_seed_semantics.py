"""Random numbers under the graph policy: NumPy values freeze into a trace, z.random values stay live.

NumPy's legacy global generator is used on purpose: it is what user code reaches for, and what a
trace freezes.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad import z

# ruff: noqa: NPY002


def _draws():
    """A traced function returning one NumPy and one z.random uniform number, and its trace counter."""
    calls = []

    @z.function(wraps="sample")
    def draw():
        calls.append(1)
        return tf.constant(np.random.uniform(), tf.float64), z.random.uniform(())

    def call():
        frozen, live = draw()
        return float(frozen), float(live)

    return call, calls


def test_numpy_random_is_frozen_and_z_random_is_live_in_a_trace():
    call, calls = _draws()
    results = [call() for _ in range(5)]
    frozen = [r[0] for r in results]
    live = [r[1] for r in results]
    assert len(set(frozen)) == 1  # drawn once, while tracing
    assert len(set(live)) == 5  # a new draw on every call of the same trace
    assert len(calls) == 1
    assert all(0.0 <= v < 1.0 for v in frozen + live)


def test_eager_numpy_random_changes_like_numpy():
    call, calls = _draws()
    with zgrad.run.set_mode(graph=False):
        results = [call() for _ in range(5)]
    assert len({r[0] for r in results}) == 5
    assert len({r[1] for r in results}) == 5
    assert len(calls) == 5


@pytest.fixture
def _numpy_global_state():
    """Restore NumPy's global random state: the test reseeds it."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


@pytest.mark.usefixtures("_numpy_global_state")
def test_eager_numpy_random_follows_numpy_seed():
    call, _ = _draws()
    with zgrad.run.set_mode(graph=False):
        np.random.seed(11)
        first = [call()[0] for _ in range(3)]
        np.random.seed(11)
        second = [call()[0] for _ in range(3)]
    assert first == second
    np.random.seed(11)
    assert first == [np.random.uniform() for _ in range(3)]


@pytest.mark.parametrize("graph", [True, False])
def test_set_seed_makes_z_random_reproducible(graph):
    call, calls = _draws()
    with zgrad.run.set_mode(graph=graph):
        z.random.set_seed(123)
        first = [call()[1] for _ in range(4)]
        z.random.set_seed(123)
        second = [call()[1] for _ in range(4)]
        z.random.set_seed(124)
        other = [call()[1] for _ in range(4)]
    assert first == second
    assert len(set(first)) == 4
    assert first != other
    assert len(calls) == (1 if graph else 12)


def test_set_seed_gives_same_numbers_traced_and_eager():
    call, _ = _draws()
    z.random.set_seed(5)
    traced = [call()[1] for _ in range(3)]
    z.random.set_seed(5)
    eager = [float(z.random.uniform(())) for _ in range(3)]
    assert traced == eager


def test_set_seed_reaches_an_existing_trace():
    call, calls = _draws()
    call()  # traced with whatever state the generator had
    z.random.set_seed(77)
    a = call()[1]
    z.random.set_seed(77)
    b = call()[1]
    assert a == b
    assert len(calls) == 1  # reseeding does not retrace


@pytest.mark.parametrize("seed", [-1, 1.5, "a", True, False, None, 2.0])
def test_set_seed_bad_values_raise(seed):
    with pytest.raises(ValueError, match=rf"seed must be a non-negative int; got {seed!r}"):
        z.random.set_seed(seed)


def test_set_seed_accepts_numpy_int_and_zero():
    z.random.set_seed(np.int64(3))
    a = z.random.uniform((2,)).numpy()
    z.random.set_seed(3)
    np.testing.assert_array_equal(a, z.random.uniform((2,)).numpy())
    z.random.set_seed(0)


@pytest.mark.parametrize(
    ("shape", "expected"), [(3, (3,)), ((2, 4), (2, 4)), ([5], (5,)), ((), ()), (tf.constant([2, 3]), (2, 3))]
)
def test_shapes(shape, expected):
    assert tuple(z.random.uniform(shape).shape) == expected
    assert tuple(z.random.normal(shape).shape) == expected


@pytest.mark.parametrize("dtype", [tf.float64, tf.float32])
def test_dtypes(dtype):
    assert z.random.uniform((2,), dtype=dtype).dtype == dtype
    assert z.random.normal((2,), dtype=dtype).dtype == dtype
    assert z.random.uniform((2,)).dtype == tf.float64
    assert z.random.normal((2,)).dtype == tf.float64


def test_uniform_range_and_moments():
    z.random.set_seed(2024)
    n = 200_000
    u = z.random.uniform((n,), minval=2.0, maxval=5.0).numpy()
    assert u.min() >= 2.0 and u.max() < 5.0
    # mean 3.5, variance 9/12: five standard errors of the mean as tolerance
    assert abs(u.mean() - 3.5) < 5 * np.sqrt(0.75 / n)
    np.testing.assert_allclose(u.var(), 0.75, rtol=0.02)


def test_normal_moments():
    z.random.set_seed(2025)
    n = 200_000
    x = z.random.normal((n,), mean=1.5, stddev=2.0).numpy()
    assert abs(x.mean() - 1.5) < 5 * 2.0 / np.sqrt(n)
    np.testing.assert_allclose(x.std(), 2.0, rtol=0.02)


def test_z_random_inside_trace_with_shape_argument():
    calls = []

    @z.function(wraps="sample")
    def sample(n, mu):
        calls.append(1)
        return z.random.normal((n,), mean=mu)

    mu = zgrad.Parameter("mu", 0.0)
    a = sample(4, mu).numpy()
    mu.set_value(100.0)
    b = sample(4, mu).numpy()
    assert a.shape == b.shape == (4,)
    assert np.all(np.abs(a) < 10) and np.all(np.abs(b - 100.0) < 10)  # the Parameter is read live
    assert len(calls) == 1
    sample(5, mu)  # a Python int shape is part of the key
    assert len(calls) == 2
