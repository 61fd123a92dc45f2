"""The contracts between the minimizer adapters, the strategies and FitResult (issue 19)."""

from __future__ import annotations

import ast
import copy
import pickle
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad.typing import ErrorAnalysis, HessianStrategy

SAMPLE = np.random.default_rng(19).normal(1.5, 2.0, 400)


class BareHessian:
    """A user strategy whose ``hessian`` returns the bare matrix, as the protocol allows."""

    is_autograd = False
    provides_gradient = True

    def __init__(self) -> None:
        self.hessian_calls = 0

    def value_gradient(self, func, params):
        value, gradient = zgrad.value_gradient(func, params, strategy="autodiff")
        return float(value), np.asarray(gradient, dtype=float)

    def hessian(self, func, params):
        self.hessian_calls += 1
        return np.asarray(zgrad.hessian(func, params, strategy="autodiff"), dtype=float)


@pytest.fixture
def bare():
    strategy = BareHessian()
    zgrad.gradients.register("bare_hessian", strategy)
    yield strategy
    zgrad.gradients.unregister("bare_hessian")


def _gaussian_nll():
    """The NLL of :data:`SAMPLE` in mu and sigma, up to a constant; errordef 0.5."""
    mu, sigma = zgrad.Parameter("mu", 1.0), zgrad.Parameter("sigma", 1.5, lower=0.1, upper=10.0)

    def nll():
        return SAMPLE.size * tf.math.log(sigma) + tf.reduce_sum((SAMPLE - mu) ** 2) / (2.0 * sigma**2)

    return zgrad.losses.SimpleLoss(nll, [mu, sigma], errordef=0.5)


def test_a_bare_matrix_from_a_user_hessian_gives_a_valid_scipy_fit(bare):
    assert isinstance(bare, HessianStrategy)
    loss = _gaussian_nll()
    result = zgrad.minimize.Scipy(gradient="bare_hessian").minimize(loss)
    assert result.valid, result.message
    assert result.hessian_strategy == "bare_hessian" and bare.hessian_calls >= 1
    # closed forms at the maximum-likelihood point: the sample mean and (biased) standard deviation,
    # errors sigma / sqrt(n) and sigma / sqrt(2 n)
    n, sigma = SAMPLE.size, SAMPLE.std()
    assert result.values["mu"] == pytest.approx(SAMPLE.mean(), abs=1e-5 * sigma)
    assert result.values["sigma"] == pytest.approx(sigma, rel=1e-5)
    assert result.errors["mu"] == pytest.approx(sigma / np.sqrt(n), rel=1e-4)
    assert result.errors["sigma"] == pytest.approx(sigma / np.sqrt(2 * n), rel=1e-4)
    # the same matrix through FitResult.hesse, the adapter's hesse
    again = result.hesse(strategy="bare_hessian")
    assert again["mu"] == pytest.approx(result.errors["mu"], rel=1e-9)


def test_a_result_hands_minos_and_hesse_to_the_adapter_that_made_it():
    loss = _gaussian_nll()
    minuit = zgrad.minimize.Minuit()
    result = minuit.minimize(loss)
    assert result.adapter is minuit and isinstance(minuit, ErrorAnalysis)
    assert isinstance(zgrad.minimize.Scipy(), ErrorAnalysis)
    n, sigma = SAMPLE.size, SAMPLE.std()
    lower, upper = minuit.minos(result, "mu")["mu"]
    # the profile of mu: sigma^2(mu) = s^2 + (mu - m)^2, so n log(1 + d^2 / s^2) / 2 = 1/2 at the edges
    half_width = sigma * np.sqrt(np.expm1(1.0 / n))
    assert (lower, upper) == pytest.approx((-half_width, half_width), rel=1e-3)
    assert result.minos(["mu"])["mu"] == pytest.approx((lower, upper), rel=1e-9)
    assert minuit.hesse(result, strategy="numerical")["mu"] == pytest.approx(sigma / np.sqrt(n), rel=1e-5)


def test_copies_keep_the_adapter_and_drop_the_live_minuit():
    a = zgrad.Parameter("a", 0.0)
    loss = zgrad.losses.SimpleLoss(_Square(a), [a], errordef=1.0)
    result = zgrad.minimize.Minuit(strategy=2, tol=0.05).minimize(loss)
    assert result.minuit is result.info["minuit"] and result.minuit is not None
    for back in (pickle.loads(pickle.dumps(result)), copy.deepcopy(result)):
        assert back.minuit is None and "minuit" not in back.info
        assert (back.adapter.strategy, back.adapter.tol) == (2, 0.05)
        assert back.minos("a")["a"] == pytest.approx((-0.5, 0.5), rel=1e-6)


def test_a_result_without_an_adapter_says_so():
    a = zgrad.Parameter("a", 0.0)
    result = zgrad.minimize.Minuit().minimize(zgrad.losses.SimpleLoss(_Square(a), [a], errordef=1.0))
    bare = copy.copy(result)
    bare.adapter = None
    with pytest.raises(ValueError, match="minos: this FitResult holds no minimizer adapter"):
        bare.minos()
    with pytest.raises(ValueError, match="hesse: this FitResult holds no minimizer adapter"):
        bare.hesse()


def test_the_result_module_imports_no_minimizer():
    tree = ast.parse(Path(zgrad.minimize.result.__file__).read_text())
    runtime = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    modules = [n.module if isinstance(n, ast.ImportFrom) else a.name for n in runtime for a in n.names]
    assert "zgrad.typing" in modules  # the protocol it needs
    assert not [m for m in modules if m.startswith(("zgrad.minimize", "iminuit", "scipy"))], modules
    nested = [
        node
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef)
        for node in ast.walk(function)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    assert nested == []  # no import inside a method, the way the cycle with _minos was kept alive


class _Square:
    """(2 (a - 1))^2: minimum at 1, error 0.5 with errordef 1; picklable, unlike a lambda."""

    def __init__(self, a):
        self.a = a

    def __call__(self):
        return (2.0 * (self.a - 1.0)) ** 2
