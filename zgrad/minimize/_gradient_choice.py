"""Which gradient a minimizer gets (the adapters' ``gradient=`` option), and its check before a fit."""

from __future__ import annotations

from typing import Any

import numpy as np

from zgrad import _finite, _policy, _strategy_table
from zgrad.errors import GradientError
from zgrad.gradients import _api
from zgrad.minimize._objective import Objective, limits, step_size
from zgrad.typing import BridgesNumpy, BudgetedStrategy

#: Relative deviation above which the directional check reports a gradient mismatch.
GRADIENT_CHECK_RTOL = 1e-3


def validate_gradient_option(gradient: Any) -> Any:
    """Check the adapters' ``gradient=`` option when the adapter is constructed."""
    if gradient is None or isinstance(gradient, bool):
        return gradient
    if isinstance(gradient, str):
        if not _strategy_table.is_registered(gradient):
            raise ValueError(
                f"gradient={gradient!r} is not a registered strategy; allowed: None (ask the policy), True "
                f"(require zgrad's gradient), False (the minimizer's own), or one of "
                f"{list(_strategy_table.names())}."
            )
        return gradient
    raise ValueError(
        f"gradient={gradient!r} ({type(gradient).__name__}) is not allowed; allowed: None, True, False, or a "
        f"strategy name from {list(_strategy_table.names())}."
    )


def choose_strategy(gradient: Any) -> tuple[str | None, Any]:
    """Return ``(name, strategy)`` providing the gradient, or ``(None, None)`` for the minimizer's own.

    Called at ``minimize()`` time, so ``gradient=None`` follows the policy in force then.
    """
    if gradient is False:
        return None, None
    name = _policy.effective().strategy_name if gradient in (None, True) else gradient
    strategy = _strategy_table.lookup(name)
    if not strategy.provides_gradient:
        if gradient is True:
            raise GradientError(
                f"gradient=True requires a gradient from zgrad, but the active strategy {name!r} "
                "provides none; "
                "select one with zgrad.run.set_mode(autograd=...) or pass gradient='autodiff'."
            )
        return None, None
    if isinstance(strategy, BudgetedStrategy):  # numerical: the cheap budget inside the minimizer's loop
        strategy = strategy.with_budget("fast")
    return name, strategy


def common_problems(check: dict | None, grad_name: str | None) -> list[str]:
    """Problems every adapter reports and that make a fit invalid: a gradient that failed its check."""
    if check is not None and "error" in check:
        return [f"the check of strategy {grad_name!r}'s gradient raised {check['error']}"]
    if check is not None and not check["ok"]:
        checks = check["checks"]
        return [f"the gradient of strategy {grad_name!r} disagrees with finite differences: {checks}"]
    return []


def guarded_check(objective: Objective, grad_name: str | None, x0: np.ndarray) -> dict | None:
    """Run :func:`directional_check` where :func:`needs_check` says so, inside the adapters' guard.

    An exception from the loss or the strategy does not escape: it comes back as a failed
    check, ``{'ok': False, 'checks': [], 'error': 'TypeName: message'}``, which makes the fit
    invalid with that message (the Parameters are back at ``x0``).
    """
    if not needs_check(grad_name, objective.loss):
        return None
    try:
        return directional_check(objective, x0)
    except Exception as error:  # reported in the fit's result, as every failure inside a fit is
        return {"ok": False, "checks": [], "error": f"{type(error).__name__}: {error}"}


def needs_check(grad_name: str | None, loss: Any) -> bool:
    """Whether a gradient must pass the directional check before the minimizer trusts it.

    User-registered strategies are not validated by zgrad, and automatic differentiation
    through ``z.py_function`` relies on the bridge's (numerical or user) derivatives.
    """
    if grad_name is None:
        return False
    return not _strategy_table.is_builtin(grad_name) or (
        isinstance(loss, BridgesNumpy) and bool(loss.uses_py_function)
    )


def directional_check(objective: Objective, x0: np.ndarray) -> dict:
    """Compare the gradient along two directions with the finite-difference engine at ``x0``.

    Each direction has components of the Parameters' step sizes with fixed signs, so one
    derivative checks every component at once (two sign patterns keep a bias in one component
    from being cancelled by another). The derivative along it is :func:`zgrad._finite.directional`
    (extrapolated, limit-aware, with an error estimate); that error estimate is the allowance
    for the difference's own error (shapes only continuous in their first derivative, like
    splines, have large ones). Deviations are measured against ``sum_i |g_i d_i|``, which does
    not cancel the way ``g . d`` can.
    """
    params = objective.params
    steps = np.array([step_size(p, v) for p, v in zip(params, x0, strict=True)])
    lower, upper = (list(side) for side in zip(*(limits(p) for p in params), strict=True))

    def value(x: np.ndarray) -> float:
        objective.set_point(x)
        return float(objective.loss.value())

    report: dict = {"ok": True, "checks": []}
    try:
        g = np.asarray(_api.derivatives(objective.loss, params, strategy=objective.strategy).gradient)
        for signs in (np.resize([1.0, -1.0], x0.size), np.resize([1.0, 1.0, -1.0], x0.size)):
            d = signs * steps
            along = _finite.directional(value, x0, d, lower, upper)
            fd, error = float(along.estimate[0]), float(along.error[0])
            analytic = float(g @ d)
            scale = max(float(np.abs(g * d).sum()), abs(fd), 1e-300)
            ok = abs(analytic - fd) <= max(GRADIENT_CHECK_RTOL * scale, error)
            report["checks"].append(
                {
                    "directional": analytic,
                    "finite_difference": fd,
                    "deviation": abs(analytic - fd) / scale,
                    "ok": ok,
                }
            )
            report["ok"] = report["ok"] and ok
    finally:
        objective.set_point(x0)
    return report
