"""Objects that travel: Parameters, Spaces, models, losses and fit results pickle and deep-copy.

A round trip gives an equal, working object (same values, limits, names; same pdf, samples,
loss values and gradients); a deep copy is independent of the original; Parameters shared
within one pickle stay shared; a loss over a callable that cannot travel says so.
"""

from __future__ import annotations

import copy
import functools
import multiprocessing
import operator
import pickle

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import zgrad

P = zgrad.Parameter
OBS = zgrad.Space("x", limits=(-5.0, 5.0))
X = np.linspace(-4.5, 4.5, 19)


def _pickled(obj):
    return pickle.loads(pickle.dumps(obj))


ROUND_TRIPS = {"pickle": _pickled, "deepcopy": copy.deepcopy}


def _quadratic(a, b):
    """chi2 with minimum at a = 1, b = -2 and errors 0.5 and 2 (errordef 1)."""
    return ((a - 1.0) / 0.5) ** 2 + ((b + 2.0) / 2.0) ** 2


def _line(a, x):
    return a * x


def _reads_module_globals():
    """A zero-argument module-level function: it could only reach Parameters through globals."""
    return tf.constant(0.0, tf.float64)


# --- Parameter ---------------------------------------------------------------------------------


def _state(p):
    return (p.name, float(p.numpy()), p.lower, p.upper, p.step_size, p.floating, p.dtype)


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_parameter_round_trip_keeps_its_state(how):
    param = P("mu", 0.25, lower=-1.0, upper=2.0, step_size=0.03, floating=False)
    param.set_value(0.75)
    back = ROUND_TRIPS[how](param)
    assert type(back) is P and back is not param
    assert _state(back) == ("mu", 0.75, -1.0, 2.0, 0.03, False, tf.float64)
    with pytest.raises(ValueError, match="outside its limits"):
        back.set_value(2.5)  # the limits still hold on the copy


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_float32_parameter_at_a_rounded_limit_round_trips_exactly(how):
    # float32(0.1) lies just above 0.1: rebuilding must not refuse its own value
    param = P("f", 0.1, lower=0.0, upper=0.1, dtype=tf.float32)
    back = ROUND_TRIPS[how](param)
    assert back.dtype == tf.float32
    assert back.numpy() == param.numpy() == np.float32(0.1)


def test_value_set_outside_the_limits_by_assign_round_trips_exactly():
    param = P("s", 1.0, lower=0.0, upper=2.0)
    param.assign(2.5)  # assign checks no limits
    assert float(_pickled(param).numpy()) == 2.5


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_unpickled_parameter_is_differentiable(how):
    back = ROUND_TRIPS[how](P("a", 3.0))
    with tf.GradientTape() as tape:
        y = back * back
    assert float(tape.gradient(y, back)) == 6.0


@pytest.mark.parametrize("copier", [copy.deepcopy, copy.copy])
def test_copy_of_a_parameter_is_independent(copier):
    param = P("mu", 0.5, lower=0.0, upper=1.0)
    other = copier(param)
    other.set_value(0.9)
    assert float(param.numpy()) == 0.5 and float(other.numpy()) == 0.9
    param.set_value(0.1)
    assert float(other.numpy()) == 0.9


def test_deepcopy_keeps_one_parameter_one_object():
    param = P("mu", 0.5)
    first, second = copy.deepcopy([param, param])
    assert first is second and first is not param


def test_parameter_refuses_to_pickle_inside_a_trace():
    param = P("mu", 0.5)

    @tf.function
    def traced():
        pickle.dumps(param)
        return param + 1.0

    with pytest.raises(RuntimeError, match="eagerly"):
        traced()


# --- Space and models --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_space_round_trip_is_equal(how):
    back = ROUND_TRIPS[how](OBS)
    assert back == OBS and back.name == "x" and back.limits == (-5.0, 5.0)


def _models():
    mu, sigma = P("mu", 0.3, -1.0, 1.0), P("sigma", 1.2, 0.1, 5.0)
    gauss = zgrad.models.Gauss(OBS, mu, sigma)
    expo = zgrad.models.Exponential(OBS, P("lam", -0.2))
    knots = np.linspace(-5.0, 5.0, 21)
    sample = np.random.default_rng(7).normal(size=300)
    return {
        "gauss": gauss,
        "exponential": expo,
        "crystalball": zgrad.models.CrystalBall(OBS, mu, sigma, P("alpha", 1.5), P("n", 3.0)),
        "double_crystalball": zgrad.models.DoubleCrystalBall(
            OBS, mu, sigma, P("al", 1.2), P("nl", 2.5), P("ar", 1.8), P("nr", 4.0)
        ),
        "polynomial": zgrad.models.Polynomial(OBS, [P("c1", 0.1), P("c2", 0.05)]),
        "sum_fracs": zgrad.models.Sum([gauss, expo], fracs=[P("frac", 0.4, 0.0, 1.0)]),
        "sum_yields": zgrad.models.Sum([gauss, expo], yields=[P("n_sig", 100.0), P("n_bkg", 200.0)]),
        "spline": zgrad.models.SplineShape(OBS, knots, np.exp(-0.25 * knots**2), shift=P("d", 0.1)),
        "kde": zgrad.models.KDEShape(OBS, sample, scale=P("scale", 1.1)),
    }


MODEL_NAMES = list(_models())


@pytest.mark.parametrize("how", ROUND_TRIPS)
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_round_trip_evaluates_and_samples_identically(name, how):
    model = _models()[name]
    back = ROUND_TRIPS[how](model)
    assert type(back) is type(model) and back.obs == model.obs and back.name == model.name
    assert [p.name for p in back.get_params(None)] == [p.name for p in model.get_params(None)]
    assert not any(b is p for b in back.get_params(None) for p in model.get_params(None))
    np.testing.assert_array_equal(np.asarray(back.pdf(X)), np.asarray(model.pdf(X)))
    assert float(back.integrate((-1.0, 2.0))) == float(model.integrate((-1.0, 2.0)))
    np.testing.assert_array_equal(back.sample(50, seed=3), model.sample(50, seed=3))


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_parameter_shared_by_two_models_stays_one_object(how):
    mu = P("mu", 0.0)
    gauss = zgrad.models.Gauss(OBS, mu, P("s1", 1.0))
    wide = zgrad.models.Gauss(OBS, mu, P("s2", 3.0))
    model = zgrad.models.Sum([gauss, wide], fracs=[P("f", 0.5, 0.0, 1.0)])
    g2, w2, m2 = ROUND_TRIPS[how]((gauss, wide, model))
    assert g2.params["mu"] is w2.params["mu"] is m2.params["mu"]
    assert m2.pdfs[0] is g2 and m2.pdfs[1] is w2
    g2.params["mu"].set_value(1.0)  # moves every model that shares it, and not the original
    truncated = stats.norm.pdf(0.0) / 3.0 / (stats.norm.cdf(4.0 / 3.0) - stats.norm.cdf(-2.0))
    assert float(w2.pdf([1.0])[0]) == pytest.approx(truncated, rel=1e-12)
    assert float(mu.numpy()) == 0.0


def test_deep_copy_of_a_model_is_independent():
    model = _models()["gauss"]
    before = np.asarray(model.pdf(X))
    other = copy.deepcopy(model)
    other.params["mu"].set_value(-0.5)
    np.testing.assert_array_equal(np.asarray(model.pdf(X)), before)
    assert not np.array_equal(np.asarray(other.pdf(X)), before)


# --- losses ------------------------------------------------------------------------------------


def _losses():
    mu, sigma = P("mu", 0.3, -1.0, 1.0), P("sigma", 1.2, 0.1, 5.0)
    gauss = zgrad.models.Gauss(OBS, mu, sigma)
    a, b = P("a", 3.0), P("b", 0.5)
    constraint = zgrad.losses.GaussianConstraint(mu, observed=0.0, sigma=0.5)
    binned = zgrad.losses.BinnedNLL(
        gauss, [10, 30, 12], [-3.0, -1.0, 1.0, 3.0], weights=[1.0, 0.5, 2.0], constraints=[constraint]
    )
    x = np.array([-1.0, 0.0, 1.5])
    return {
        "binned": binned,
        "chi2_model": zgrad.losses.Chi2(gauss, x, [0.2, 0.35, 0.1], [0.05, 0.05, 0.02]),
        "chi2_partial": zgrad.losses.Chi2(functools.partial(_line, a), x, 2 * x, np.ones(3), params=[a]),
        # a model's z.function method travels as its model and the method's name, like a bound method
        "chi2_bound_pdf": zgrad.losses.Chi2(
            gauss.pdf, x, [0.2, 0.35, 0.1], [0.05, 0.05, 0.02], params=gauss.get_params()
        ),
        "simple_partial": zgrad.losses.SimpleLoss(functools.partial(_quadratic, a, b), [a, b], 1.0),
        "sum": binned + zgrad.losses.BinnedNLL(gauss, [4, 6], [-1.0, 0.0, 1.0]),
        "unbinned": zgrad.losses.UnbinnedNLL(
            gauss, [-0.7, 0.1, 0.4, 2.0], weights=[1.0, 0.5, 2.0, 1.5], constraints=[constraint]
        ),
        "extended": zgrad.losses.ExtendedUnbinnedNLL(
            zgrad.models.Sum([gauss], yields=[P("n", 5.0, 0.0, 100.0)]), [-0.7, 0.1, 0.4]
        ),
    }


@pytest.mark.parametrize("how", ROUND_TRIPS)
@pytest.mark.parametrize(
    "name",
    ["binned", "chi2_model", "chi2_partial", "chi2_bound_pdf", "simple_partial", "sum", "unbinned"]
    + ["extended"],
)
def test_loss_round_trip_has_equal_value_and_gradient(name, how):
    loss = _losses()[name]
    back = ROUND_TRIPS[how](loss)
    assert type(back) is type(loss) and back.errordef == loss.errordef
    assert [p.name for p in back.params] == [p.name for p in loss.params]
    assert back.value() == loss.value()
    np.testing.assert_array_equal(back.gradient(), loss.gradient())
    # the copy reads its own Parameters: moving them changes its value, not the original's
    before = loss.value()
    back.params[0].set_value(float(back.params[0].numpy()) + 0.1)
    assert back.value() != before and loss.value() == before


def test_constraint_round_trip_shares_the_loss_parameter():
    loss = _losses()["binned"]
    back = _pickled(loss)
    (constraint,) = back.constraints
    assert constraint.param is back.params[0] and constraint.param.name == "mu"
    assert (constraint.observed, constraint.sigma) == (0.0, 0.5)
    assert float(constraint.chi2()) == pytest.approx((0.3 / 0.5) ** 2, rel=1e-12)


def test_sum_loss_round_trip_keeps_its_parts_sharing_the_model():
    loss = _losses()["sum"]
    back = _pickled(loss)
    first, second = back.losses
    assert len(back.losses) == 2 and first._model is second._model


def _local_loss_function(a):
    def local():
        return a * a

    return local


class _Quadratic:
    """A callable object of a module-level class: it carries its Parameter when pickled."""

    def __init__(self, a):
        self.a = a

    def __call__(self):
        return (self.a - 1.0) ** 2


UNPORTABLE = {
    "lambda": (lambda a: lambda: a * a, "<lambda>", "a lambda"),
    "local": (_local_loss_function, "<locals>.local", "a lambda or a function defined inside"),
    "globals": (lambda a: _reads_module_globals, "_reads_module_globals", "module globals"),
    "partial_of_lambda": (
        lambda a: functools.partial(lambda p: p * p, a),
        "<lambda>",
        "a lambda or a function defined inside",
    ),
}


@pytest.mark.parametrize("how", ROUND_TRIPS)
@pytest.mark.parametrize("kind", UNPORTABLE)
def test_simple_loss_over_an_unportable_function_names_it(kind, how):
    a = P("a", 2.0)
    make, name, reason = UNPORTABLE[kind]
    loss = zgrad.losses.SimpleLoss(make(a), [a], 1.0)
    before = loss.value()
    with pytest.raises(TypeError, match="SimpleLoss cannot be pickled or deep-copied") as info:
        ROUND_TRIPS[how](loss)
    message = str(info.value)
    assert name in message and reason in message and "functools.partial" in message
    assert loss.value() == before  # left working


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_chi2_over_a_lambda_names_it(how):
    a = P("a", 1.0)
    x = np.array([0.0, 1.0, 2.0])
    loss = zgrad.losses.Chi2(lambda t: a * t, x, 2 * x, np.ones(3), params=[a])
    with pytest.raises(
        TypeError, match=r"Chi2 cannot be pickled .* its model .*<lambda>.*functools\.partial"
    ):
        ROUND_TRIPS[how](loss)


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_simple_loss_over_a_callable_object_travels_with_its_parameter(how):
    a = P("a", 3.0)
    back = ROUND_TRIPS[how](zgrad.losses.SimpleLoss(_Quadratic(a), [a], 1.0))
    assert back.value() == 4.0 and back.params[0] is not a
    back.params[0].set_value(2.0)  # the callable reads the copy's Parameter
    assert back.value() == 1.0 and float(a.numpy()) == 3.0


# --- FitResult ---------------------------------------------------------------------------------


def _fit(minimizer):
    a, b = P("a", 0.0, lower=-5.0, upper=5.0), P("b", 1.0)
    loss = zgrad.losses.SimpleLoss(functools.partial(_quadratic, a, b), [a, b], errordef=1.0)
    return minimizer.minimize(loss)


@pytest.fixture(scope="module")
def minuit_result():
    return _fit(zgrad.minimize.Minuit())


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_fit_result_round_trip_keeps_the_numbers(minuit_result, how):
    result = minuit_result
    assert result.valid and "minuit" in result.info
    back = ROUND_TRIPS[how](result)
    assert dict(back.values) == dict(result.values) and dict(back.errors) == dict(result.errors)
    np.testing.assert_array_equal(back.covariance, result.covariance)
    assert (back.fmin, back.edm, back.valid, back.nfcn, back.ngrad) == (
        result.fmin,
        result.edm,
        result.valid,
        result.nfcn,
        result.ngrad,
    )
    # closed form: minimum at (1, -2), errors 0.5 and 2
    assert back.values["a"] == pytest.approx(1.0, abs=1e-3) and back.errors["b"] == pytest.approx(2.0, 1e-6)
    assert "minuit" not in back.info and back.info["nhess"] == result.info["nhess"]
    assert "minuit" in result.info  # the original keeps its Minuit
    assert all(p is q for p, q in zip(back.params, back.loss.params, strict=True))
    assert [p.name for p in back.params] == ["a", "b"]


def test_minos_after_unpickling_starts_a_new_minuit(minuit_result):
    back = _pickled(minuit_result)
    errors = back.minos("a", "b")
    expected = minuit_result.minos("a", "b")
    for name, sigma in (("a", 0.5), ("b", 2.0)):
        assert errors[name] == pytest.approx((-sigma, sigma), rel=1e-4)
        assert errors[name] == pytest.approx(expected[name], rel=1e-3)
    assert float(back.params[0].numpy()) == back.values["a"]  # left at the best fit


def test_deep_copy_of_a_fit_result_is_independent(minuit_result):
    other = copy.deepcopy(minuit_result)
    other.params[0].set_value(4.0)
    assert float(minuit_result.params[0].numpy()) == minuit_result.values["a"]
    assert other.loss.value() != minuit_result.loss.value()


def test_scipy_fit_result_round_trips():
    result = _fit(zgrad.minimize.Scipy())
    back = _pickled(result)
    assert dict(back.values) == dict(result.values) and back.info == result.info
    np.testing.assert_array_equal(back.covariance, result.covariance)


def test_fit_result_over_a_lambda_loss_names_the_loss():
    a = P("a", 0.0)
    result = zgrad.minimize.Minuit().minimize(zgrad.losses.SimpleLoss(lambda: (a - 1.0) ** 2, [a], 1.0))
    with pytest.raises(TypeError, match="SimpleLoss cannot be pickled"):
        pickle.dumps(result)


# --- a fresh process ---------------------------------------------------------------------------


@pytest.mark.subprocess
def test_objects_pickled_here_evaluate_in_a_spawned_process():
    mu = P("mu", 0.0, lower=-1.0, upper=1.0)
    mu.set_value(0.4)
    narrow = zgrad.models.Gauss(OBS, mu, P("s1", 1.0))
    wide = zgrad.models.Gauss(OBS, mu, P("s2", 2.0))
    model = zgrad.models.Sum([narrow, wide], fracs=[P("f", 0.3, 0.0, 1.0)])
    # the loss rebuilds only if mu comes back as one object (two Parameters named 'mu' raise)
    loss = zgrad.losses.BinnedNLL(model, [5, 20, 7], [-3.0, -1.0, 1.0, 3.0])
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        value = pool.apply(operator.methodcaller("numpy"), (mu,))
        pdf = pool.apply(operator.methodcaller("pdf", X), (model,))
        nll = pool.apply(operator.methodcaller("value"), (loss,))
    assert float(value) == 0.4
    np.testing.assert_allclose(np.asarray(pdf), np.asarray(model.pdf(X)), rtol=1e-14)
    assert nll == pytest.approx(loss.value(), rel=1e-14)


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_a_crosscheck_report_travels_as_its_numbers(how):
    x = P("x", 1.0)
    report = zgrad.crosscheck(lambda: x**3, [x])  # a lambda: the report leaves it behind
    back = ROUND_TRIPS[how](report)
    assert back.ok == report.ok and back.to_json() == report.to_json()
    assert [r.value for r in back.rows] == [r.value for r in report.rows]
    with pytest.raises(ValueError, match="holds no function to scan"):
        back.precision_scan("x")
    assert report.precision_scan("x").x.size == 15  # the original keeps its function
