"""The public surface, pinned: adding or removing a public name must be a decision."""

from __future__ import annotations

import inspect

import zgrad
from zgrad import z

PUBLIC = {
    "GradientResult",
    "Parameter",
    "RunManager",
    "Space",
    "ToyStudy",
    "checks",
    "crosscheck",
    "derivatives",
    "errors",
    "gradient",
    "gradients",
    "hessian",
    "losses",
    "minimize",
    "models",
    "run",
    "set_values",
    "toys",
    "typing",
    "value_gradient",
    "z",
}


def test_top_level_names_are_exactly_the_public_ones():
    assert set(zgrad.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(zgrad, name) is not None


def test_subpackage_surfaces():
    assert set(z.__all__) == {"function", "GraphFunction", "random", "py_function"}
    assert set(zgrad.gradients.__all__) == {"GradientResult", "available", "get", "register", "unregister"}
    assert {"Gauss", "Exponential", "CrystalBall", "DoubleCrystalBall", "Polynomial", "Sum"} <= set(
        zgrad.models.__all__
    )
    assert {"SplineShape", "KDEShape"} <= set(zgrad.models.__all__)
    assert {"UnbinnedNLL", "ExtendedUnbinnedNLL", "BinnedNLL", "Chi2", "SimpleLoss"} <= set(
        zgrad.losses.__all__
    )
    assert {"Minuit", "Scipy", "FitResult"} <= set(zgrad.minimize.__all__)


def test_signatures_of_the_contract():
    """The signatures that DESIGN.md promises (users and the validation suite rely on them)."""
    sig = inspect.signature
    assert (
        str(sig(zgrad.run.set_mode))
        == "(graph: 'Any' = None, autograd: 'Any' = None) -> '_policy.ModeChange'"
    )
    assert list(sig(zgrad.gradient).parameters) == ["func", "params", "strategy"]
    assert list(sig(zgrad.derivatives).parameters) == ["func", "params", "strategy", "hessian"]
    assert list(sig(zgrad.crosscheck).parameters) == [
        "loss_or_callable",
        "params",
        "strategies",
        "points",
        "reference",
        "tolerances",
        "hessian",
        "x0",
        "gradient",
        "names",
        "limits",
        "scans",
    ]
    assert list(sig(z.py_function).parameters) == [
        "func", "inp", "Tout", "gradient", "elementwise", "name", "threads"
    ]
    assert list(sig(zgrad.minimize.Minuit).parameters) == ["gradient", "strategy", "tol"]
    assert list(sig(zgrad.minimize.Scipy).parameters)[:2] == ["method", "gradient"]
    assert list(sig(zgrad.Parameter.__init__).parameters)[1:7] == [
        "name",
        "value",
        "lower",
        "upper",
        "step_size",
        "floating",
    ]
    assert list(sig(zgrad.losses.Chi2).parameters)[:5] == ["model", "x", "y", "yerr", "params"]
    assert list(sig(zgrad.losses.SimpleLoss).parameters)[:3] == ["func", "params", "errordef"]
    assert dict(zgrad.RunManager.DEFAULT_MODE) == {"autograd": True, "graph": "auto"}
    toys = sig(zgrad.toys)
    keywords = {
        "n_events": None,
        "truth": None,
        "minimizer": None,
        "strategy": None,
        "seed": 0,
        "workers": None,
        "scheduler": None,
        "progress": None,
    }
    assert list(toys.parameters) == ["model", "n_toys", *keywords]
    named = [p for p in toys.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert {p.name: p.default for p in named} == keywords
