"""A loss as a minimizer sees it (NumPy ``fcn``/``grad``/``hess`` with counts), and what its Hessian says.

Also the one reader of a Parameter's limits and step size (:func:`bounds`, :func:`limits`,
:func:`step_size`) and the one way the adapters take a Hessian from a strategy (:func:`hessian_at`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from zgrad import _strategy_table
from zgrad.gradients import _api
from zgrad.gradients.result import GradientResult, symmetrize
from zgrad.typing import CompiledAtPoint, CountsEvents, EvaluatesAtPoint, limits_of

#: Up to this many events, a value call of an unbinned NLL with an autodiff gradient computes the
#: gradient too: MIGRAD asks for the gradient at the point of its last value call, and at this size
#: a graph call costs mostly its fixed overhead (2000 events: value 0.26 ms, value and gradient
#: 0.30 ms), so one fused call replaces two. Above it the gradient's own cost dominates.
FUSED_EVENTS = 2**15


class Objective:
    """A loss seen by a minimizer: NumPy in, NumPy out, counting every call.

    Value and gradient computed together at one point serve the minimizer's next
    value call at that same point without another evaluation. A loss that offers
    ``zgrad_at(params, identities, point, order)`` (every zgrad loss) is evaluated in
    one graph call per request, the Parameters set inside the graph: for every value
    call, and for gradients and Hessians that come from the built-in ``'autodiff'``
    strategy (which would compute the same numbers through the same graphs). Where the
    loss also offers ``zgrad_at_function`` (losses with a shared kernel), the compiled
    graph is called directly. For an unbinned NLL of at most :data:`FUSED_EVENTS` events
    with an autodiff gradient, a value call computes the gradient too.
    """

    def __init__(self, loss: Any, params: Sequence[Any], strategy: Any, hessian_strategy: Any) -> None:
        self.loss = loss
        self.params = list(params)
        self.strategy = strategy
        self.hessian_strategy = hessian_strategy
        self.nfcn = 0
        self.ngrad = 0
        self.nhess = 0
        # the last point where more than the value was computed: (x, value, gradient, hessian)
        self._last: tuple[np.ndarray, float, np.ndarray | None, np.ndarray | None] | None = None
        #: the first point where the loss was NaN or inf, by parameter name: explains a failed fit
        self.first_nonfinite: dict[str, float] | None = None
        self._at = loss.zgrad_at if isinstance(loss, EvaluatesAtPoint) else None
        self._param_tuple = tuple(self.params)
        self._identities = tuple(p.ref() for p in self.params)
        self._at_functions: dict[int, Any] = {}
        self._fast_grad = self._at is not None and _is_builtin_autodiff(strategy)
        self._fast_hess = self._at is not None and _is_builtin_autodiff(hessian_strategy)
        events = loss.n_events if isinstance(loss, CountsEvents) else None
        self._fuse = self._fast_grad and isinstance(events, int) and events <= FUSED_EVENTS

    def _evaluate(self, x: np.ndarray, order: int) -> Any:
        # the loss's compiled graph for this order, found on first use (so that a failure to
        # trace happens inside the minimizer, where it is reported), then called directly
        function = self._at_functions.get(order)
        if function is None:
            prepared = None
            if isinstance(self.loss, CompiledAtPoint):
                prepared = self.loss.zgrad_at_function(self._param_tuple, self._identities, order)
            function = prepared or (lambda point: self._at(self._param_tuple, self._identities, point, order))
            self._at_functions[order] = function
        return function(x)

    def _note(self, x: np.ndarray, value: float) -> float:
        if self.first_nonfinite is None and not math.isfinite(value):
            self.first_nonfinite = {p.name: float(v) for p, v in zip(self.params, x, strict=True)}
        return value

    def set_point(self, x: np.ndarray) -> None:
        """Assign ``x`` to the Parameters (for the paths that evaluate through a strategy)."""
        # the loss's own graphs assign inside the graph instead; one eager assign per Parameter,
        # 110 us for 5, was measured cheaper than a separate graph call assigning them (265 us)
        for p, v in zip(self.params, x, strict=True):
            p.assign(v)

    def _cached(self, x: np.ndarray, index: int) -> Any:
        if self._last is not None and self._last[index] is not None and np.array_equal(self._last[0], x):
            return self._last[index]
        return None

    def fcn(self, x: Any) -> float:
        """Return the loss value at ``x``."""
        x = np.asarray(x, dtype=float)
        self.nfcn += 1
        cached = self._cached(x, 1)
        if cached is not None:
            return cached
        if self._fuse:
            # MIGRAD asks for the gradient at the point of its last value call: computed together,
            # that call is served from the cache (one graph call where there were two)
            value, gradient = _to_numpy(self._evaluate(x, 1))
            self._last = (x.copy(), self._note(x, float(value)), gradient, None)
            return float(value)
        if self._at is not None:
            return self._note(x, float(self._evaluate(x, 0)))
        self.set_point(x)
        return self._note(x, float(self.loss.value()))

    def grad(self, x: Any) -> np.ndarray:
        """Return the gradient at ``x`` from the chosen strategy."""
        x = np.asarray(x, dtype=float)
        self.ngrad += 1
        cached = self._cached(x, 2)
        if cached is not None and self.hessian_strategy is self.strategy:
            return cached.copy()
        if self._fast_grad:
            value, gradient = _to_numpy(self._evaluate(x, 1))
        else:
            self.set_point(x)
            result = _api.derivatives(self.loss, self.params, strategy=self.strategy)
            value, gradient = result.value, np.asarray(result.gradient, dtype=float)
        self._last = (x.copy(), self._note(x, float(value)), gradient, None)
        return gradient.copy()

    def hess(self, x: Any) -> np.ndarray:
        """Return the Hessian at ``x`` from the Hessian strategy."""
        x = np.asarray(x, dtype=float)
        self.nhess += 1
        cached = self._cached(x, 3)
        if cached is not None:
            return cached.copy()
        if self._fast_hess:
            value, gradient, hessian = _to_numpy(self._evaluate(x, 2))
            hessian = symmetrize(hessian)
        else:
            self.set_point(x)
            result = hessian_at(self.loss, self.params, self.hessian_strategy)
            value, gradient, hessian = result.value, result.gradient, result.hessian
        hessian = np.asarray(hessian, dtype=float)
        self._last = (x.copy(), self._note(x, float(value)), np.asarray(gradient, dtype=float), hessian)
        return hessian.copy()

    def g2(self, x: Any) -> np.ndarray:
        """Return the Hessian's diagonal at ``x`` (Minuit asks for it after a negative second derivative)."""
        return np.diag(self.hess(x)).copy()

    def gradient_at(self, x: Any) -> np.ndarray:
        """Return the gradient at ``x`` from the last evaluation there (a Hessian's), else :meth:`grad`'s."""
        cached = self._cached(np.asarray(x, dtype=float), 2)
        return cached.copy() if cached is not None else self.grad(x)


def _is_builtin_autodiff(strategy: Any) -> bool:
    # the built-in object itself (built-ins cannot be replaced): its numbers are the loss's own hooks'
    return strategy is not None and strategy is _strategy_table.lookup("autodiff")


def _to_numpy(tensors: tuple) -> tuple:
    return tuple(np.asarray(t.numpy(), dtype=float) for t in tensors)


def covariance_and_edm(
    hessian: np.ndarray,
    gradient: np.ndarray,
    errordef: float,
    names: Sequence[str],
    eps: float,
    held: np.ndarray | None = None,
    hessian_error: np.ndarray | None = None,
) -> tuple[np.ndarray | None, float, str]:
    """Return ``(2 errordef H^-1, g^T H^-1 g / 2, problem)``; problem is '' when H is positive definite.

    Parameters that a limit ``held`` (see :func:`held_at_limit`) are constrained by the limit,
    not by the loss: the EDM and the check of :func:`hessian_problem` use the other parameters
    only (the EDM Minuit computes in its internal coordinates, where a held parameter's gradient
    vanishes). Their covariance rows come from the full Hessian when it is positive definite, else
    they are NaN (the message names them as at a limit).
    """
    hessian, gradient = np.asarray(hessian, dtype=float), np.asarray(gradient, dtype=float)
    free = ~np.asarray(held, dtype=bool) if held is not None else np.ones(len(names), dtype=bool)
    sub = np.ix_(free, free)
    error = None if hessian_error is None else np.asarray(hessian_error, dtype=float)[sub]
    free_names = [name for name, f in zip(names, free, strict=True) if f]
    problem = hessian_problem(hessian[sub], free_names, eps, error)
    if problem:
        return None, math.nan, problem
    inverse_free = _inverse(hessian[sub])
    edm = 0.5 * float(gradient[free] @ inverse_free @ gradient[free])
    if free.all():
        return 2.0 * errordef * inverse_free, edm, ""
    inverse = np.full_like(hessian, math.nan)
    if not hessian_problem(hessian, names, eps):
        inverse = _inverse(hessian)
    else:
        inverse[sub] = inverse_free
    return 2.0 * errordef * inverse, edm, ""


def hessian_problem(
    hessian: np.ndarray, names: Sequence[str], eps: float, hessian_error: np.ndarray | None = None
) -> str:
    """'' when ``hessian`` is positive definite, else a message naming the parameters it leaves free.

    The Hessian is scaled to a unit diagonal first (as Minuit does for its own check), so the
    verdict does not depend on the parameters' units. An eigenvalue of the scaled matrix at or
    below ``sqrt(eps)`` times the largest one (``eps``: the resolution of the loss's dtype), or
    below the Hessian's own error estimate (a numerical Hessian), counts as zero: that direction
    is not constrained by the loss. A negative one is a direction of negative curvature. The
    parameters named are those with the largest components along such directions.
    """
    hessian = np.asarray(hessian, dtype=float)
    if hessian.size == 0:
        return ""
    if not np.all(np.isfinite(hessian)):
        return "the Hessian is not finite"
    scale = _unit_diagonal_scale(hessian)
    eigenvalues, vectors = np.linalg.eigh(scale[:, None] * hessian * scale[None, :])
    tolerance = math.sqrt(eps) * float(np.max(np.abs(eigenvalues)))
    if hessian_error is not None and np.all(np.isfinite(hessian_error)):
        scaled_error = scale[:, None] * np.abs(hessian_error) * scale[None, :]
        tolerance = max(tolerance, float(np.linalg.norm(scaled_error, 2)))
    messages = []
    flat = np.abs(eigenvalues) <= tolerance
    if flat.any():
        free = _names_along(vectors[:, flat], names)
        messages.append(f"the Hessian is singular: {free} not constrained by the loss")
    negative = eigenvalues < -tolerance
    if negative.any():
        messages.append(
            f"the Hessian is indefinite: {_names_along(vectors[:, negative], names)} along a direction of "
            "negative curvature (a saddle point, not a minimum)"
        )
    return "; ".join(messages)


def _unit_diagonal_scale(hessian: np.ndarray) -> np.ndarray:
    """Return ``1/sqrt(|H_ii|)``; an entry that is zero next to the largest gets the largest one's scale."""
    diagonal = np.abs(np.diag(hessian))
    largest = float(diagonal.max()) if diagonal.size else 0.0
    if largest == 0.0:
        return np.ones_like(diagonal)
    return 1.0 / np.sqrt(np.where(diagonal > 1e-300 + 1e-30 * largest, diagonal, largest))


def _names_along(vectors: np.ndarray, names: Sequence[str]) -> list[str]:
    """Names with a component of at least half the largest one in any of the columns of ``vectors``."""
    chosen = np.zeros(len(names), dtype=bool)
    for vector in np.abs(vectors).T:
        chosen |= vector >= 0.5 * vector.max()
    return [name for name, c in zip(names, chosen, strict=True) if c]


def _inverse(hessian: np.ndarray) -> np.ndarray:
    """Inverse of a positive-definite matrix, computed at unit diagonal and made exactly symmetric."""
    scale = _unit_diagonal_scale(hessian)
    inverse = scale[:, None] * np.linalg.inv(scale[:, None] * hessian * scale[None, :]) * scale[None, :]
    return 0.5 * (inverse + inverse.T)


def resolution(params: Sequence[Any]) -> float:
    """Return the coarsest machine epsilon among the Parameters' dtypes (float64 when they have none)."""
    dtypes = [getattr(getattr(p, "dtype", None), "as_numpy_dtype", np.float64) for p in params]
    return max(float(np.finfo(d).eps) for d in dtypes) if dtypes else float(np.finfo(np.float64).eps)


def at_limit(
    params: Sequence[Any], values: Sequence[float], errors: Sequence[float] | None = None
) -> list[str]:
    """Names of Parameters whose best-fit value sits at (within a tenth of an error of) a limit."""
    out = []
    for i, (p, v) in enumerate(zip(params, values, strict=True)):
        tolerance = 1e-10 * max(abs(v), 1.0)
        if errors is not None and np.isfinite(errors[i]):
            tolerance = max(tolerance, 0.1 * errors[i])
        if any(bound is not None and abs(v - bound) <= tolerance for bound in bounds(p)):
            out.append(p.name)
    return out


def held_at_limit(
    params: Sequence[Any],
    values: Sequence[float],
    gradient: np.ndarray,
    curvature: np.ndarray,
    limited: Sequence[str],
) -> np.ndarray:
    """Which Parameters a limit holds: named in ``limited``, and the loss falls beyond the nearer limit.

    That is, a Newton step along the parameter alone, ``-gradient / curvature`` (the diagonal of
    the Hessian; without a positive curvature, any step down the gradient), crosses the limit.
    Such a parameter is constrained by its limit, not by the loss: Minuit's internal coordinates
    give it a vanishing gradient and a positive curvature there. A minimum inside, near a limit,
    holds nothing.
    """
    held = np.zeros(len(params), dtype=bool)
    for i, (p, v, g, h) in enumerate(zip(params, values, gradient, curvature, strict=True)):
        if p.name not in limited or g == 0:
            continue
        lower, upper = bounds(p)
        near_upper = lower is None or (upper is not None and abs(upper - v) < abs(v - lower))
        target = v - g / h if h > 0 else (math.inf if g < 0 else -math.inf)
        held[i] = bool(target > upper) if near_upper else bool(target < lower)
    return held


def bounds(param: Any) -> tuple[float | None, float | None]:
    """Return a Parameter's ``(lower, upper)`` limits, None where it has none.

    Read through :func:`zgrad.typing.limits_of`: an object without limits is unlimited.

    Examples
    --------
    >>> import zgrad
    >>> from zgrad.minimize._objective import bounds, limits
    >>> p = zgrad.Parameter("p", 1.0, lower=0.0)
    >>> bounds(p), limits(p)
    ((0.0, None), (0.0, inf))
    """
    lower, upper = limits_of(param)
    return (None if lower == -math.inf else lower), (None if upper == math.inf else upper)


def limits(param: Any) -> tuple[float, float]:
    """Return the limits as floats, ``-inf`` and ``inf`` where there is no limit (iminuit's form)."""
    return limits_of(param)


def step_size(param: Any, value: float) -> float:
    """Return a Parameter's ``step_size``; one of a hundredth of ``max(|value|, 1)`` where it has none."""
    return getattr(param, "step_size", 1e-2 * max(abs(value), 1.0))


def hessian_at(loss: Any, params: Sequence[Any], strategy: Any) -> GradientResult:
    """Return value, gradient and Hessian of ``loss`` at the Parameters' values, from ``strategy``.

    Every Hessian the adapters take from a strategy comes through here, so through the
    normalisation of :func:`zgrad.derivatives`: a user strategy may return a
    :class:`~zgrad.gradients.GradientResult` or the bare matrix (value and gradient then come
    from its ``value_gradient``); either way the result holds NumPy arrays and an exactly
    symmetric Hessian.

    Examples
    --------
    >>> import zgrad
    >>> from zgrad.minimize._objective import hessian_at
    >>> x = zgrad.Parameter("x", 2.0)
    >>> hessian_at(lambda: x**3, [x], "autodiff").hessian.tolist()
    [[12.0]]
    """
    return _api.derivatives(loss, params, strategy=strategy, hessian=True)
