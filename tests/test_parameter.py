"""Parameter: a tf.Variable with an exact name, validated limits and value, step size and floating flag."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad import z
from zgrad.params import Parameter


def test_is_a_tf_variable():
    p = Parameter("mu", 1.5)
    assert isinstance(p, tf.Variable)
    assert zgrad.Parameter is Parameter
    assert p.dtype == tf.float64
    assert p.shape == ()
    assert p.trainable


def test_tape_gradient_of_square():
    p = Parameter("mu", 1.5)
    with tf.GradientTape() as tape:
        y = p**2
    np.testing.assert_allclose(float(tape.gradient(y, p)), 3.0, rtol=1e-15)
    for value in (-2.0, 0.0, 7.25):
        p.set_value(value)
        with tf.GradientTape() as tape:
            y = p**2
        np.testing.assert_allclose(float(tape.gradient(y, p)), 2 * value, rtol=1e-15)


def test_name_is_exact_eagerly_and_in_traces():
    p = Parameter("mu", 1.0)
    assert p.name == "mu"
    names = []

    @tf.function
    def plain(param):
        names.append(param.name)
        return param * 1.0

    @z.function
    def traced(param):
        names.append(param.name)
        return param * 1.0

    plain(p)
    traced(p)
    assert names == ["mu", "mu"]
    assert Parameter("with space and/slash", 0.0).name == "with space and/slash"


def test_two_parameters_may_share_a_name():
    a, b = Parameter("mu", 1.0), Parameter("mu", 2.0)
    assert a.name == b.name == "mu"
    assert float(a.value()) == 1.0 and float(b.value()) == 2.0


@pytest.mark.parametrize("name", [None, "", 3, b"mu"])
def test_bad_name_raises_type_error(name):
    with pytest.raises(TypeError, match="Parameter name must be a non-empty str"):
        Parameter(name, 1.0)


def test_value_and_set_value():
    p = Parameter("mu", 1.0, lower=-5.0, upper=5.0)
    value = p.value()
    assert isinstance(value, tf.Tensor) and value.dtype == tf.float64
    assert float(value) == 1.0
    p.set_value(2.5)
    assert float(p.value()) == 2.5
    p.set_value(np.float32(-1.0))
    assert float(p.value()) == -1.0
    p.set_value(tf.constant(3.0, tf.float64))
    assert float(p.value()) == 3.0
    p.set_value(4)  # an int is a real number
    assert float(p.value()) == 4.0
    p.set_value(5.0)  # limits are inclusive
    p.set_value(-5.0)
    assert float(p.value()) == -5.0


def test_set_value_as_context_manager_restores():
    p = Parameter("mu", 1.0, lower=0.0, upper=10.0)
    with p.set_value(2.0) as entered:
        assert entered is p
        assert float(p.value()) == 2.0
        with p.set_value(3.0):
            assert float(p.value()) == 3.0
        assert float(p.value()) == 2.0
    assert float(p.value()) == 1.0


def test_set_value_context_restores_on_exception():
    p = Parameter("mu", 1.0)
    with pytest.raises(KeyError, match="inside"):
        with p.set_value(9.0):
            assert float(p.value()) == 9.0
            raise KeyError("inside")
    assert float(p.value()) == 1.0


def test_set_value_without_with_persists():
    p = Parameter("mu", 1.0)
    p.set_value(2.0)
    p.set_value(3.0)
    assert float(p.value()) == 3.0


@pytest.mark.parametrize("bad", [5.5, -5.000001, 100.0])
def test_value_outside_limits_raises_and_keeps_value(bad):
    p = Parameter("mu", 1.0, lower=-5.0, upper=5.0)
    with pytest.raises(ValueError, match=rf"Parameter 'mu': value {bad} is outside its limits \[-5.0, 5.0\]"):
        p.set_value(bad)
    assert float(p.value()) == 1.0
    with pytest.raises(ValueError, match="outside its limits"):
        with p.set_value(bad):
            pass  # never reached
    assert float(p.value()) == 1.0


def test_one_sided_limits():
    low = Parameter("sigma", 1.0, lower=0.0)
    with pytest.raises(ValueError, match=r"outside its limits \[0.0, inf\]"):
        low.set_value(-0.1)
    low.set_value(1e300)
    high = Parameter("x", -1.0, upper=0.0)
    with pytest.raises(ValueError, match=r"outside its limits \[-inf, 0.0\]"):
        high.set_value(0.5)
    assert (low.lower, low.upper, low.has_limits) == (0.0, None, True)
    assert (high.lower, high.upper) == (None, 0.0)
    assert not Parameter("free", 0.0).has_limits


def test_initial_value_outside_limits_raises():
    with pytest.raises(ValueError, match=r"value 2.0 is outside its limits \[0.0, 1.0\]"):
        Parameter("frac", 2.0, lower=0.0, upper=1.0)


@pytest.mark.parametrize(("lower", "upper"), [(1.0, 1.0), (2.0, 1.0), (math.inf, math.inf)])
def test_lower_not_below_upper_raises(lower, upper):
    with pytest.raises(ValueError, match="limits must satisfy lower < upper"):
        Parameter("mu", 1.0, lower=lower, upper=upper)


def test_nan_limit_raises():
    with pytest.raises(ValueError, match="lower must not be NaN"):
        Parameter("mu", 1.0, lower=math.nan)
    with pytest.raises(ValueError, match="upper must not be NaN"):
        Parameter("mu", 1.0, upper=math.nan)


@pytest.mark.parametrize("limit", ["0", True, [0.0], tf.constant(0.0)])
def test_limit_of_wrong_type_raises(limit):
    with pytest.raises(TypeError, match="lower must be a real number or None"):
        Parameter("mu", 1.0, lower=limit)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float64("nan")])
def test_non_finite_value_raises(bad):
    with pytest.raises(ValueError, match="value must be finite"):
        Parameter("mu", bad)
    p = Parameter("mu", 1.0)
    with pytest.raises(ValueError, match="value must be finite"):
        p.set_value(bad)
    assert float(p.value()) == 1.0


@pytest.mark.parametrize("bad", ["1.0", True, [1.0, 2.0], np.ones(2), None])
def test_non_scalar_value_raises_type_error(bad):
    p = Parameter("mu", 1.0)
    with pytest.raises(TypeError, match="Parameter 'mu': value must be a real scalar"):
        p.set_value(bad)
    assert float(p.value()) == 1.0


# --- step size --------------------------------------------------------------------------------
# Default rule: 1 % of |value|, 0.01 for a value of 0, and at most 1 % of the range when both
# limits are finite.


@pytest.mark.parametrize(
    ("value", "lower", "upper", "expected"),
    [
        (5.0, None, None, 0.05),
        (-200.0, None, None, 2.0),
        (0.0, None, None, 0.01),
        (1e-8, None, None, 1e-10),
        (100.0, 0.0, 200.0, 1.0),  # 1 % of |value| equals 1 % of the range
        (100.0, 99.0, 101.0, 0.02),  # the range caps it
        (0.0, -0.5, 0.5, 0.01),
        (0.0, -0.1, 0.1, 0.002),  # capped also for a zero value
        (50.0, 0.0, None, 0.5),  # one finite limit: no cap
        (3.0, -math.inf, math.inf, 0.03),
    ],
)
def test_default_step_size_rule(value, lower, upper, expected):
    p = Parameter("p", value, lower=lower, upper=upper)
    np.testing.assert_allclose(p.step_size, expected, rtol=1e-14)


def test_explicit_step_size_is_kept():
    assert Parameter("p", 1.0, step_size=0.3).step_size == 0.3
    assert Parameter("p", 1.0, lower=0.0, upper=2.0, step_size=5.0).step_size == 5.0


@pytest.mark.parametrize("step", [0.0, -0.1, math.inf, math.nan])
def test_bad_step_size_raises_value_error(step):
    with pytest.raises(ValueError, match="step_size"):
        Parameter("p", 1.0, step_size=step)


def test_step_size_of_wrong_type_raises_type_error():
    with pytest.raises(TypeError, match="step_size must be a real number or None"):
        Parameter("p", 1.0, step_size="0.1")


# --- floating flag ----------------------------------------------------------------------------


def test_floating_flag():
    p = Parameter("p", 1.0)
    assert p.floating is True
    assert Parameter("q", 1.0, floating=False).floating is False
    p.floating = False
    assert p.floating is False


@pytest.mark.parametrize("flag", [1, 0, "yes", None, np.bool_(True)])
def test_floating_must_be_bool(flag):
    with pytest.raises(TypeError, match=f"floating must be True or False; got {flag!r}"):
        Parameter("p", 1.0, floating=flag)
    p = Parameter("p", 1.0)
    with pytest.raises(TypeError, match="floating must be True or False"):
        p.floating = flag
    assert p.floating is True


# --- use in computations ----------------------------------------------------------------------


def test_arithmetic_with_tensors_and_arrays():
    p = Parameter("p", 2.0)
    x = tf.constant([1.0, 2.0, 3.0], tf.float64)
    np.testing.assert_array_equal((p * x).numpy(), [2.0, 4.0, 6.0])
    np.testing.assert_array_equal((x - p).numpy(), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(tf.exp(p * 0.0).numpy(), 1.0)
    np.testing.assert_array_equal((np.array([1.0, 2.0]) + p).numpy(), [3.0, 4.0])
    assert float(p / 4.0) == 0.5
    assert float(tf.convert_to_tensor(p)) == 2.0
    assert zgrad.run(p) == 2.0


def test_float32_parameter():
    p = Parameter("p", 0.5, dtype=tf.float32)
    assert p.dtype == tf.float32
    np.testing.assert_array_equal((p * tf.ones(2)).numpy(), [0.5, 0.5])


def test_set_value_inside_a_trace_raises_runtime_error():
    p = Parameter("mu", 1.0)

    @z.function
    def zgrad_traced():
        p.set_value(2.0)
        return p * 1.0

    @tf.function
    def tf_traced():
        p.set_value(2.0)
        return p * 1.0

    with pytest.raises(RuntimeError, match=r"Parameter 'mu': set_value works eagerly only"):
        zgrad_traced()
    with pytest.raises(RuntimeError, match=r"use param.assign\(value\)"):
        tf_traced()
    assert float(p.value()) == 1.0


def test_repr():
    assert repr(Parameter("mu", 0.25)) == "<zgrad.Parameter 'mu' value=0.25 floating=True>"
    assert (
        repr(Parameter("f", 0.5, lower=0.0, upper=1.0, floating=False))
        == "<zgrad.Parameter 'f' value=0.5 limits=(0.0, 1.0) floating=False>"
    )
    assert (
        repr(Parameter("s", 1.0, lower=0.0))
        == "<zgrad.Parameter 's' value=1.0 limits=(0.0, None) floating=True>"
    )
