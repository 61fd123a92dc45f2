"""The scipy.optimize adapter; validity is judged from the EDM, not from scipy's success flag."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from zgrad import _strategy_table
from zgrad.minimize import _gradient_choice, _objective
from zgrad.minimize._adapter import Adapter, Outcome, Run
from zgrad.minimize.minuit import Minuit
from zgrad.minimize.result import FitResult, ParamMap
from zgrad.typing import HessianStrategy

__all__ = ["Scipy"]

_METHODS = ("L-BFGS-B", "BFGS", "trust-constr")
#: Minuit's convergence criterion: edm < 0.002 * tol * errordef.
_EDM_FACTOR = 0.002


class Scipy(Adapter):
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
        self.gradient = _gradient_choice.validate_gradient_option(gradient)
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0:
            raise ValueError(f"tol must be a positive number; got {tol!r}.")
        if isinstance(maxiter, bool) or not isinstance(maxiter, int) or maxiter <= 0:
            raise ValueError(f"maxiter must be a positive int; got {maxiter!r}.")
        self.method = method
        self.tol = float(tol)
        self.maxiter = maxiter

    @property
    def _label(self) -> str:
        return f"scipy:{self.method}"

    def _hessian_strategy(self, grad_name: str | None, grad_strategy: Any) -> tuple[str, Any]:
        """Take the gradient strategy's Hessian where it has one, else the numerical strategy's."""
        name = grad_name if isinstance(grad_strategy, HessianStrategy) else "numerical"
        return name, _strategy_table.lookup(name)

    def _minimize(self, objective: _objective.Objective, x0: np.ndarray) -> Run:
        import scipy.optimize

        try:
            opt = scipy.optimize.minimize(objective.fcn, x0, method=self.method, **self._options(objective))
        except Exception as error:  # reported in the result: the fit failed and says how
            return Run(x0, [f"scipy.optimize.minimize raised {type(error).__name__}: {error}"], "")
        return Run(np.asarray(opt.x, dtype=float), [], str(opt.message))

    def _options(self, objective: _objective.Objective) -> dict[str, Any]:
        bounds = [_objective.bounds(p) for p in objective.params]
        kwargs: dict[str, Any] = {"jac": objective.grad if objective.strategy is not None else None}
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
        return kwargs

    def _assess(self, objective: _objective.Objective, run: Run) -> Outcome:
        covariance, edm, fval, hess_problem, limited = self._errors(objective, run.x)
        errors = np.sqrt(np.diag(covariance)) if covariance is not None else np.full(run.x.size, math.nan)
        problems, threshold = list(run.problems), _EDM_FACTOR * self.tol * objective.loss.errordef
        if hess_problem:
            problems.append(hess_problem)
        elif not edm < threshold:
            problems.append(
                f"not converged: edm = {edm:.3g} is above {threshold:.3g} (scipy said: {run.state})"
            )
        if not math.isfinite(fval):
            problems.append("the loss is not finite at the end point (NaN or inf)")
        # the counts are the objective's, which the template reads
        return Outcome(errors, covariance, fval, edm, problems, limited, info={"scipy_message": run.state})

    def minos(self, result: FitResult, *params: Any, cl: float | None = None) -> ParamMap:
        """Return asymmetric errors of ``result`` from iminuit's MINOS, as :meth:`Minuit.minos` does.

        scipy has no MINOS: a new Minuit starts at the best fit (with Minuit's own gradient)
        and scans from there. Arguments, return value and errors as :meth:`Minuit.minos`.

        Examples
        --------
        >>> import zgrad
        >>> mu = zgrad.Parameter("mu", 0.0, lower=-10.0, upper=10.0)
        >>> result = zgrad.minimize.Scipy().minimize(zgrad.losses.SimpleLoss(lambda: mu**2, [mu], 0.5))
        >>> [round(e, 4) for e in result.adapter.minos(result)["mu"]]  # errordef 0.5: mu^2 = 0.5
        [-0.7071, 0.7071]
        """
        return Minuit().minos(result, *params, cl=cl)

    @staticmethod
    def _errors(
        objective: _objective.Objective, x: np.ndarray
    ) -> tuple[np.ndarray | None, float, float, str, list]:
        """Return ``(covariance, edm, value, problem, names at a limit)`` at the end point ``x``.

        A parameter that a limit holds (the loss falls towards the limit) is left out of the
        EDM and of the Hessian check, as Minuit's internal coordinates leave it out.
        """
        params, loss = objective.params, objective.loss
        try:
            result = _objective.hessian_at(loss, params, objective.hessian_strategy)
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
