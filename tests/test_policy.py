"""The policy value: validation of ``set_mode``, what reading it gives, changes inside a trace, chunksize."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad import _policy, _strategy_table, z
from zgrad.errors import PolicyInTraceError

BUILTIN_IS_AUTOGRAD = {"autodiff": True, "numerical": False, "minuit": False}
DEFAULT = {"autograd": True, "graph": "auto"}


def _expect_failure_keeps_mode(exc_type, match, **kwargs):
    """Call set_mode(**kwargs), expect it to fail, and check that nothing moved."""
    before = zgrad.run.mode
    default_before = _policy.process_default()
    with pytest.raises(exc_type, match=match):
        zgrad.run.set_mode(**kwargs)
    assert zgrad.run.mode == before
    assert _policy.process_default() is default_before


# --- the graph policy ---------------------------------------------------------------------------


def test_default_mode_value_and_immutability():
    assert dict(zgrad.RunManager.DEFAULT_MODE) == DEFAULT
    assert zgrad.run.mode == DEFAULT
    with pytest.raises(TypeError):
        zgrad.RunManager.DEFAULT_MODE["graph"] = False
    with pytest.raises(TypeError):
        del zgrad.RunManager.DEFAULT_MODE["autograd"]
    with pytest.raises(AttributeError):
        zgrad.RunManager.DEFAULT_MODE.update(graph=False)
    assert dict(zgrad.RunManager.DEFAULT_MODE) == DEFAULT
    # also after the policy changed, the class constant still names the starting point
    zgrad.run.set_mode(graph=False, autograd=False)
    assert dict(zgrad.RunManager.DEFAULT_MODE) == DEFAULT


@pytest.mark.parametrize("graph", [True, False, "auto"])
def test_graph_scalar_values(graph):
    zgrad.run.set_mode(graph=graph)
    current = zgrad.run.current_policy_graph()
    assert type(current) is type(graph)
    assert current == graph
    assert zgrad.run.mode == {"autograd": True, "graph": graph}


def test_graph_dict_value_and_kinds_it_does_not_name_follow_auto():
    zgrad.run.set_mode(graph={"loss": False, "model": True})
    assert zgrad.run.current_policy_graph() == {"loss": False, "model": True}
    mode = _policy.effective()
    assert mode.traces("loss") is False
    assert mode.traces("model") is True
    # kinds the dict does not name follow 'auto': traced, except 'model'
    for kind in ("gradient", "hessian", "sample", "tensor", "a-kind-never-seen"):
        assert mode.traces(kind) is True
    zgrad.run.set_mode(graph={"gradient": False})
    mode = _policy.effective()
    assert mode.traces("model") is False  # unnamed 'model' follows 'auto': eager
    assert mode.traces("gradient") is False
    assert mode.traces("loss") is True


def test_auto_runs_model_eagerly_and_traces_everything_else():
    mode = _policy.effective()
    assert mode.graph == "auto"
    assert mode.traces("model") is False
    for kind in ("loss", "gradient", "hessian", "sample", "tensor", "new-kind"):
        assert mode.traces(kind) is True


@pytest.mark.parametrize("graph, expected", [(True, True), (False, False)])
def test_bool_graph_applies_to_every_kind(graph, expected):
    zgrad.run.set_mode(graph=graph)
    for kind in ("model", "loss", "tensor", "new-kind"):
        assert _policy.effective().traces(kind) is expected


def test_auto_policy_seen_by_z_function_model_and_loss():
    calls = {"model": 0, "loss": 0}

    @z.function(wraps="model")
    def model(x):
        calls["model"] += 1
        return x * 2.0

    @z.function(wraps="loss")
    def loss(x):
        calls["loss"] += 1
        return x * 3.0

    x = np.array([1.0, 2.0])
    for _ in range(3):
        np.testing.assert_array_equal(np.asarray(model(x)), [2.0, 4.0])
        np.testing.assert_array_equal(np.asarray(loss(x)), [3.0, 6.0])
    assert calls == {"model": 3, "loss": 1}  # model eager on every call, loss traced once
    assert zgrad.run.graph_cache_info().traces == 1


def test_empty_dict_behaves_like_auto_but_reads_back_as_dict():
    zgrad.run.set_mode(graph={})
    assert zgrad.run.current_policy_graph() == {}
    assert _policy.effective().traces("model") is False
    assert _policy.effective().traces("loss") is True


def test_current_policy_graph_returns_a_fresh_dict():
    given = {"loss": False}
    zgrad.run.set_mode(graph=given)
    given["loss"] = True  # the caller's dict is not kept
    given["model"] = True
    first = zgrad.run.current_policy_graph()
    assert first == {"loss": False}
    first["loss"] = True
    first["sample"] = False
    second = zgrad.run.current_policy_graph()
    assert second == {"loss": False}
    assert second is not first


def test_mode_returns_a_copy():
    zgrad.run.set_mode(graph={"loss": False})
    mode = zgrad.run.mode
    mode["autograd"] = "numerical"
    mode["graph"]["loss"] = True
    mode["graph"]["model"] = True
    mode["extra"] = 1
    assert zgrad.run.mode == {"autograd": True, "graph": {"loss": False}}
    assert zgrad.run.mode is not zgrad.run.mode
    assert zgrad.run.current_policy_graph() == {"loss": False}


def test_setting_only_one_field_keeps_the_other():
    zgrad.run.set_mode(graph={"loss": False})
    zgrad.run.set_mode(autograd="numerical")
    assert zgrad.run.mode == {"autograd": "numerical", "graph": {"loss": False}}
    zgrad.run.set_mode(graph=True)
    assert zgrad.run.mode == {"autograd": "numerical", "graph": True}


# --- the gradient policy ------------------------------------------------------------------------


@pytest.mark.parametrize("autograd, expected", [(True, True), (False, False)])
def test_autograd_bool(autograd, expected):
    zgrad.run.set_mode(autograd=autograd)
    assert zgrad.run.mode["autograd"] is autograd
    assert zgrad.run.current_policy_autograd() is expected


@pytest.mark.parametrize("name", sorted(BUILTIN_IS_AUTOGRAD))
def test_autograd_builtin_names(name):
    zgrad.run.set_mode(autograd=name)
    assert zgrad.run.mode == {"autograd": name, "graph": "auto"}
    result = zgrad.run.current_policy_autograd()
    assert type(result) is bool
    assert result is BUILTIN_IS_AUTOGRAD[name]


def test_builtin_names_are_registered_from_the_start():
    assert set(BUILTIN_IS_AUTOGRAD) <= set(_strategy_table.names())


def test_strategy_registered_later_becomes_valid_and_invalid_again_after_removal():
    class _Strategy:
        is_autograd = True
        provides_gradient = True

        def value_gradient(self, func, params):  # pragma: no cover - never called here
            raise NotImplementedError

    name = "test-policy-custom"
    with pytest.raises(ValueError, match="test-policy-custom"):
        zgrad.run.set_mode(autograd=name)
    _strategy_table.add(name, _Strategy())
    try:
        zgrad.run.set_mode(autograd=name)
        assert zgrad.run.mode["autograd"] == name
        assert zgrad.run.current_policy_autograd() is True
        # the error for an unknown name lists the registered one too
        with pytest.raises(ValueError, match=r"test-policy-custom"):
            zgrad.run.set_mode(autograd="nope")
    finally:
        _policy.reset_to_default()
        _strategy_table.remove(name)
    assert name not in _strategy_table.names()
    _expect_failure_keeps_mode(ValueError, "not a registered gradient strategy", autograd=name)


def test_custom_strategy_is_autograd_is_reported_as_bool():
    class _Strategy:
        is_autograd = 0  # falsy, not a bool: the answer must still be a bool
        provides_gradient = False

    name = "test-policy-falsy"
    _strategy_table.add(name, _Strategy())
    try:
        with zgrad.run.set_mode(autograd=name):
            assert zgrad.run.current_policy_autograd() is False
    finally:
        _strategy_table.remove(name)


# --- errors, and the mode unchanged after each ---------------------------------------------------


@pytest.mark.parametrize("graph", ["eager", "graph", "AUTO", "", "True"])
def test_unknown_graph_string_raises_value_error(graph):
    _expect_failure_keeps_mode(
        ValueError, r"graph=.*not allowed.*True, False, 'auto', or a dict", graph=graph
    )


@pytest.mark.parametrize("autograd", ["autodif", "Autodiff", "", "finite"])
def test_unknown_strategy_name_raises_value_error_listing_the_names(autograd):
    _expect_failure_keeps_mode(
        ValueError,
        r"not a registered gradient strategy.*'autodiff', 'numerical', 'minuit'",
        autograd=autograd,
    )


@pytest.mark.parametrize("graph", [1, 0, 1.0, [True], ("loss", False), object(), b"auto"])
def test_wrong_graph_type_raises_type_error_naming_it(graph):
    _expect_failure_keeps_mode(TypeError, rf"\({type(graph).__name__}\)", graph=graph)


@pytest.mark.parametrize(
    "graph, named",
    [
        ({"loss": 1}, "int"),
        ({"loss": "yes"}, "str"),
        ({"loss": None}, "NoneType"),
        ({1: True}, "int"),
        ({"": True}, "str"),
        ({"loss": True, "model": 0.0}, "float"),
    ],
)
def test_bad_graph_dict_raises_type_error_naming_it(graph, named):
    _expect_failure_keeps_mode(TypeError, rf"\({named}\)", graph=graph)


@pytest.mark.parametrize("autograd", [1, 0, 1.0, ["autodiff"], object(), b"autodiff"])
def test_wrong_autograd_type_raises_type_error_naming_it(autograd):
    _expect_failure_keeps_mode(TypeError, rf"\({type(autograd).__name__}\).*allowed", autograd=autograd)


def test_set_mode_with_both_none_raises():
    _expect_failure_keeps_mode(ValueError, "both were None")
    _expect_failure_keeps_mode(ValueError, "both were None", graph=None, autograd=None)


def test_a_bad_field_leaves_the_good_field_unapplied():
    zgrad.run.set_mode(graph={"loss": False}, autograd="numerical")
    _expect_failure_keeps_mode(ValueError, "eager", graph="eager", autograd=True)
    _expect_failure_keeps_mode(ValueError, "nope", graph=True, autograd="nope")
    _expect_failure_keeps_mode(TypeError, "float", graph=False, autograd=1.5)


def test_failures_inside_a_block_leave_the_block_override_unchanged():
    with zgrad.run.set_mode(graph={"tensor": False}):
        _expect_failure_keeps_mode(ValueError, "eager", graph="eager")
        _expect_failure_keeps_mode(TypeError, "int", autograd=3)
        _expect_failure_keeps_mode(ValueError, "both were None")
        assert zgrad.run.mode == {"autograd": True, "graph": {"tensor": False}}
    assert zgrad.run.mode == DEFAULT


# --- changing the policy inside a trace ---------------------------------------------------------


def _enable_eager_ignoring_its_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        zgrad.RunManager.experimental_enable_eager(True)


def _changes_inside_a_trace():
    """Every way of changing the policy, each expected to raise inside a trace."""
    return {
        "set_mode graph": lambda: zgrad.run.set_mode(graph=False),
        "set_mode autograd": lambda: zgrad.run.set_mode(autograd="numerical"),
        "set_mode same value": lambda: zgrad.run.set_mode(graph="auto"),
        "set_mode dict": lambda: zgrad.run.set_mode(graph={"loss": False}),
        "experimental_enable_eager": _enable_eager_ignoring_its_warning,
    }


@pytest.mark.parametrize("change", list(_changes_inside_a_trace()))
def test_policy_change_inside_z_function_trace_raises(change):
    action = _changes_inside_a_trace()[change]
    seen = []

    @z.function(wraps="loss")
    def traced(x):
        try:
            action()
        except PolicyInTraceError as error:
            seen.append(str(error))
            raise
        return x + 1.0

    zgrad.run.set_mode(graph=True)
    before = zgrad.run.mode
    with pytest.raises(PolicyInTraceError, match="while a function was being traced"):
        traced(tf.constant(1.0))
    assert len(seen) == 1
    assert "set the mode before calling the traced function" in seen[0]
    assert zgrad.run.mode == before
    assert _policy.process_default().graph is True
    # the failed trace is not kept
    assert zgrad.run.graph_cache_info().traces == 0


@pytest.mark.parametrize("change", list(_changes_inside_a_trace()))
def test_policy_change_inside_plain_tf_function_raises(change):
    action = _changes_inside_a_trace()[change]

    @tf.function(autograph=False)  # AutoGraph would wrap the error into its StagingError
    def traced(x):
        action()
        return x + 1.0

    before = zgrad.run.mode
    with pytest.raises(PolicyInTraceError, match="while a function was being traced"):
        traced(tf.constant(1.0))
    assert zgrad.run.mode == before == DEFAULT


def test_policy_change_inside_autograph_tf_function_raises_with_the_message_kept():
    @tf.function
    def traced(x):
        zgrad.run.set_mode(graph=False)
        return x

    with pytest.raises(Exception, match="PolicyInTraceError: zgrad.run.set_mode.. was called while") as info:
        traced(tf.constant(1.0))
    assert "StagingError" in type(info.value).__name__
    assert zgrad.run.mode == DEFAULT


def test_policy_change_inside_a_trace_within_a_with_block_keeps_the_block_mode():
    @tf.function(autograph=False)
    def traced(x):
        zgrad.run.set_mode(autograd=False)
        return x

    with zgrad.run.set_mode(graph={"loss": True}, autograd="minuit"):
        with pytest.raises(PolicyInTraceError):
            traced(tf.constant(1.0))
        assert zgrad.run.mode == {"autograd": "minuit", "graph": {"loss": True}}
    assert zgrad.run.mode == DEFAULT


def test_errors_are_runtime_errors_and_zgrad_errors():
    assert issubclass(PolicyInTraceError, RuntimeError)
    assert issubclass(PolicyInTraceError, zgrad.errors.ZgradError)


@pytest.mark.parametrize("new", [10, None])
@pytest.mark.parametrize("where", ["z.function", "tf.function"])
def test_setting_chunksize_inside_a_trace_raises(where, new):
    zgrad.run.chunksize = 1000

    def body(x):
        zgrad.run.chunksize = new
        return x

    traced = z.function(body, wraps="loss") if where == "z.function" else tf.function(body, autograph=False)
    with pytest.raises(PolicyInTraceError, match="chunksize"):
        traced(tf.constant(1.0))
    assert zgrad.run.chunksize == 1000


def test_reading_the_policy_inside_a_trace_is_allowed():
    seen = []

    @z.function(wraps="loss")
    def traced(x):
        seen.append((zgrad.run.mode, zgrad.run.current_policy_graph(), zgrad.run.chunksize))
        return x

    with zgrad.run.set_mode(graph={"loss": True}):
        traced(tf.constant(1.0))
    assert seen == [({"autograd": True, "graph": {"loss": True}}, {"loss": True}, sys.maxsize)]


# --- chunksize ----------------------------------------------------------------------------------


def test_chunksize_default_reads_maxsize():
    assert zgrad.run.chunksize == sys.maxsize
    assert _policy.get_chunksize() is None


def test_chunksize_set_and_reset():
    zgrad.run.chunksize = 100_000
    assert zgrad.run.chunksize == 100_000
    zgrad.run.chunksize = 1
    assert zgrad.run.chunksize == 1
    zgrad.run.chunksize = None
    assert zgrad.run.chunksize == sys.maxsize
    assert _policy.get_chunksize() is None


@pytest.mark.parametrize(
    "value, error",
    [
        (0, ValueError),
        (-1, ValueError),
        (1.5, TypeError),
        (True, TypeError),
        (False, TypeError),
        ("10", TypeError),
        (10.0, TypeError),
        (np.float64(3.0), TypeError),
    ],
)
def test_bad_chunksize_raises_and_keeps_the_value(value, error):
    zgrad.run.chunksize = 500
    with pytest.raises(error, match=r"chunksize must be a positive int or None; got"):
        zgrad.run.chunksize = value
    assert zgrad.run.chunksize == 500


def test_chunksize_is_part_of_the_graph_cache_key():
    traces = []

    @z.function(wraps="loss")
    def loss(x):
        traces.append(zgrad.run.chunksize)
        return tf.reduce_sum(x)

    x = np.array([1.0, 2.0, 3.0])
    zgrad.run.chunksize = 10
    assert float(loss(x)) == 6.0
    zgrad.run.chunksize = 20
    assert float(loss(x)) == 6.0
    info_before = zgrad.run.graph_cache_info()
    zgrad.run.chunksize = 10
    assert float(loss(x)) == 6.0
    info_after = zgrad.run.graph_cache_info()
    assert traces == [10, 20]
    assert info_before.traces == 2 and info_before.misses == 2 and info_before.hits == 0
    assert info_after.traces == 2 and info_after.misses == 2 and info_after.hits == 1
    zgrad.run.chunksize = None
    loss(x)
    assert traces == [10, 20, sys.maxsize]


def test_policy_is_part_of_the_graph_cache_key():
    traces = []

    @z.function(wraps="loss")
    def loss(x):
        traces.append(1)
        return x * 2.0

    x = np.array([1.0])
    loss(x)
    with zgrad.run.set_mode(graph={"loss": True}):
        loss(x)
    with zgrad.run.set_mode(graph={"loss": False}):
        loss(x)  # eager: not traced, but the body ran
    loss(x)  # back to 'auto': reuses the first trace
    assert len(traces) == 3
    assert zgrad.run.graph_cache_info().traces == 2
    assert zgrad.run.graph_cache_info().hits == 1
