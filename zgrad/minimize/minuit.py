"""The iminuit adapter: MIGRAD then HESSE, with the gradient the policy chooses."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np

from zgrad.minimize import _objective
from zgrad.minimize.result import FitResult, ParamMap

__all__ = ["Minuit"]


class Minuit:
    """Minimize a zgrad loss with iminuit's MIGRAD, then compute errors with HESSE.

    Parameters
    ----------
    gradient : None, bool or str, default None
        ``None``: ask the gradient policy when ``minimize`` is called (a strategy that
        provides no gradient, like ``'minuit'``, leaves it to Minuit). ``True``: require
        a gradient from zgrad (the active strategy's). ``False``: Minuit's own numerical
        gradient. A strategy name: that strategy. Note for zfit users: zfit's
        ``Minuit(gradient=True)`` meant Minuit's own gradient; here it means zgrad's.
    strategy : {0, 1, 2}, default 1
        Minuit's strategy (speed versus robustness). Not a gradient strategy: use ``gradient=``.
    tol : float, optional
        Minuit's tolerance (default 0.1): MIGRAD stops when ``edm < 0.002 * tol * errordef``.

    Raises
    ------
    ValueError, TypeError
        For invalid options, at construction.

    Examples
    --------
    >>> import numpy as np, zgrad
    >>> x = zgrad.Parameter("x", 1.0)
    >>> loss = zgrad.losses.SimpleLoss(lambda: (x - 3.0) ** 2, [x], errordef=1.0)
    >>> result = zgrad.minimize.Minuit().minimize(loss)
    >>> result.valid, round(result.values["x"], 6), round(result.errors["x"], 6)
    (True, 3.0, 1.0)
    """

    def __init__(self, gradient: Any = None, strategy: int = 1, tol: float | None = None) -> None:
        self.gradient = _objective.validate_gradient_option(gradient)
        if isinstance(strategy, str):
            raise TypeError(
                f"strategy={strategy!r}: Minuit's strategy is 0, 1 or 2 (speed versus robustness). To choose "
                f"how gradients are computed, use gradient={strategy!r} instead."
            )
        if isinstance(strategy, bool) or strategy not in (0, 1, 2):
            raise ValueError(f"strategy must be 0, 1 or 2; got {strategy!r}.")
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0):
            raise ValueError(f"tol must be a positive number or None; got {tol!r}.")
        self.strategy = int(strategy)
        self.tol = tol

    def minimize(self, loss: Any, params: Any = None) -> FitResult:
        """Minimize ``loss`` over its floating Parameters (or ``params``) and return a :class:`FitResult`.

        After the fit the Parameters hold the best-fit values. Failures inside the
        minimizer or the loss (NaN, a parameter at its limit, no convergence, an error
        raised by the loss) give ``valid=False`` with a message saying what happened.
        """
        import iminuit  # 0.2 s to import: only when a fit is run

        params = list(params) if params is not None else loss.params
        if not params:
            raise ValueError("The loss has no floating Parameters to minimize.")
        grad_name, grad_strategy = _objective.choose_strategy(self.gradient)
        hess_name, hess_strategy = _exact_hessian(grad_name, grad_strategy)
        objective = _objective.Objective(loss, params, grad_strategy, hess_strategy)
        x0 = np.array([float(p.numpy()) for p in params])
        check = None
        if _objective.needs_check(grad_name, loss):
            check = _objective.directional_check(objective, x0)

        start = time.perf_counter()
        with warnings.catch_warnings():
            # Minuit2 calls the user's G2 whenever it can compute a Hessian, e.g. after finding a
            # negative second derivative; iminuit 2.33 then calls g2=None and raises TypeError. So g2
            # goes with the Hessian, although iminuit warns that it is unused.
            warnings.filterwarnings("ignore", "hessian overrides g2", iminuit.util.IMinuitWarning)
            minuit = iminuit.Minuit(
                objective.fcn,
                x0,
                grad=objective.grad if grad_strategy is not None else None,
                g2=objective.g2 if hess_strategy is not None else None,
                hessian=objective.hess if hess_strategy is not None else None,
                name=[p.name for p in params],
            )
        minuit.errordef = loss.errordef
        minuit.strategy = self.strategy
        if self.tol is not None:
            minuit.tol = self.tol
        minuit.limits = [
            (
                -math.inf if getattr(p, "lower", None) is None else p.lower,
                math.inf if getattr(p, "upper", None) is None else p.upper,
            )
            for p in params
        ]
        problem = ""
        try:
            minuit.migrad()
            minuit.hesse()
        except Exception as error:  # reported in the result, as promised: the fit failed, the caller decides
            problem = f"the minimization raised {type(error).__name__}: {error}"
        wall = time.perf_counter() - start
        return self._result(loss, params, minuit, objective, problem, wall, grad_name, hess_name, check)

    def _result(
        self,
        loss: Any,
        params: list,
        minuit: Any,
        objective: Any,
        problem: str,
        wall: float,
        grad_name: str | None,
        hess_name: str | None,
        check: dict | None,
    ) -> FitResult:
        values = np.array(minuit.values, dtype=float)
        errors = np.array(minuit.errors, dtype=float)
        for p, v in zip(params, values, strict=True):
            p.assign(v)
        fmin = minuit.fmin
        messages = [problem] if problem else []
        fval = float(fmin.fval) if fmin is not None else math.nan
        if fmin is not None and not fmin.is_valid:
            messages.append(_describe_invalid(fmin))
        if fmin is not None and not math.isfinite(fval):
            messages.append("the loss is not finite at the minimum (NaN or inf)")
        elif problem and objective.first_nonfinite is not None:
            messages.append(f"the loss was not finite (NaN or inf) at {objective.first_nonfinite}")
        messages += _objective.common_problems(params, values, errors, check, grad_name)
        covariance = None
        if minuit.covariance is not None and fmin is not None and fmin.has_covariance:
            covariance = np.array(minuit.covariance, dtype=float)
        return FitResult(
            params=params,
            values=ParamMap(dict(zip(minuit.parameters, values.tolist(), strict=True))),
            errors=ParamMap(dict(zip(minuit.parameters, errors.tolist(), strict=True))),
            covariance=covariance,
            fmin=fval,
            edm=float(fmin.edm) if fmin is not None else math.nan,
            valid=not messages,
            message="; ".join(messages),
            nfcn=int(minuit.nfcn),
            ngrad=int(minuit.ngrad),
            wall_time=wall,
            gradient_strategy=grad_name,
            hessian_strategy=hess_name if hess_name is not None else "minuit",
            minimizer="minuit",
            loss=loss,
            gradient_check=check,
            info={"minuit": minuit, "nhess": objective.nhess},
        )


def _exact_hessian(name: str | None, strategy: Any) -> tuple[str | None, Any]:
    """Pick the strategy's Hessian when it is exact (autodiff); else None, and HESSE computes one."""
    if strategy is not None and strategy.is_autograd and callable(getattr(strategy, "hessian", None)):
        return name, strategy
    return None, None


def _describe_invalid(fmin: Any) -> str:
    flags = (
        ("is_above_max_edm", True, "EDM above the tolerance"),
        ("has_reached_call_limit", True, "call limit reached"),
        ("has_parameters_at_limit", True, "parameters at a limit"),
        ("hesse_failed", True, "HESSE failed"),
        ("has_posdef_covar", False, "covariance not positive definite"),
    )
    reasons = [label for attr, bad, label in flags if bool(getattr(fmin, attr, not bad)) == bad]
    return "MIGRAD did not converge to a valid minimum" + (f" ({', '.join(reasons)})" if reasons else "")
