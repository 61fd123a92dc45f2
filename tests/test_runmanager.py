"""``zgrad.run``: conversion, eagerness check, CPU count, deprecated names and the graph-cache controls."""

from __future__ import annotations

import collections
import os
import warnings
from typing import NamedTuple

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad import _cache, _policy, z

DEFAULT = {"autograd": True, "graph": "auto"}
DEPRECATED_NAMES = ("experimental_clear_caches", "experimental_enable_eager", "experimental_is_eager")


class Point(NamedTuple):
    x: object
    y: object


def _traced_counter():
    """A z.function of kind 'loss' and the list its Python body appends to while tracing."""
    traces = []

    @z.function(wraps="loss")
    def loss(x):
        traces.append(1)
        return tf.reduce_sum(x * x)

    return loss, traces


# --- run(*args) ---------------------------------------------------------------------------------


def test_single_tensor_becomes_numpy():
    out = zgrad.run(tf.constant([1.0, 2.5], dtype=tf.float64))
    assert type(out) is np.ndarray
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, 2.5])


def test_scalar_tensor_becomes_numpy_scalar():
    out = zgrad.run(tf.constant(3, dtype=tf.int32))
    assert isinstance(out, np.integer) and out == 3


def test_variable_and_parameter_become_their_current_value():
    var = tf.Variable([1.0, 2.0])
    mu = zgrad.Parameter("mu", 0.25, lower=-1.0, upper=1.0)
    out_var, out_mu = zgrad.run(var, mu)
    np.testing.assert_array_equal(out_var, np.array([1.0, 2.0], dtype=np.float32))
    assert isinstance(out_var, np.ndarray)
    assert out_mu == 0.25 and isinstance(out_mu, np.floating)
    mu.set_value(-0.5)
    var.assign([3.0, 4.0])
    assert zgrad.run(mu) == -0.5
    np.testing.assert_array_equal(zgrad.run(var), [3.0, 4.0])


def test_one_argument_keeps_its_structure():
    t = tf.constant(1.0, dtype=tf.float64)
    out = zgrad.run([t, (t, 2), {"a": t, "b": [t]}])
    assert type(out) is list
    assert type(out[1]) is tuple and out[1][1] == 2
    assert type(out[2]) is dict and type(out[2]["b"]) is list
    assert out[0] == 1.0 and isinstance(out[0], np.floating)
    assert out[2]["a"] == 1.0 and isinstance(out[2]["a"], np.floating)
    assert out[2]["b"][0] == 1.0 and isinstance(out[2]["b"][0], np.floating)


@pytest.mark.parametrize("container", [list, tuple])
def test_one_list_or_tuple_is_not_unpacked(container):
    value = container([tf.constant(1.0), tf.constant(2.0)])
    out = zgrad.run(value)
    assert type(out) is container
    assert len(out) == 2 and [float(v) for v in out] == [1.0, 2.0]


def test_one_dict_stays_dict():
    out = zgrad.run({"x": tf.constant([1.0]), "y": 3})
    assert type(out) is dict
    assert list(out) == ["x", "y"]
    assert isinstance(out["x"], np.ndarray) and out["y"] == 3


def test_ordered_dict_keeps_its_type():
    out = zgrad.run(collections.OrderedDict(b=tf.constant(2.0), a=tf.constant(1.0)))
    assert type(out) is collections.OrderedDict
    assert list(out) == ["b", "a"]
    assert isinstance(out["b"], np.floating)


def test_defaultdict_keeps_its_type_and_factory():
    out = zgrad.run(collections.defaultdict(list, a=tf.constant(1.0)))
    assert type(out) is collections.defaultdict
    assert out.default_factory is list
    assert isinstance(out["a"], np.floating) and out["a"] == 1.0
    assert out["missing"] == []


def test_namedtuple_keeps_its_type():
    out = zgrad.run(Point(tf.constant(1.0), [tf.constant(2.0)]))
    assert type(out) is Point
    assert isinstance(out.x, np.floating) and out.x == 1.0
    assert type(out.y) is list and out.y[0] == 2.0
    several = zgrad.run(Point(1, 2), Point(tf.constant(3), 4))
    assert type(several) is tuple and len(several) == 2
    assert type(several[0]) is Point and type(several[1]) is Point


def test_several_arguments_come_back_as_a_tuple():
    out = zgrad.run(tf.constant(1.0), [tf.constant(2.0)], 3)
    assert type(out) is tuple and len(out) == 3
    assert out[0] == 1.0 and type(out[1]) is list and out[2] == 3
    two_lists = zgrad.run([1], [2])
    assert two_lists == ([1], [2])


def test_numpy_arrays_pass_through_as_the_same_object():
    array = np.arange(4.0)
    scalar = np.float32(2.5)
    assert zgrad.run(array) is array
    assert zgrad.run(scalar) is scalar
    out = zgrad.run([array], array)
    assert out[0][0] is array and out[1] is array


@pytest.mark.parametrize("value", [1, 2.5, 1 + 2j, "text", b"bytes", True, None])
def test_python_values_pass(value):
    out = zgrad.run(value)
    assert out == value and type(out) is type(value)


def test_unknown_objects_pass_unchanged():
    class Opaque:
        pass

    thing = Opaque()
    func = np.sum
    assert zgrad.run(thing) is thing
    assert zgrad.run(func) is func
    out = zgrad.run([thing, {"f": func}])
    assert out[0] is thing and out[1]["f"] is func


def test_no_arguments_give_an_empty_tuple():
    assert zgrad.run() == ()


def test_keyword_arguments_raise_type_error():
    with pytest.raises(TypeError, match=r"positional arguments only.*\['x'\]"):
        zgrad.run(x=tf.constant(1.0))
    with pytest.raises(TypeError, match="positional arguments only"):
        zgrad.run(tf.constant(1.0), a=1, b=2)


def test_run_inside_a_z_function_trace_raises():
    @z.function(wraps="loss")
    def traced(x):
        return zgrad.run(x)

    with pytest.raises(RuntimeError, match="inside a trace"):
        traced(tf.constant(1.0))
    with zgrad.run.set_mode(graph=False):  # eagerly the same body works
        assert traced(tf.constant(1.0)) == 1.0


def test_run_inside_tf_function_raises_even_without_tensors():
    @tf.function(autograph=False)
    def traced(x):
        zgrad.run(np.ones(2))
        return x

    with pytest.raises(RuntimeError, match="inside a trace"):
        traced(tf.constant(1.0))


def test_run_of_an_eager_result_of_a_traced_function():
    loss, traces = _traced_counter()
    out = zgrad.run(loss(np.array([1.0, 2.0])))
    assert out == 5.0 and isinstance(out, np.floating) and traces == [1]


# --- assert_executing_eagerly -------------------------------------------------------------------


def test_assert_executing_eagerly_returns_none_eagerly():
    assert zgrad.run.assert_executing_eagerly() is None
    with zgrad.run.set_mode(graph=False):

        @z.function(wraps="loss")
        def eager(x):
            return zgrad.run.assert_executing_eagerly()

        assert eager(tf.constant(1.0)) is None


def test_assert_executing_eagerly_raises_inside_a_z_function_trace():
    @z.function(wraps="loss")
    def traced(x):
        zgrad.run.assert_executing_eagerly()
        return x

    with pytest.raises(RuntimeError, match="inside a trace"):
        traced(tf.constant(1.0))


def test_assert_executing_eagerly_raises_inside_tf_function():
    @tf.function(autograph=False)
    def traced(x):
        zgrad.run.assert_executing_eagerly()
        return x

    with pytest.raises(RuntimeError, match="requires eager execution"):
        traced(tf.constant(1.0))


# --- n_cpu --------------------------------------------------------------------------------------


def test_n_cpu_auto_is_the_affinity():
    expected = len(os.sched_getaffinity(0))
    assert zgrad.RunManager().n_cpu == expected
    assert zgrad.RunManager(n_cpu="auto").n_cpu == expected
    assert zgrad.run.n_cpu == expected


@pytest.mark.parametrize("n", [1, 3, 64])
def test_n_cpu_positive_int_is_taken_as_given(n):
    manager = zgrad.RunManager(n_cpu=n)
    assert manager.n_cpu == n and type(manager.n_cpu) is int


@pytest.mark.parametrize(
    "n, error",
    [
        (0, ValueError),
        (-1, ValueError),
        ("many", TypeError),
        ("AUTO", TypeError),
        (2.0, TypeError),
        (True, TypeError),
        (None, TypeError),
    ],
)
def test_bad_n_cpu_raises_naming_the_value(n, error):
    with pytest.raises(error, match=r"n_cpu must be 'auto' or a positive int; got"):
        zgrad.RunManager(n_cpu=n)


def test_n_cpu_is_read_only():
    with pytest.raises(AttributeError):
        zgrad.run.n_cpu = 4


# --- deprecated names ---------------------------------------------------------------------------


def test_experimental_clear_caches_clears_and_warns():
    loss, traces = _traced_counter()
    loss(np.array([1.0]))
    assert zgrad.run.graph_cache_info().traces == 1
    with pytest.warns(FutureWarning, match=r"experimental_clear_caches.*zgrad 1\.0.*clear_graph_cache"):
        assert zgrad.run.experimental_clear_caches() is None
    assert zgrad.run.graph_cache_info()[1:] == (0, 0, 0)  # functions also counts other tests' ones
    loss(np.array([1.0]))
    assert traces == [1, 1]


@pytest.mark.parametrize("eager, graph", [(True, False), (False, True)])
def test_experimental_enable_eager_sets_graph(eager, graph):
    with pytest.warns(FutureWarning, match=r"zgrad 1\.0.*set_mode"):
        change = zgrad.RunManager.experimental_enable_eager(eager)
    assert zgrad.run.current_policy_graph() is graph
    assert zgrad.run.mode == {"autograd": True, "graph": graph}
    assert _policy.process_default().graph is graph  # a plain call persists, like set_mode
    del change


def test_experimental_enable_eager_default_turns_tracing_on():
    zgrad.run.set_mode(graph=False)
    with pytest.warns(FutureWarning, match="set_mode"):
        zgrad.RunManager.experimental_enable_eager()
    assert zgrad.run.current_policy_graph() is True


def test_experimental_enable_eager_works_on_the_instance_and_as_a_context_manager():
    zgrad.run.set_mode(autograd="numerical")
    with pytest.warns(FutureWarning, match="set_mode"):
        change = zgrad.run.experimental_enable_eager(True)
    with change:
        assert zgrad.run.mode == {"autograd": "numerical", "graph": False}
    assert zgrad.run.mode == {"autograd": "numerical", "graph": "auto"}
    with pytest.warns(FutureWarning, match="set_mode"):
        with zgrad.RunManager.experimental_enable_eager(eager=False):
            assert zgrad.run.current_policy_graph() is True
            with pytest.warns(FutureWarning, match="set_mode"):
                with zgrad.RunManager.experimental_enable_eager(eager=True):
                    assert zgrad.run.current_policy_graph() is False
            assert zgrad.run.current_policy_graph() is True
    assert zgrad.run.current_policy_graph() == "auto"


@pytest.mark.parametrize("eager", [1, "yes", None])
def test_experimental_enable_eager_rejects_non_bool_and_keeps_the_mode(eager):
    before = zgrad.run.mode
    with pytest.warns(FutureWarning, match="set_mode"):
        with pytest.raises(TypeError, match="eager must be True or False"):
            zgrad.RunManager.experimental_enable_eager(eager)
    assert zgrad.run.mode == before


@pytest.mark.parametrize("graph", [False, True, "auto", {"loss": False}, {"model": True}])
def test_experimental_is_eager_means_graph_is_false(graph):
    zgrad.run.set_mode(graph=graph)
    with pytest.warns(FutureWarning, match=r"zgrad 1\.0.*current_policy_graph"):
        value = zgrad.run.experimental_is_eager
    assert value is (zgrad.run.current_policy_graph() is False)
    assert value is (graph is False)


def test_experimental_is_eager_follows_a_block():
    with zgrad.run.set_mode(graph=False):
        with pytest.warns(FutureWarning, match="current_policy_graph"):
            assert zgrad.run.experimental_is_eager is True
    with pytest.warns(FutureWarning, match="current_policy_graph"):
        assert zgrad.run.experimental_is_eager is False


def test_each_deprecated_call_warns_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zgrad.run.experimental_clear_caches()
        _ = zgrad.run.experimental_is_eager
        zgrad.RunManager.experimental_enable_eager(False)
    assert [w.category for w in caught] == [FutureWarning] * 3
    assert all("zgrad 1.0" in str(w.message) for w in caught)
    # the warning points at the caller, not at zgrad's own code
    assert {os.path.basename(w.filename) for w in caught} == {os.path.basename(__file__)}


@pytest.mark.parametrize("name", DEPRECATED_NAMES)
def test_hasattr_of_deprecated_names(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert hasattr(zgrad.run, name)
        assert hasattr(zgrad.RunManager, name)
    assert name in dir(zgrad.run)


@pytest.mark.parametrize("name", ["experimental_clear_caches", "experimental_enable_eager"])
def test_hasattr_of_deprecated_methods_never_warns(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert hasattr(zgrad.run, name)


def test_hasattr_of_the_deprecated_property_under_the_error_filter():
    # Reading a property runs its getter, and hasattr only swallows AttributeError: with warnings
    # turned into errors, the FutureWarning of the getter escapes hasattr. Documented behaviour.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FutureWarning, match="experimental_is_eager"):
            hasattr(zgrad.run, "experimental_is_eager")


# --- the graph cache controls -------------------------------------------------------------------


def test_graph_cache_info_counts_functions_traces_hits_misses():
    loss, traces = _traced_counter()
    base_functions = zgrad.run.graph_cache_info().functions
    assert zgrad.run.graph_cache_info()[1:] == (0, 0, 0)
    loss(np.array([1.0]))
    loss(np.array([2.0]))
    loss(np.array([1.0, 2.0]))
    info = zgrad.run.graph_cache_info()
    assert (info.traces, info.hits, info.misses) == (2, 1, 2)
    assert info.functions == base_functions
    assert info._fields == ("functions", "traces", "hits", "misses")
    zgrad.run.clear_graph_cache()
    assert zgrad.run.graph_cache_info()[1:] == (0, 0, 0)
    assert len(traces) == 2


def test_set_graph_cache_size_bounds_traces_and_none_restores_the_default():
    loss, traces = _traced_counter()
    zgrad.run.set_graph_cache_size(2)
    assert _cache.get_max_size() == 2
    for n in (1, 2, 3):
        loss(np.ones(n))
    assert zgrad.run.graph_cache_info().traces == 2
    loss(np.ones(1))  # evicted as least recently used: traced again
    assert len(traces) == 4
    loss(np.ones(3))  # still cached
    assert len(traces) == 4
    zgrad.run.set_graph_cache_size(None)
    assert _cache.get_max_size() == _cache.DEFAULT_CACHE_SIZE


def test_shrinking_the_cache_size_evicts_at_once():
    loss, _ = _traced_counter()
    for n in (1, 2, 3):
        loss(np.ones(n))
    assert zgrad.run.graph_cache_info().traces == 3
    zgrad.run.set_graph_cache_size(1)
    assert zgrad.run.graph_cache_info().traces == 1


@pytest.mark.parametrize("size", [0, -3, 2.5, True, False, "big", 4.0])
def test_bad_graph_cache_size_raises_and_keeps_the_size(size):
    zgrad.run.set_graph_cache_size(7)
    with pytest.raises(ValueError, match=r"positive int, or None for the default \(32\); got"):
        zgrad.run.set_graph_cache_size(size)
    assert _cache.get_max_size() == 7


def test_repr_names_the_mode_and_cpus():
    text = repr(zgrad.run)
    assert text.startswith("<zgrad.RunManager mode=")
    assert "'graph': 'auto'" in text and f"n_cpu={zgrad.run.n_cpu}" in text
