"""The protocols by which zgrad's layers find each other's capabilities.

No class here is a base to inherit from: an object satisfies a protocol by having its
members, and code that uses an optional capability asks ``isinstance(obj, Protocol)``
(every protocol is :func:`~typing.runtime_checkable`, which looks for the names only,
not at their signatures). This module is the one place where those names are written
down; the code that probes for them imports the protocol instead of spelling the name.

Who offers what, and who asks:

=================================  =========================================  ==============================
protocol                           offered by                                 asked by
=================================  =========================================  ==============================
:class:`GradientStrategy`          every registered strategy                  the registry, ``derivatives``,
                                                                              the minimizer adapters
:class:`HessianStrategy`           ``'autodiff'``, ``'numerical'``, users';   ``derivatives``, adapters
                                   ``'minuit'`` (raises, naming the others)
:class:`BudgetedStrategy`          ``'numerical'``                            minimizer adapters (``'fast'``)
:class:`BatchedValues`             every zgrad loss                           ``'numerical'``
:class:`FusedValueGradient`        every zgrad loss                           ``'autodiff'``
:class:`ExactHessian`              every zgrad loss                           ``'autodiff'``
:class:`EvaluatesAtPoint`          every zgrad loss                           minimizer adapters
:class:`CompiledAtPoint`           every zgrad loss (None without a kernel)   minimizer adapters
:class:`CountsEvents`              unbinned NLLs                              minimizer adapters
:class:`BridgesNumpy`              models and losses                          minimizer adapters
:class:`LogDensityJets`            ``Gauss``, ``Exponential``                 the closed-form NLL Hessian
:class:`MixtureJets`               ``Sum``                                    the closed-form NLL Hessian
:class:`Bounded`                   Parameters (zgrad's, zfit's)               :func:`limits_of`: strategies,
                                                                              minimizers, cross-checks
:class:`ErrorAnalysis`             ``zgrad.minimize.Minuit``, ``Scipy``       ``FitResult.minos``, ``hesse``
=================================  =========================================  ==============================

The loss hooks take ``params`` (a tuple of Parameters) and ``identities`` (their
``p.ref()``, which only joins the graph-cache key: a trace reads the very Parameters it was
traced with). The model jets are package-internal, hence their leading underscore: a jet is
``(value, {role: first derivative}, {(role, role): second derivative})`` with derivatives by
the model's parameter roles (see ``zgrad.models._jets``).

Examples
--------
>>> import zgrad
>>> from zgrad.typing import BatchedValues, GradientStrategy, HessianStrategy
>>> class Constant:
...     is_autograd = False
...     provides_gradient = True
...     def value_gradient(self, func, params):
...         return float(func()), [0.0 for _ in params]
>>> isinstance(Constant(), GradientStrategy), isinstance(Constant(), HessianStrategy)
(True, False)
>>> isinstance(zgrad.gradients.get("autodiff"), HessianStrategy)
True
>>> x = zgrad.Parameter("x", 1.0)
>>> isinstance(lambda: x**2, BatchedValues)
False
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "BatchedValues",
    "Bounded",
    "BridgesNumpy",
    "BudgetedStrategy",
    "CompiledAtPoint",
    "CountsEvents",
    "ErrorAnalysis",
    "EvaluatesAtPoint",
    "ExactHessian",
    "FusedValueGradient",
    "GradientStrategy",
    "HessianStrategy",
    "LogDensityJets",
    "MixtureJets",
    "limits_of",
]


@runtime_checkable
class GradientStrategy(Protocol):
    """How derivatives are obtained: what :func:`zgrad.gradients.register` accepts.

    ``value_gradient(func, params)`` returns a :class:`~zgrad.gradients.GradientResult` or a
    plain ``(value, gradient)`` pair, where ``func`` is a zero-argument callable reading the
    Parameters. ``is_autograd`` is what ``zgrad.run.current_policy_autograd()`` answers while
    the strategy is active; ``provides_gradient`` False means the minimizer differentiates.
    """

    is_autograd: bool
    provides_gradient: bool

    def value_gradient(self, func: Callable[[], Any], params: Sequence[Any]) -> Any:
        """Return value and gradient of ``func`` w.r.t. ``params``."""


@runtime_checkable
class HessianStrategy(GradientStrategy, Protocol):
    """A strategy that also gives a Hessian: a GradientResult with ``hessian`` set, or the matrix."""

    def hessian(self, func: Callable[[], Any], params: Sequence[Any]) -> Any:
        """Return (value, gradient and) the Hessian of ``func`` w.r.t. ``params``."""


@runtime_checkable
class BudgetedStrategy(Protocol):
    """A strategy with named evaluation budgets; minimizers ask for ``'fast'`` inside their loop."""

    def with_budget(self, budget: str) -> Any:
        """Return a copy of the strategy that spends the named budget."""


@runtime_checkable
class BatchedValues(Protocol):
    """A loss that evaluates many parameter points in one call (numerical differentiation)."""

    def zgrad_values(self, params: tuple, identities: tuple, points: Any) -> Any:
        """Return the loss at each row of ``points``; the Parameters end where they started."""


@runtime_checkable
class FusedValueGradient(Protocol):
    """A loss that computes its value and gradient by automatic differentiation in one graph."""

    def zgrad_value_gradient(self, params: tuple, identities: tuple) -> tuple[Any, Any]:
        """Return ``(value, gradient)``."""


@runtime_checkable
class ExactHessian(Protocol):
    """A loss that computes its exact Hessian itself (closed form, or tapes per chunk of data)."""

    def zgrad_hessian(self, params: tuple, identities: tuple) -> tuple[Any, Any, Any]:
        """Return ``(value, gradient, hessian)``."""


@runtime_checkable
class EvaluatesAtPoint(Protocol):
    """A loss that sets its Parameters inside its graph and evaluates there, in one call."""

    def zgrad_at(self, params: tuple, identities: tuple, point: Any, order: int) -> Any:
        """Return the value (order 0), ``(value, gradient)`` (1) or with the Hessian (2) at ``point``."""


@runtime_checkable
class CompiledAtPoint(Protocol):
    """A loss that hands out its compiled graph for a minimizer's loop."""

    def zgrad_at_function(self, params: tuple, identities: tuple, order: int) -> Callable[[Any], Any] | None:
        """Return ``f(point)`` computing what ``zgrad_at`` computes, or None where there is none."""


@runtime_checkable
class CountsEvents(Protocol):
    """A loss over a known number of events (minimizers fuse value and gradient below a size)."""

    n_events: int


@runtime_checkable
class BridgesNumpy(Protocol):
    """A model or loss that says whether its values pass through ``z.py_function``."""

    uses_py_function: bool


@runtime_checkable
class LogDensityJets(Protocol):
    """A model with closed-form first and second derivatives of its log-density."""

    def _log_shape_jet(self, x: Any) -> tuple[Any, dict, dict]:
        """Return the jet of ``log`` of the unnormalised density, per event of ``x``."""

    def _log_normalization_jet(self) -> tuple[Any, dict, dict]:
        """Return the jet of ``log`` of the integral over the observable's range."""


@runtime_checkable
class MixtureJets(Protocol):
    """A sum of models whose coefficients and their slopes are written out."""

    pdfs: Sequence[Any]

    def _mixture(self) -> list[tuple[Any, Any]]:
        """Return ``(coefficient, component)`` pairs: weight over the component's normalisation."""

    def _weight_tensors(self) -> list[Any]:
        """Return the components' weights (yields or fractions) as tensors."""

    def _weight_slopes(self) -> list[list[tuple[Any, float]]]:
        """Return, per component, ``[(Parameter, d weight / d Parameter)]`` (the weights are linear)."""


@runtime_checkable
class ErrorAnalysis(Protocol):
    """A minimizer adapter that computes a fit's errors again at its best fit.

    A :class:`~zgrad.minimize.FitResult` keeps the adapter that made it and hands its
    ``minos`` and ``hesse`` calls to it, so the result stays data and imports no minimizer.
    """

    def minos(self, result: Any, *params: Any, cl: float | None = None) -> Mapping[str, tuple[float, float]]:
        """Return ``name -> (lower, upper)`` from a profile-likelihood scan around ``result``'s minimum."""

    def hesse(self, result: Any, *, strategy: Any = None) -> Mapping[str, float]:
        """Return ``name -> error`` from the Hessian of ``strategy`` at ``result``'s minimum."""


@runtime_checkable
class Bounded(Protocol):
    """A parameter with limits (``None`` where it has none): zgrad's Parameters, zfit's too."""

    lower: float | None
    upper: float | None


def limits_of(param: Any) -> tuple[float, float]:
    """Return ``param``'s ``(lower, upper)`` as floats, ``-inf`` and ``inf`` where it has no limit.

    The one reader of a parameter's limits: the numerical strategy, the minimizers and the
    cross-checks all ask here. An object that is not :class:`Bounded` has no limits.

    Examples
    --------
    >>> import zgrad
    >>> from zgrad.typing import limits_of
    >>> limits_of(zgrad.Parameter("p", 1.0, lower=0.0))
    (0.0, inf)
    """
    if not isinstance(param, Bounded):
        return -math.inf, math.inf
    lower, upper = param.lower, param.upper
    return (-math.inf if lower is None else float(lower), math.inf if upper is None else float(upper))
