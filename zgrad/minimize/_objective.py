"""A loss as a minimizer sees it: NumPy ``fcn``/``grad``/``hess`` with counts; the gradient choice."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from zgrad import _policy, _registry
from zgrad.errors import GradientError
from zgrad.gradients import _api

#: Relative deviation above which the directional check reports a gradient mismatch.
GRADIENT_CHECK_RTOL = 1e-3


def validate_gradient_option(gradient: Any) -> Any:
    """Check the adapters' ``gradient=`` option when the adapter is constructed."""
    if gradient is None or isinstance(gradient, bool):
        return gradient
    if isinstance(gradient, str):
        if not _registry.is_registered(gradient):
            raise ValueError(
                f"gradient={gradient!r} is not a registered strategy; allowed: None (ask the policy), True "
                f"(require zgrad's gradient), False (the minimizer's own), or one of "
                f"{list(_registry.names())}."
            )
        return gradient
    raise ValueError(
        f"gradient={gradient!r} ({type(gradient).__name__}) is not allowed; allowed: None, True, False, or a "
        f"strategy name from {list(_registry.names())}."
    )


def choose_strategy(gradient: Any) -> tuple[str | None, Any]:
    """Return ``(name, strategy)`` providing the gradient, or ``(None, None)`` for the minimizer's own.

    Called at ``minimize()`` time, so ``gradient=None`` follows the policy in force then.
    """
    if gradient is False:
        return None, None
    name = _policy.effective().strategy_name if gradient in (None, True) else gradient
    strategy = _registry.lookup(name)
    if not strategy.provides_gradient:
        if gradient is True:
            raise GradientError(
                f"gradient=True requires a gradient from zgrad, but the active strategy {name!r} "
                "provides none; "
                "select one with zgrad.run.set_mode(autograd=...) or pass gradient='autodiff'."
            )
        return None, None
    if hasattr(strategy, "with_budget"):  # numerical: the cheap budget inside the minimizer's loop
        strategy = strategy.with_budget("fast")
    return name, strategy


class Objective:
    """A loss seen by a minimizer: NumPy in, NumPy out, counting every call.

    Value and gradient computed together at one point serve the minimizer's next
    value call at that same point without another evaluation.
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

    def _note(self, x: np.ndarray, value: float) -> float:
        if self.first_nonfinite is None and not math.isfinite(value):
            self.first_nonfinite = {p.name: float(v) for p, v in zip(self.params, x, strict=True)}
        return value

    def _set(self, x: np.ndarray) -> None:
        # one eager assign per Parameter: measured faster (110 us for 5) than one graph call
        # assigning all of them (265 us), whose argument handling costs more than it saves
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
        self._set(x)
        return self._note(x, float(self.loss.value()))

    def grad(self, x: Any) -> np.ndarray:
        """Return the gradient at ``x`` from the chosen strategy."""
        x = np.asarray(x, dtype=float)
        self.ngrad += 1
        cached = self._cached(x, 2)
        if cached is not None and self.hessian_strategy is self.strategy:
            return cached.copy()
        self._set(x)
        result = _api.derivatives(self.loss, self.params, strategy=self.strategy)
        gradient = np.asarray(result.gradient, dtype=float)
        self._last = (x.copy(), self._note(x, float(result.value)), gradient, None)
        return gradient.copy()

    def hess(self, x: Any) -> np.ndarray:
        """Return the Hessian at ``x`` from the Hessian strategy."""
        x = np.asarray(x, dtype=float)
        self.nhess += 1
        cached = self._cached(x, 3)
        if cached is not None:
            return cached.copy()
        self._set(x)
        result = _api.derivatives(self.loss, self.params, strategy=self.hessian_strategy, hessian=True)
        hessian = np.asarray(result.hessian, dtype=float)
        self._last = (
            x.copy(),
            self._note(x, float(result.value)),
            np.asarray(result.gradient, dtype=float),
            hessian,
        )
        return hessian.copy()

    def g2(self, x: Any) -> np.ndarray:
        """Return the Hessian's diagonal at ``x`` (Minuit asks for it after a negative second derivative)."""
        return np.diag(self.hess(x)).copy()


def common_problems(
    params: Sequence[Any], values: Any, errors: Any, check: dict | None, grad_name: str | None
) -> list[str]:
    """Messages every adapter adds: parameters at a limit, a gradient that failed its check."""
    messages = []
    limited = at_limit(params, values, errors)
    if limited:
        messages.append(f"parameters at a limit: {limited} (errors there are unreliable)")
    if check is not None and not check["ok"]:
        messages.append(
            f"the gradient of strategy {grad_name!r} disagrees with finite differences: {check['checks']}"
        )
    return messages


def needs_check(grad_name: str | None, loss: Any) -> bool:
    """Whether a gradient must pass the directional check before the minimizer trusts it.

    User-registered strategies are not validated by zgrad, and automatic differentiation
    through ``z.py_function`` relies on the bridge's (numerical or user) derivatives.
    """
    if grad_name is None:
        return False
    return not _registry.is_builtin(grad_name) or bool(getattr(loss, "uses_py_function", False))


def directional_check(objective: Objective, x0: np.ndarray) -> dict:
    """Compare the gradient along two directions with extrapolated finite differences at ``x0``.

    Each direction has components of the Parameters' step sizes with fixed signs, so one
    difference checks every component at once (two sign patterns keep a bias in one
    component from being cancelled by another). The central differences at steps ``h``
    and ``h/2`` are Richardson-extrapolated; their disagreement is the allowance for the
    difference's own error (shapes only continuous in their first derivative, like splines,
    have truncation errors of order ``h``). Deviations are measured against
    ``sum_i |g_i d_i|``, which does not cancel the way ``g . d`` can.
    """
    steps = np.array(
        [getattr(p, "step_size", 1e-2 * max(abs(v), 1.0)) for p, v in zip(objective.params, x0, strict=True)]
    )
    report: dict = {"ok": True, "checks": []}
    try:
        g = np.asarray(
            _api.derivatives(objective.loss, objective.params, strategy=objective.strategy).gradient
        )
        for signs in (np.resize([1.0, -1.0], x0.size), np.resize([1.0, 1.0, -1.0], x0.size)):
            d = signs * steps
            h = _room(objective.params, x0, d)
            coarse = _central(objective, x0, d, h)
            fine = _central(objective, x0, d, h / 2)
            fd = (4.0 * fine - coarse) / 3.0
            analytic = float(g @ d)
            scale = max(float(np.abs(g * d).sum()), abs(fd), 1e-300)
            allowance = max(GRADIENT_CHECK_RTOL * scale, 2.0 * abs(fine - coarse))
            deviation = abs(analytic - fd) / scale
            ok = abs(analytic - fd) <= allowance
            report["checks"].append(
                {"directional": analytic, "finite_difference": fd, "deviation": deviation, "ok": ok}
            )
            report["ok"] = report["ok"] and ok
    finally:
        objective._set(x0)
    return report


def _central(objective: Objective, x0: np.ndarray, d: np.ndarray, h: float) -> float:
    objective._set(x0 + h * d)
    f_plus = float(objective.loss.value())
    objective._set(x0 - h * d)
    f_minus = float(objective.loss.value())
    return (f_plus - f_minus) / (2 * h)


def _room(params: Sequence[Any], x0: np.ndarray, d: np.ndarray) -> float:
    """Largest multiplier ``h <= 1`` with ``x0 +- h d`` inside every Parameter's limits."""
    h = 1.0
    for p, x, di in zip(params, x0, d, strict=True):
        for bound in (getattr(p, "lower", None), getattr(p, "upper", None)):
            if bound is not None and di != 0:
                h = min(h, 0.999 * abs(x - bound) / abs(di)) if abs(x - bound) > 0 else h
    return max(h, 1e-3)


def covariance_and_edm(
    hessian: np.ndarray, gradient: np.ndarray, errordef: float
) -> tuple[np.ndarray | None, float, str]:
    """Return ``(2 errordef H^-1, g^T H^-1 g / 2, problem)``; problem is '' when H is positive definite."""
    if not np.all(np.isfinite(hessian)):
        return None, math.nan, "the Hessian is not finite"
    try:
        np.linalg.cholesky(hessian)
    except np.linalg.LinAlgError:
        return None, math.nan, "the Hessian is not positive definite (not at a minimum)"
    inverse = np.linalg.inv(hessian)
    inverse = 0.5 * (inverse + inverse.T)
    edm = 0.5 * float(gradient @ inverse @ gradient)
    return 2.0 * errordef * inverse, edm, ""


def at_limit(
    params: Sequence[Any], values: Sequence[float], errors: Sequence[float] | None = None
) -> list[str]:
    """Names of Parameters whose best-fit value sits at (within a tenth of an error of) a limit."""
    out = []
    for i, (p, v) in enumerate(zip(params, values, strict=True)):
        tolerance = 1e-10 * max(abs(v), 1.0)
        if errors is not None and np.isfinite(errors[i]):
            tolerance = max(tolerance, 0.1 * errors[i])
        for bound in (getattr(p, "lower", None), getattr(p, "upper", None)):
            if bound is not None and abs(v - bound) <= tolerance:
                out.append(p.name)
    return out
