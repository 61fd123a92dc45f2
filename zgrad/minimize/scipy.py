"""The scipy.optimize adapter; validity is judged from the EDM, not from scipy's success flag."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from zgrad import _strategy_table
from zgrad.gradients._api import check_params
from zgrad.minimize import _objective
from zgrad.minimize.minuit import nonfinite_note
from zgrad.minimize.result import FitResult, ParamMap

__all__ = ["Scipy"]

_METHODS = ("L-BFGS-B", "BFGS", "trust-constr")
#: Minuit's convergence criterion: edm < 0.002 * tol * errordef.
_EDM_FACTOR = 0.002


class Scipy:
    """Minimize a zgrad loss with :func:`scipy.optimize.minimize`, then compute errors from a Hessian.

    scipy's ``success`` flag is not trusted (L-BFGS-B with default options reports
    success far from the minimum): the result is valid when the estimated distance
    to the minimum, ``edm = g^T H^-1 g / 2`` at the end point, is below
    ``0.002 * tol * errordef`` (Minuit's criterion) and the Hessian is positive definite
    (a singular one names the parameters the loss does not constrain). A parameter that a
    limit holds (the loss falls beyond it) is left out of both, as in Minuit's internal
    coordinates; parameters at a limit are named in ``at_limit`` and do not make a fit invalid.

    Parameters
    ----------
    method : {'L-BFGS-B', 'BFGS', 'trust-constr'}, default 'L-BFGS-B'
        ``'trust-constr'`` also uses the Hessian of the gradient strategy.
    gradient : None, bool or str, default None
        As for :class:`zgrad.minimize.Minuit`; ``False`` (or a strategy without a gradient)
        lets scipy difference the loss itself.
    tol : float, default 0.1
        Scales the EDM threshold; scipy's own stopping tolerances are set tight.
    maxiter : int, default 10000

    Examples
    --------
    >>> import zgrad
    >>> x = zgrad.Parameter("x", 1.0)
    >>> loss = zgrad.losses.SimpleLoss(lambda: (x - 3.0) ** 2, [x], errordef=1.0)
    >>> result = zgrad.minimize.Scipy().minimize(loss)
    >>> result.valid, round(result.values["x"], 6), round(result.errors["x"], 6)
    (True, 3.0, 1.0)
    """

    def __init__(
        self, method: str = "L-BFGS-B", gradient: Any = None, tol: float = 0.1, maxiter: int = 10_000
    ) -> None:
        if method not in _METHODS:
            raise ValueError(f"method={method!r} is not supported; allowed: {list(_METHODS)}.")
        self.gradient = _objective.validate_gradient_option(gradient)
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0:
            raise ValueError(f"tol must be a positive number; got {tol!r}.")
        if isinstance(maxiter, bool) or not isinstance(maxiter, int) or maxiter <= 0:
            raise ValueError(f"maxiter must be a positive int; got {maxiter!r}.")
        self.method = method
        self.tol = float(tol)
        self.maxiter = maxiter

    def minimize(self, loss: Any, params: Any = None) -> FitResult:
        """Minimize ``loss`` and return a :class:`FitResult`; the Parameters then hold the best fit."""
        import scipy.optimize

        params = list(check_params(params)) if params is not None else loss.params
        if not params:
            raise ValueError("The loss has no floating Parameters to minimize.")
        grad_name, grad_strategy = _objective.choose_strategy(self.gradient)
        hess_name = (
            grad_name
            if grad_strategy is not None and callable(getattr(grad_strategy, "hessian", None))
            else "numerical"
        )
        hess_strategy = _strategy_table.lookup(hess_name)
        objective = _objective.Objective(loss, params, grad_strategy, hess_strategy)
        x0 = np.array([float(p.numpy()) for p in params])
        check = _objective.guarded_check(objective, grad_name, x0)
        bounds = [(getattr(p, "lower", None), getattr(p, "upper", None)) for p in params]
        kwargs: dict[str, Any] = {"jac": objective.grad if grad_strategy is not None else None}
        if self.method == "L-BFGS-B":
            kwargs.update(bounds=bounds, options={"maxiter": self.maxiter, "ftol": 1e-15, "gtol": 1e-10})
        elif self.method == "BFGS":
            kwargs.update(options={"maxiter": self.maxiter, "gtol": 1e-8})
        else:
            kwargs.update(
                bounds=bounds if any(b != (None, None) for b in bounds) else None,
                hess=objective.hess,
                options={"maxiter": self.maxiter, "gtol": 1e-10, "xtol": 1e-12},
            )
        start = time.perf_counter()
        messages: list[str] = []
        x = x0
        try:
            opt = scipy.optimize.minimize(objective.fcn, x0, method=self.method, **kwargs)
            x = np.asarray(opt.x, dtype=float)
            scipy_message = str(opt.message)
        except Exception as error:  # reported in the result: the fit failed and says how
            messages.append(f"scipy.optimize.minimize raised {type(error).__name__}: {error}")
            scipy_message = ""
        objective._set(x)
        covariance, edm, fval, hess_problem, limited = self._errors(objective, loss, x)
        wall = time.perf_counter() - start
        errors = np.sqrt(np.diag(covariance)) if covariance is not None else np.full(len(params), math.nan)
        if hess_problem:
            messages.append(hess_problem)
        elif not edm < _EDM_FACTOR * self.tol * loss.errordef:
            messages.append(
                f"not converged: edm = {edm:.3g} is above {_EDM_FACTOR * self.tol * loss.errordef:.3g} "
                f"(scipy said: {scipy_message})"
            )
        if not math.isfinite(fval):
            messages.append("the loss is not finite at the end point (NaN or inf)")
        messages += _objective.common_problems(check, grad_name)
        if messages and objective.first_nonfinite is not None:  # the likely cause of the failure: first
            messages.insert(0, nonfinite_note(objective.first_nonfinite))
        names = [p.name for p in params]
        return FitResult(
            params=params,
            values=ParamMap(dict(zip(names, x.tolist(), strict=True))),
            errors=ParamMap(dict(zip(names, errors.tolist(), strict=True))),
            covariance=covariance,
            fmin=fval,
            edm=edm,
            valid=not messages,
            message="; ".join(messages + _objective.limit_note(limited)),
            nfcn=objective.nfcn,
            ngrad=objective.ngrad,
            wall_time=wall,
            gradient_strategy=grad_name,
            hessian_strategy=hess_name,
            minimizer=f"scipy:{self.method}",
            loss=loss,
            gradient_check=check,
            info={"scipy_message": scipy_message, "nhess": objective.nhess},
            at_limit=limited,
        )

    @staticmethod
    def _errors(
        objective: Any, loss: Any, x: np.ndarray
    ) -> tuple[np.ndarray | None, float, float, str, list]:
        """Return ``(covariance, edm, value, problem, names at a limit)`` at the end point ``x``.

        A parameter that a limit holds (the loss falls towards the limit) is left out of the
        EDM and of the Hessian check, as Minuit's internal coordinates leave it out.
        """
        params = objective.params
        try:
            result = objective.hessian_strategy.hessian(loss, params)
        except Exception as error:  # reported in the result's message
            problem = f"the Hessian could not be computed: {type(error).__name__}: {error}"
            return None, math.nan, _value_or_nan(loss), problem, _objective.at_limit(params, x)
        hessian = np.asarray(result.hessian, dtype=float)
        gradient = np.asarray(result.gradient, dtype=float)
        diagonal = np.diag(hessian)
        # errors from the diagonal alone, to tell which parameters sit within a tenth of one of a limit
        rough = np.sqrt(2.0 * loss.errordef / np.where(diagonal > 0, diagonal, math.nan))
        held = _objective.held_at_limit(params, x, gradient, diagonal, _objective.at_limit(params, x, rough))
        names, eps = [p.name for p in params], _objective.resolution(params)
        covariance, edm, problem = _objective.covariance_and_edm(
            hessian, gradient, loss.errordef, names, eps, held, result.hessian_error
        )
        errors = np.sqrt(np.diag(covariance)) if covariance is not None else rough
        limited = _objective.at_limit(params, x, np.where(np.isfinite(errors), errors, rough))
        return covariance, edm, float(result.value), problem, limited


def _value_or_nan(loss: Any) -> float:
    # after a failed Hessian the loss may fail too: that is in the message already
    try:
        return float(loss.value())
    except Exception:
        return math.nan
