"""The policy-driven entry points (gradient, value_gradient, hessian, derivatives) and strategies by name."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad import _policy, _strategy_table, z
from zgrad.errors import GradientError

# f(x, y) = x^2 + 3 y at (1.5, 0.25): exact gradient (3, 3); forward differences with step 0.5 give
# (2x + 0.5, 3) = (3.5, 3). Every number here is a binary fraction, so comparisons are exact.
X0, Y0, STEP = 1.5, 0.25, 0.5
EXACT = [3.0, 3.0]
FORWARD = [3.5, 3.0]


class CountingForward:
    """Forward differences with a large step: numbers of its own, and a count of its calls."""

    is_autograd = False
    provides_gradient = True

    def __init__(self):
        self.calls = 0

    def value_gradient(self, func, params):
        self.calls += 1
        f0 = func()
        grads = []
        for p in params:
            p.assign_add(STEP)
            grads.append((func() - f0) / STEP)
            p.assign_sub(STEP)
        return f0, tf.stack(grads)


@pytest.fixture(autouse=True)
def _clean_registry():
    before = set(_strategy_table.names())
    yield
    _policy.reset_to_default()  # a user strategy still selected would refuse to be removed
    for name in set(_strategy_table.names()) - before:
        _strategy_table.remove(name)


@pytest.fixture
def xy():
    x, y = zgrad.Parameter("x", X0), zgrad.Parameter("y", Y0)
    return (lambda: x**2 + 3.0 * y), [x, y]


@pytest.fixture
def counting():
    strategy = CountingForward()
    zgrad.gradients.register("counting", strategy)
    return strategy


# --- policy wiring -----------------------------------------------------------------------------


def test_autograd_true_selects_the_autodiff_object():
    zgrad.run.set_mode(autograd=True)
    assert zgrad.run.current_gradient_strategy() is zgrad.gradients.get("autodiff")
    assert zgrad.run.current_policy_autograd() is True


def test_autograd_false_selects_the_numerical_object():
    zgrad.run.set_mode(autograd=False)
    strategy = zgrad.run.current_gradient_strategy()
    assert strategy is zgrad.gradients.get("numerical")
    assert (strategy.is_autograd, strategy.provides_gradient) == (False, True)
    assert zgrad.run.current_policy_autograd() is False


@pytest.mark.parametrize("name", ["autodiff", "numerical", "minuit"])
def test_builtin_names_select_their_objects(name):
    with zgrad.run.set_mode(autograd=name):
        assert zgrad.run.current_gradient_strategy() is zgrad.gradients.get(name)
        assert zgrad.run.current_policy_autograd() is (name == "autodiff")


@pytest.mark.parametrize("is_autograd", [True, False])
def test_current_policy_autograd_answers_the_custom_strategy(is_autograd):
    strategy = CountingForward()
    strategy.is_autograd = is_autograd
    zgrad.gradients.register("counting", strategy)
    zgrad.run.set_mode(autograd="counting")
    assert zgrad.run.current_policy_autograd() is is_autograd
    assert zgrad.run.current_gradient_strategy() is strategy


def test_selected_custom_strategy_changes_what_gradient_returns(xy, counting):
    func, params = xy
    assert zgrad.gradient(func, params).tolist() == EXACT
    assert counting.calls == 0
    zgrad.run.set_mode(autograd="counting")
    assert zgrad.gradient(func, params).tolist() == FORWARD
    assert counting.calls == 1
    value, grad = zgrad.value_gradient(func, params)
    assert (float(value), grad.tolist()) == (X0**2 + 3 * Y0, FORWARD)
    result = zgrad.derivatives(func, params)
    assert result.strategy == "counting" and result.gradient.tolist() == FORWARD
    assert result.n_evals is None and result.error is None
    assert counting.calls == 3
    # the strategy moved the Parameters and put them back
    assert [float(p.value()) for p in params] == [X0, Y0]
    zgrad.run.set_mode(autograd=True)
    assert zgrad.gradient(func, params).tolist() == EXACT
    assert counting.calls == 3


def test_custom_strategy_in_a_with_block_holds_only_inside_it(xy, counting):
    func, params = xy
    with zgrad.run.set_mode(autograd="counting"):
        assert zgrad.gradient(func, params).tolist() == FORWARD
    assert zgrad.gradient(func, params).tolist() == EXACT
    assert counting.calls == 1


def test_explicit_strategy_argument_wins_over_the_policy(xy, counting):
    func, params = xy
    zgrad.run.set_mode(autograd="counting")
    assert zgrad.gradient(func, params, strategy="autodiff").tolist() == EXACT
    assert zgrad.hessian(func, params, strategy="autodiff").tolist() == [[2.0, 0.0], [0.0, 0.0]]
    assert counting.calls == 0
    zgrad.run.set_mode(autograd=True)
    assert zgrad.gradient(func, params, strategy="counting").tolist() == FORWARD
    assert counting.calls == 1


def test_an_unregistered_strategy_object_can_be_passed_directly(xy):
    func, params = xy
    strategy = CountingForward()
    result = zgrad.derivatives(func, params, strategy=strategy)
    assert result.gradient.tolist() == FORWARD
    assert result.strategy == "CountingForward"
    assert strategy.calls == 1
    assert "CountingForward" not in zgrad.gradients.available()


def test_unknown_strategy_names_and_non_strategies_are_refused(xy):
    func, params = xy
    with pytest.raises(ValueError, match=r"Unknown gradient strategy 'nope'; registered strategies are"):
        zgrad.gradient(func, params, strategy="nope")
    with pytest.raises(TypeError, match=r"is not a gradient strategy: it lacks"):
        zgrad.gradient(func, params, strategy=object())


def test_policy_is_read_when_called_not_when_the_caller_was_made(xy, counting):
    func, params = xy
    with zgrad.run.set_mode(autograd="counting"):
        made_under_counting = functools.partial(zgrad.gradient, func, params)
    made_under_autodiff = functools.partial(zgrad.gradient, func, params)
    assert made_under_counting().tolist() == EXACT
    assert counting.calls == 0
    with zgrad.run.set_mode(autograd="counting"):
        assert made_under_autodiff().tolist() == FORWARD
    assert counting.calls == 1


def test_a_traced_caller_follows_the_policy_in_force_when_it_is_called(xy, counting):
    func, params = xy
    traces = []

    @z.function(wraps="gradient")
    def traced_gradient():
        traces.append(zgrad.run.mode["autograd"])  # moves only while tracing
        return zgrad.gradient(func, params)

    with zgrad.run.set_mode(graph=True):
        assert np.asarray(traced_gradient()).tolist() == EXACT
        with zgrad.run.set_mode(autograd="counting"):
            assert np.asarray(traced_gradient()).tolist() == FORWARD
        assert np.asarray(traced_gradient()).tolist() == EXACT
        with zgrad.run.set_mode(autograd="counting"):
            assert np.asarray(traced_gradient()).tolist() == FORWARD
    # one trace per policy; the counting strategy ran (in Python) only while its trace was built
    assert traces == [True, "counting"]
    assert counting.calls == 1


def test_numerical_policy_drives_the_entry_points():
    x = zgrad.Parameter("x", 0.5)
    zgrad.run.set_mode(autograd=False)
    result = zgrad.derivatives(lambda: tf.sin(x) * x, [x])
    assert result.strategy == "numerical"
    exact = np.cos(0.5) * 0.5 + np.sin(0.5)
    assert abs(result.gradient[0] - exact) <= 1e-7 * abs(exact)
    assert result.error is not None and np.shape(result.error) == (1,)
    assert 1 <= result.n_evals <= 30 * 1 + 1
    assert float(x.value()) == 0.5


# --- 'minuit' -------------------------------------------------------------------------------------


def test_minuit_provides_no_gradient_and_says_why(xy):
    func, params = xy
    strategy = zgrad.gradients.get("minuit")
    assert strategy.provides_gradient is False
    assert strategy.is_autograd is False
    explains = r"'minuit' strategy provides no gradient: with it, the minimizer \(Minuit\) differentiates"
    with pytest.raises(GradientError, match=explains):
        strategy.value_gradient(func, params)
    with pytest.raises(GradientError, match=explains):
        zgrad.gradient(func, params, strategy="minuit")
    with pytest.raises(GradientError, match=explains):
        zgrad.value_gradient(func, params, strategy="minuit")
    with pytest.raises(GradientError, match=r"'minuit' strategy provides no (gradient|Hessian)"):
        zgrad.hessian(func, params, strategy="minuit")
    with pytest.raises(GradientError, match=r"'minuit' strategy provides no Hessian: Minuit's HESSE"):
        strategy.hessian(func, params)


def test_minuit_selected_by_policy_makes_gradient_raise(xy):
    func, params = xy
    zgrad.run.set_mode(autograd="minuit")
    assert zgrad.run.current_policy_autograd() is False
    with pytest.raises(GradientError, match="the minimizer"):
        zgrad.gradient(func, params)


# --- derivatives and the result -------------------------------------------------------------------


@pytest.mark.parametrize("graph", [False, True])
def test_derivatives_with_hessian_fills_every_field(xy, graph):
    func, params = xy
    with zgrad.run.set_mode(graph=graph):
        result = zgrad.derivatives(func, params, hessian=True)
    assert isinstance(result, zgrad.GradientResult)
    assert result.value == X0**2 + 3 * Y0
    assert isinstance(result.gradient, np.ndarray) and result.gradient.tolist() == EXACT
    assert isinstance(result.hessian, np.ndarray) and result.hessian.tolist() == [[2.0, 0.0], [0.0, 0.0]]
    assert result.n_evals == 1
    assert result.strategy == "autodiff"
    assert result.status == ("ok", "ok") and result.ok
    assert result.error is None
    assert result.params == ("x", "y")
    with pytest.raises(AttributeError):
        result.value = 0.0  # frozen


def test_derivatives_without_hessian_leaves_it_none(xy):
    func, params = xy
    result = zgrad.derivatives(func, params)
    assert result.hessian is None
    assert result.gradient.tolist() == EXACT


def test_hessian_flag_must_be_a_bool(xy):
    func, params = xy
    with pytest.raises(TypeError, match="hessian must be True or False; got 1"):
        zgrad.derivatives(func, params, hessian=1)


class PairOnly:
    """A user strategy returning a plain (value, gradient) pair and lacking a Hessian."""

    is_autograd = False
    provides_gradient = True

    def __init__(self, gradient):
        self._gradient = gradient

    def value_gradient(self, func, params):
        return float(func()), list(self._gradient)


def test_strategy_without_hessian_method_raises_gradient_error(xy):
    func, params = xy
    zgrad.gradients.register("pair", PairOnly([1.0, 2.0]))
    with pytest.raises(
        GradientError, match=r"strategy 'pair' provides no Hessian \(it has no 'hessian' method\)"
    ):
        zgrad.hessian(func, params, strategy="pair")
    with pytest.raises(GradientError, match=r"provides no Hessian"):
        zgrad.derivatives(func, params, strategy=PairOnly([1.0, 2.0]), hessian=True)


def test_plain_pair_is_wrapped_in_a_result(xy):
    func, params = xy
    zgrad.gradients.register("pair", PairOnly([1.0, 2.0]))
    result = zgrad.derivatives(func, params, strategy="pair")
    assert isinstance(result, zgrad.GradientResult)
    assert result.value == X0**2 + 3 * Y0
    assert isinstance(result.gradient, np.ndarray) and result.gradient.tolist() == [1.0, 2.0]
    assert result.strategy == "pair" and result.params == ("x", "y")
    assert result.n_evals is None and result.status == ("ok", "ok")
    value, grad = zgrad.value_gradient(func, params, strategy="pair")
    assert (value, grad.tolist()) == (X0**2 + 3 * Y0, [1.0, 2.0])


@pytest.mark.parametrize("bad", [[1.0], [1.0, 2.0, 3.0], [[1.0, 2.0], [3.0, 4.0]]])
def test_wrong_gradient_shape_raises_value_error(xy, bad):
    func, params = xy
    with pytest.raises(
        ValueError, match=r"Strategy 'PairOnly' returned a gradient of shape .*; expected \(2,\)"
    ):
        zgrad.gradient(func, params, strategy=PairOnly(bad))


class BareHessian(PairOnly):
    """Returns the Hessian as a bare matrix, of a shape it is given."""

    def __init__(self, gradient, hessian):
        super().__init__(gradient)
        self._hessian = hessian

    def hessian(self, func, params):
        return np.array(self._hessian)


def test_bare_hessian_matrix_is_completed_and_symmetrized(xy):
    func, params = xy
    result = zgrad.derivatives(
        func, params, strategy=BareHessian([1.0, 2.0], [[1.0, 2.0], [4.0, 5.0]]), hessian=True
    )
    assert result.gradient.tolist() == [1.0, 2.0]
    assert result.hessian.tolist() == [[1.0, 3.0], [3.0, 5.0]]


def test_wrong_hessian_shape_raises_value_error(xy):
    func, params = xy
    with pytest.raises(ValueError, match=r"returned a Hessian of shape \(3, 3\); expected \(2, 2\)"):
        zgrad.hessian(func, params, strategy=BareHessian([1.0, 2.0], np.eye(3)))


def test_value_gradient_returning_neither_result_nor_pair_raises(xy):
    func, params = xy

    class Scalar(PairOnly):
        def value_gradient(self, func, params):
            return 3.0

    with pytest.raises(
        TypeError, match=r"must return a GradientResult or a \(value, gradient\) pair; got float"
    ):
        zgrad.gradient(func, params, strategy=Scalar([]))


# --- validation of func and params ----------------------------------------------------------------


def test_a_single_parameter_is_accepted():
    x = zgrad.Parameter("x", 2.0)
    assert zgrad.gradient(lambda: x**3, x).tolist() == [12.0]
    assert zgrad.hessian(lambda: x**3, x).tolist() == [[12.0]]


def test_params_tuple_is_accepted():
    x, y = zgrad.Parameter("x", 2.0), zgrad.Parameter("y", 1.0)
    assert zgrad.gradient(lambda: x * y, (x, y)).tolist() == [1.0, 2.0]


@pytest.mark.parametrize("empty", [[], ()])
def test_empty_params_raise_value_error(empty):
    with pytest.raises(ValueError, match="params is empty"):
        zgrad.gradient(lambda: tf.constant(1.0), empty)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([1.0], r"params must hold Parameters \(tf\.Variable\); got 1\.0 \(float\)"),
        ([tf.constant(1.0)], r"params must hold Parameters \(tf\.Variable\)"),
        ("x", r"params must be a sequence of Parameters; got 'x' \(str\)"),
        (1.0, r"params must be a sequence of Parameters; got 1\.0 \(float\)"),
    ],
)
def test_non_variable_params_raise_type_error(bad, match):
    with pytest.raises(TypeError, match=match):
        zgrad.gradient(lambda: tf.constant(1.0), bad)


def test_the_same_parameter_twice_raises_value_error():
    x = zgrad.Parameter("x", 1.0)
    with pytest.raises(ValueError, match="Parameter 'x' appears more than once in params"):
        zgrad.gradient(lambda: x**2, [x, x])


def test_two_parameters_with_one_name_raise_value_error():
    a, b = zgrad.Parameter("mu", 1.0), zgrad.Parameter("mu", 2.0)
    with pytest.raises(ValueError, match="params holds two different Parameters named 'mu'"):
        zgrad.gradient(lambda: a * b, [a, b])


@pytest.mark.parametrize("func", [None, 3.0, "loss"])
def test_non_callable_func_raises_type_error(func):
    x = zgrad.Parameter("x", 1.0)
    with pytest.raises(TypeError, match="func must be a zero-argument callable"):
        zgrad.gradient(func, [x])


# --- inside a user's trace ------------------------------------------------------------------------


def test_derivatives_inside_a_user_tf_function_hold_tensors(xy):
    func, params = xy
    inside = []

    @tf.function
    def traced():
        result = zgrad.derivatives(func, params, strategy="autodiff", hessian=True)
        inside.append(result)
        return result.gradient, result.hessian

    grad, hess = traced()
    (result,) = inside
    assert all(isinstance(t, tf.Tensor) for t in (result.value, result.gradient, result.hessian))
    assert grad.numpy().tolist() == EXACT
    assert hess.numpy().tolist() == [[2.0, 0.0], [0.0, 0.0]]
