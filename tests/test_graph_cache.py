"""The graph cache: per-instance method caches held weakly, LRU bound, clearing, counts, warnings."""

from __future__ import annotations

import gc
import warnings
import weakref

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad import _cache, z
from zgrad.errors import RetracingWarning, ZgradWarning


def _info():
    gc.collect()  # tf.function objects hold reference cycles: count only what is really alive
    return zgrad.run.graph_cache_info()


def _counted(kind: str = "tensor"):
    calls: list[int] = []

    @z.function(wraps=kind)
    def func(x, scale=1.0):
        calls.append(1)
        return tf.reduce_sum(x) * scale

    return func, calls


def _shapes(func) -> list[tuple[int, ...]]:
    """Shapes of the first argument of each cached key, least recently used first.

    A key is ``(mode, chunksize, registry generation, signature)``; the signature is
    ``(args, kwargs)`` and ``args`` is ``(tuple, (leaf, ...))`` with a leaf ``(tag, dtype, shape)``.
    """
    return [key[3][0][1][0][2] for key in func._cache.keys()]


class _Model:
    def __init__(self, factor: float):
        self.factor = factor  # a Python float: frozen into each instance's own trace
        self.shift = zgrad.Parameter("shift", 0.0)
        self.calls: list[int] = []

    @z.function(wraps="loss")
    def value(self, x):
        """Scaled sum plus shift."""
        self.calls.append(1)
        return tf.reduce_sum(x) * self.factor + self.shift


# --- methods: one cache per instance, instances held weakly -----------------------------------


def test_methods_are_cached_per_instance():
    before = _info()
    a, b = _Model(2.0), _Model(3.0)
    x = np.array([1.0, 2.0])
    for _ in range(3):
        assert float(a.value(x)) == 6.0
        assert float(b.value(x)) == 9.0  # a shared trace would have frozen a's factor
    assert (len(a.calls), len(b.calls)) == (1, 1)
    b.shift.set_value(1.0)
    assert float(b.value(x)) == 10.0
    assert float(a.value(x)) == 6.0
    info = _info()
    assert info.traces - before.traces == 2
    assert info.functions == before.functions  # _Model.value was counted already, once


def test_method_counts_as_one_function_whatever_the_instances():
    before = _info().functions

    class Local:
        @z.function
        def double(self, x):
            return 2.0 * x

    assert _info().functions == before + 1
    instances = [Local() for _ in range(3)]
    for inst in instances:
        inst.double(np.ones(2))
    info = _info()
    assert info.functions == before + 1
    assert info.traces == 3


def test_instance_is_not_kept_alive_by_the_cache():
    keep, drop = _Model(1.0), _Model(2.0)
    x = np.array([1.0, 2.0])
    keep.value(x)
    drop.value(x)
    drop.value(x[:1])
    assert _info().traces == 3
    ref = weakref.ref(drop)
    del drop
    gc.collect()
    assert ref() is None
    assert _info().traces == 1  # drop's two traces went with it
    assert float(keep.value(x)) == 3.0
    assert len(keep.calls) == 1


def test_function_and_its_traces_are_dropped_with_it():
    before = _info()
    func, _ = _counted()
    func(np.ones(2))
    func(np.ones(3))
    mid = _info()
    assert (mid.functions - before.functions, mid.traces - before.traces) == (1, 2)
    ref = weakref.ref(func)
    del func
    after = _info()
    assert ref() is None
    assert (after.functions, after.traces) == (before.functions, before.traces)


def test_slots_without_weakref_raise_type_error():
    class Slotted:
        __slots__ = ("factor",)

        def __init__(self):
            self.factor = 2.0

        @z.function
        def value(self, x):
            return x * self.factor

    with pytest.raises(
        TypeError, match=r"Slotted instances do not support weak references; add '__weakref__'"
    ):
        Slotted().value(np.ones(2))
    assert _info().traces == 0
    with zgrad.run.set_mode(graph=False):  # eager calls keep no cache, so they work
        np.testing.assert_array_equal(Slotted().value(np.ones(2)), [2.0, 2.0])


def test_slots_with_weakref_work():
    class Slotted:
        __slots__ = ("factor", "__weakref__")

        def __init__(self):
            self.factor = 2.0

        @z.function
        def value(self, x):
            return x * self.factor

    np.testing.assert_array_equal(Slotted().value(np.ones(2)), [2.0, 2.0])


# --- LRU bound --------------------------------------------------------------------------------


def test_lru_evicts_least_recently_used():
    zgrad.run.set_graph_cache_size(2)
    func, calls = _counted()
    a, b, c = np.ones(1), np.ones(2), np.ones(3)
    func(a), func(b), func(a), func(c)
    assert len(calls) == 3
    assert _shapes(func) == [(1,), (3,)]  # b was evicted; a was used after it
    func(a)
    assert len(calls) == 3
    assert _shapes(func) == [(3,), (1,)]
    assert float(func(b)) == 2.0
    assert len(calls) == 4  # b traces again and evicts c
    assert _shapes(func) == [(1,), (2,)]
    assert _info().traces == 2


def test_bound_is_per_function():
    zgrad.run.set_graph_cache_size(2)
    f, _ = _counted()
    g, _ = _counted()
    for size in (1, 2, 3):
        f(np.ones(size))
        g(np.ones(size))
    assert len(f._cache) == len(g._cache) == 2
    assert _info().traces == 4


def test_shrinking_evicts_immediately_and_growing_keeps():
    func, calls = _counted()
    for size in (1, 2, 3, 4):
        func(np.ones(size))
    assert _shapes(func) == [(1,), (2,), (3,), (4,)]
    zgrad.run.set_graph_cache_size(2)
    assert _shapes(func) == [(3,), (4,)]
    assert _info().traces == 2
    zgrad.run.set_graph_cache_size(10)
    assert _shapes(func) == [(3,), (4,)]
    func(np.ones(3))
    assert len(calls) == 4


def test_cache_size_none_restores_default():
    zgrad.run.set_graph_cache_size(3)
    assert _cache.get_max_size() == 3
    zgrad.run.set_graph_cache_size(None)
    assert _cache.get_max_size() == _cache.DEFAULT_CACHE_SIZE == 32


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "3", np.float64(2.0)])
def test_bad_cache_size_raises_and_keeps_setting(size):
    zgrad.run.set_graph_cache_size(5)
    with pytest.raises(ValueError, match=r"graph cache size must be a positive int, or None"):
        zgrad.run.set_graph_cache_size(size)
    assert _cache.get_max_size() == 5


# --- clearing and counting --------------------------------------------------------------------


def test_clear_graph_cache_drops_everything_and_results_stay():
    f, f_calls = _counted()
    g, g_calls = _counted("loss")
    m = _Model(2.0)
    x = np.array([1.0, 2.0])
    results = (float(f(x, 2.0)), float(f(x, 3.0)), float(g(x)), float(m.value(x)))
    f(x, 2.0)
    info = _info()
    assert (info.traces, info.hits, info.misses) == (4, 1, 4)
    zgrad.run.clear_graph_cache()
    info = _info()
    assert (info.traces, info.hits, info.misses) == (0, 0, 0)
    assert len(f._cache) == len(g._cache) == 0
    assert (float(f(x, 2.0)), float(f(x, 3.0)), float(g(x)), float(m.value(x))) == results
    assert (len(f_calls), len(g_calls), len(m.calls)) == (4, 2, 2)
    assert _info().misses == 4


def test_hits_and_misses_are_exact():
    f, _ = _counted("loss")
    g, _ = _counted("loss")
    model, _ = _counted("model")
    a, b = np.ones(2), np.ones(3)

    @z.function(wraps="loss")
    def outer(x):
        return f(x) + model(x)  # inlined into outer's trace: no lookups of their own

    f(a)  # miss
    f(a)  # hit
    f(b)  # miss
    f(a)  # hit
    g(a)  # miss
    model(a)  # eager under 'auto': no lookup
    with zgrad.run.set_mode(graph=False):
        f(a), g(b)  # eager: no lookup
    outer(a)  # miss
    outer(a)  # hit
    info = _info()
    assert (info.hits, info.misses, info.traces) == (3, 4, 4)
    assert (f._cache.hits, f._cache.misses) == (2, 2)


def test_retracing_warning_fires_once_at_threshold(monkeypatch):
    monkeypatch.setattr(_cache, "RETRACE_WARNING_THRESHOLD", 3)
    func, calls = _counted()
    x = np.ones(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        func(x, 1.0)
        func(x, 2.0)
        assert caught == []
        func(x, 3.0)
        assert len(caught) == 1
        for scale in (4.0, 5.0, 6.0, 1.0, 2.0):
            func(x, scale)
    assert len(calls) == 6
    assert [w.category for w in caught] == [RetracingWarning]
    assert issubclass(RetracingWarning, ZgradWarning)
    message = str(caught[0].message)
    assert "_counted.<locals>.func has been traced 3 times" in message
    assert caught[0].filename == __file__  # points at the caller, not at zgrad


def test_retracing_warning_again_after_clear(monkeypatch):
    monkeypatch.setattr(_cache, "RETRACE_WARNING_THRESHOLD", 2)
    func, _ = _counted()
    with pytest.warns(RetracingWarning, match="traced 2 times"):
        func(np.ones(2), 1.0)
        func(np.ones(2), 2.0)
    zgrad.run.clear_graph_cache()
    with pytest.warns(RetracingWarning, match="traced 2 times"):
        func(np.ones(2), 1.0)
        func(np.ones(2), 2.0)


def test_retracing_warning_not_for_hits(monkeypatch):
    monkeypatch.setattr(_cache, "RETRACE_WARNING_THRESHOLD", 2)
    func, _ = _counted()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(5):
            func(np.ones(2), 1.0)


# --- failing traces ---------------------------------------------------------------------------


def test_failing_trace_leaves_no_entry_and_error_propagates():
    calls = []

    @z.function
    def func(x, fail):
        calls.append(fail)
        if fail:
            raise ValueError("the body refused")
        return x * 2.0

    with pytest.raises(ValueError, match="the body refused"):
        func(np.ones(2), True)
    assert len(func._cache) == 0
    assert _info().traces == 0
    with pytest.raises(ValueError, match="the body refused"):
        func(np.ones(2), True)  # nothing stale was cached: the body runs again
    assert calls == [True, True]
    np.testing.assert_array_equal(func(np.ones(2), False), [2.0, 2.0])
    np.testing.assert_array_equal(func(np.ones(2), False), [2.0, 2.0])
    assert calls == [True, True, False]
    assert len(func._cache) == 1


def test_failing_trace_of_a_method_leaves_no_entry():
    class Broken:
        @z.function
        def value(self, x):
            raise RuntimeError("broken model")

    obj = Broken()
    with pytest.raises(RuntimeError, match="broken model"):
        obj.value(np.ones(2))
    assert _info().traces == 0


def test_retracing_warning_as_error_leaves_a_complete_trace(monkeypatch):
    monkeypatch.setattr(_cache, "RETRACE_WARNING_THRESHOLD", 2)
    func, calls = _counted()
    func(np.ones(2), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RetracingWarning)
        with pytest.raises(RetracingWarning):
            func(np.ones(2), 2.0)
    assert len(calls) == 2  # the trace ran before the warning was raised
    assert float(func(np.ones(2), 2.0)) == 4.0
    assert len(calls) == 2
