"""The vocabulary of the suite: a :class:`Case`, its :class:`ParamSpec` and the :class:`Tolerance` rules.

The tolerance tables live here, next to the rule that picks one: exact strategies
are held to floating-point rounding, every other strategy (numerical ones, user
strategies) to what finite differences can reach, and on hard cases an inexact
strategy may instead pass because its own error estimate covers the true error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["EXACT_STRATEGIES", "LEVELS", "Case", "ModelInfo", "ParamSpec", "Tolerance"]

#: The derivative levels a case is checked at.
LEVELS = ("gradient", "hessian")


@dataclass(frozen=True)
class Tolerance:
    """When a computed derivative counts as correct.

    A component passes when its relative deviation is at most ``rtol``, or, with
    ``error_covers=True``, when the strategy's own error estimate is at least the
    true absolute deviation (an honest error bar is acceptable where the
    precision itself cannot be reached). Where the reference itself is numerical
    (a Hessian from numdifftools), its error estimate adds to the strategy's.
    """

    rtol: float
    error_covers: bool = False

    def passes(
        self,
        rel_deviation: float,
        abs_deviation: float,
        error: float | None,
        reference_error: float | None = None,
    ) -> bool:
        """Return whether a component with these deviations and error estimates passes."""
        if rel_deviation <= self.rtol:
            return True
        cover = (error or 0.0) + (reference_error or 0.0)
        if not self.error_covers or (error is None and reference_error is None):
            return False
        return bool(abs_deviation <= cover)


@dataclass(frozen=True)
class ParamSpec:
    """A parameter of a case: name, limits and step size (None: the Parameter default)."""

    name: str
    lower: float | None = None
    upper: float | None = None
    step_size: float | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What makes a case a fit: which model, its true values, how many events, which loss.

    ``factory`` names a model builder of :mod:`validation.model_cases`; ``truth`` are the
    values the case's data (and every toy data set) are drawn at; ``yields`` names the yield
    parameters of an extended model, whose toys draw a Poisson number of events.
    """

    factory: str
    truth: tuple[float, ...]
    n_events: int
    extended: bool = False
    yields: tuple[str, ...] = ()
    loss: str = "UnbinnedNLL"


# Relative tolerances by (dtype, level). Automatic differentiation is exact up to rounding:
# float64 rounding over the few hundred operations of these cases stays far below 1e-12, and
# float32 (eps 1.2e-7) below 1e-5. Numerical derivatives are truncation- and rounding-limited:
# 1e-7 for float64 gradients is what the accurate budget promises on well-scaled functions, and
# second differences lose about two more digits. In float32 the best a difference can do is
# about eps**(2/3) ~ 2e-5 for a gradient and eps**(1/2) ~ 3e-4 for a Hessian entry, times the
# conditioning of the function: float32 cases also accept an error estimate covering the error.
_EXACT_RTOL = {
    ("float64", "gradient"): 1e-12,
    ("float64", "hessian"): 1e-12,
    ("float32", "gradient"): 1e-5,
    ("float32", "hessian"): 1e-5,
}
_APPROX_RTOL = {
    ("float64", "gradient"): 1e-7,
    ("float64", "hessian"): 1e-5,
    ("float32", "gradient"): 1e-4,
    ("float32", "hessian"): 1e-2,
}
#: Strategies known to be exact up to rounding; every other strategy gets the numerical tolerances.
EXACT_STRATEGIES = frozenset({"autodiff"})


def _no_data(dtype: np.dtype) -> dict[str, np.ndarray]:
    return {}


@dataclass(frozen=True)
class Case:
    """A reference function with its exact derivatives, evaluated at a few named points.

    Attributes
    ----------
    name : str
        Short identifier used in reports and in ``--cases`` filters.
    description : str
        One line for humans.
    params : tuple of ParamSpec
    points : tuple of (str, tuple of float)
        Named parameter points; the first one is the ``--quick`` subset.
    build : callable
        ``build(parameters, data)`` returns the zero-argument function to differentiate.
    gradient, hessian : callable
        ``gradient(x, data)`` and ``hessian(x, data)``: the closed forms, in float64, at the
        parameter values ``x`` actually stored (rounded to ``dtype``), with ``data`` in float64.
    data : callable
        ``data(dtype)`` returns the case's seeded data as a dict of NumPy arrays of that dtype.
    dtype : str
        ``'float64'`` or ``'float32'``: the dtype of the Parameters and of the data.
    hard : bool
        Badly scaled, rounding-limited or limit-bound: inexact strategies may pass by an
        error estimate that covers the true error.
    tolerances : mapping
        Overrides, ``{strategy: {level: Tolerance}}``.
    model : ModelInfo or None
        Set for cases built from a zgrad model and loss: they also get fits and toys.
    hessian_source : str
        Where the reference Hessian comes from: ``'closed form'``, or a numerical
        Jacobian of the closed-form gradient (then ``hessian`` returns ``(H, error)``).
    """

    name: str
    description: str
    params: tuple[ParamSpec, ...]
    points: tuple[tuple[str, tuple[float, ...]], ...]
    build: Callable[[tuple, Mapping[str, Any]], Callable[[], Any]]
    gradient: Callable[[np.ndarray, Mapping[str, np.ndarray]], np.ndarray]
    hessian: Callable[[np.ndarray, Mapping[str, np.ndarray]], np.ndarray]
    data: Callable[[np.dtype], dict[str, np.ndarray]] = _no_data
    dtype: str = "float64"
    hard: bool = False
    tolerances: Mapping[str, Mapping[str, Tolerance]] = field(default_factory=dict)
    model: ModelInfo | None = None
    hessian_source: str = "closed form"

    @property
    def kind(self) -> str:
        """``'model'`` for a model inside a loss, ``'function'`` for a plain reference function."""
        return "function" if self.model is None else "model"

    def reference(self, x: np.ndarray, data: Mapping[str, np.ndarray]) -> tuple:
        """Return ``(gradient, hessian, hessian_error)`` at ``x``; the error is None for a closed form."""
        hessian = self.hessian(x, data)
        error = None
        if isinstance(hessian, tuple):
            hessian, error = hessian
        return np.asarray(self.gradient(x, data), dtype=float), np.asarray(hessian, dtype=float), error

    def tolerance(self, strategy: str, level: str) -> Tolerance:
        """Return the tolerance for ``strategy`` at ``level`` (``'gradient'`` or ``'hessian'``)."""
        override = self.tolerances.get(strategy, {}).get(level)
        if override is not None:
            return override
        if strategy in EXACT_STRATEGIES:
            return Tolerance(_EXACT_RTOL[self.dtype, level])
        return Tolerance(_APPROX_RTOL[self.dtype, level], error_covers=self.hard or self.dtype == "float32")
