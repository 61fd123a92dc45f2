"""The iminuit adapter: MIGRAD then HESSE, with the gradient the policy chooses."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np

from zgrad import _strategy_table
from zgrad.gradients._api import check_params
from zgrad.minimize import _limits, _objective
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
        minimizer or the loss (NaN, no convergence, a covariance or exact Hessian that is not
        positive definite, an error raised by the loss) give ``valid=False`` with a message
        saying what happened; parameters at a limit are named in ``at_limit`` and the message
        but leave the fit valid.
        """
        import iminuit  # 0.2 s to import: only when a fit is run

        params = list(check_params(params)) if params is not None else loss.params
        if not params:
            raise ValueError("The loss has no floating Parameters to minimize.")
        grad_name, grad_strategy = _objective.choose_strategy(self.gradient)
        hess_name, hess_strategy = _exact_hessian(grad_name, grad_strategy)
        objective = _objective.Objective(loss, params, grad_strategy, hess_strategy)
        x0 = np.array([float(p.numpy()) for p in params])
        check = _objective.guarded_check(objective, grad_name, x0)

        limits = [(_bound(p, "lower", -math.inf), _bound(p, "upper", math.inf)) for p in params]
        start = time.perf_counter()
        minuit = _build(iminuit, objective, x0, limits, [p.name for p in params], grad_strategy is not None)
        minuit.errordef = loss.errordef
        minuit.strategy = self.strategy
        if self.tol is not None:
            minuit.tol = self.tol
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
        fmin, nhess = minuit.fmin, objective.nhess
        problems = [problem] if problem else []
        fval = float(fmin.fval) if fmin is not None else math.nan
        edm = float(fmin.edm) if fmin is not None else math.nan
        if fmin is not None and not math.isfinite(fval):
            problems.append("the loss is not finite at the minimum (NaN or inf)")
        limited = _objective.at_limit(params, values, errors)
        if fmin is not None:
            verdict, edm = _verdict(
                minuit, objective, loss, values, limited, hess_name is not None, bool(problem)
            )
            problems += verdict
        problems += _objective.common_problems(check, grad_name)
        if problems and objective.first_nonfinite is not None:  # the likely cause of the failure: first
            problems.insert(0, nonfinite_note(objective.first_nonfinite))
        covariance = None
        if minuit.covariance is not None and fmin is not None and fmin.has_covariance:
            covariance = np.array(minuit.covariance, dtype=float)
        return FitResult(
            params=params,
            values=ParamMap(dict(zip(minuit.parameters, values.tolist(), strict=True))),
            errors=ParamMap(dict(zip(minuit.parameters, errors.tolist(), strict=True))),
            covariance=covariance,
            fmin=fval,
            edm=edm,
            valid=not problems,
            message="; ".join(problems + _objective.limit_note(limited)),
            nfcn=int(minuit.nfcn),
            ngrad=int(minuit.ngrad),
            wall_time=wall,
            gradient_strategy=grad_name,
            hessian_strategy=hess_name if hess_name is not None else "minuit",
            minimizer="minuit",
            loss=loss,
            gradient_check=check,
            info={"minuit": minuit, "nhess": nhess},
            at_limit=limited,
        )


def nonfinite_note(point: dict[str, float]) -> str:
    """Return the message part of a failed fit that met a NaN or inf loss at ``point`` (name -> value).

    Examples
    --------
    >>> from zgrad.minimize.minuit import nonfinite_note
    >>> nonfinite_note({"x": 1.5})
    'the loss was not finite (NaN or inf) at x=1.5, first met during the minimization'
    """
    where = ", ".join(f"{name}={value!r}" for name, value in point.items())
    return f"the loss was not finite (NaN or inf) at {where}, first met during the minimization"


def _bound(param: Any, which: str, default: float) -> float:
    value = getattr(param, which, None)
    return default if value is None else value


def _build(iminuit: Any, objective: Any, x0: np.ndarray, limits: list, names: list, gradient: bool) -> Any:
    """Return the ``iminuit.Minuit`` of ``objective``, with its gradient and exact Hessian if it has them."""
    hess, g2 = None, None
    if objective.hessian_strategy is not None:
        # Minuit2 as bundled in iminuit <= 2.33 takes a user Hessian and G2 into its internal coordinates
        # without the curvature a limit adds (ROOT issue 22692): a parameter held at a limit keeps an EDM
        # near g^2 / 2H, MIGRAD needs hundreds of calls, HESSE's errors are wrong, and a start near a limit
        # can misstep. _limits adds the term; its probe leaves the callbacks alone on a Minuit2 that has
        # ROOT PR 22700. Remove _limits once zgrad requires an iminuit bundling that fix.
        lower, upper = zip(*limits, strict=True)
        hess, g2 = _limits.compensate(objective.hess, objective.g2, objective.gradient_at, lower, upper)
    with warnings.catch_warnings():
        # Minuit2 calls the user's G2 whenever it can compute a Hessian, e.g. after finding a
        # negative second derivative; iminuit 2.33 then calls g2=None and raises TypeError. So g2
        # goes with the Hessian, although iminuit warns that it is unused.
        warnings.filterwarnings("ignore", "hessian overrides g2", iminuit.util.IMinuitWarning)
        minuit = iminuit.Minuit(
            objective.fcn, x0, grad=objective.grad if gradient else None, g2=g2, hessian=hess, name=names
        )
    minuit.limits = limits
    return minuit


def _exact_hessian(name: str | None, strategy: Any) -> tuple[str | None, Any]:
    """Pick the strategy's Hessian when it is exact (autodiff); else None, and HESSE computes one."""
    if strategy is not None and strategy.is_autograd and callable(getattr(strategy, "hessian", None)):
        return name, strategy
    return None, None


def _verdict(
    minuit: Any, objective: Any, loss: Any, values: np.ndarray, limited: list, exact: bool, failed: bool
) -> tuple[list[str], float]:
    """Return the problems that make the fit invalid, and the EDM.

    Valid means: MIGRAD converged (Minuit's own verdict: EDM below the tolerance, no call
    limit) and the covariance is positive definite, neither failed nor forced by HESSE. With an
    exact Hessian from zgrad, the Hessian at the minimum must itself be positive definite (iminuit
    may force a singular one positive definite and call the fit valid).
    """
    fmin, edm = minuit.fmin, float(minuit.fmin.edm)
    converged, problems = bool(fmin.is_valid), []
    params = objective.params
    if exact and not failed:
        problems = _exact_check(minuit, objective, values, limited)
    problems = _describe_invalid(fmin, converged) + problems
    if not exact and not failed and _covariance_flags(fmin):
        problems += _name_unconstrained(loss, params, values, limited)
    return problems, edm


def _exact_check(minuit: Any, objective: Any, values: np.ndarray, limited: list) -> list[str]:
    """Check the exact Hessian at the minimum, leaving out the parameters a limit holds."""
    params = objective.params
    try:
        hessian, gradient = objective.hess(values), objective.grad(values)  # the second one is cached
    except Exception as error:  # reported in the result: the fit is then invalid
        return [f"the Hessian at the minimum could not be computed: {type(error).__name__}: {error}"]
    held = _objective.held_at_limit(params, values, gradient, np.diag(hessian), limited)
    names, eps = [p.name for p in params], _objective.resolution(params)
    _, _, problem = _objective.covariance_and_edm(hessian, gradient, minuit.errordef, names, eps, held)
    return [problem] if problem else []


def _name_unconstrained(loss: Any, params: list, values: np.ndarray, limited: list) -> list[str]:
    """Name the parameters a failed or forced covariance leaves free, from a numerical Hessian."""
    try:
        result = _strategy_table.lookup("numerical").hessian(loss, params)
    except Exception as error:  # only the names are missing: the fit is invalid anyway
        return [f"the parameters not constrained could not be named: {type(error).__name__}: {error}"]
    hessian = np.asarray(result.hessian, dtype=float)
    gradient = np.asarray(result.gradient, dtype=float)
    free = ~_objective.held_at_limit(params, values, gradient, np.diag(hessian), limited)
    problem = _objective.hessian_problem(
        hessian[np.ix_(free, free)],
        [p.name for p, f in zip(params, free, strict=True) if f],
        _objective.resolution(params),
        None if result.hessian_error is None else np.asarray(result.hessian_error)[np.ix_(free, free)],
    )
    return [problem] if problem else []


_MIGRAD_FLAGS = (
    ("is_above_max_edm", True, "EDM above the tolerance"),
    ("has_reached_call_limit", True, "call limit reached"),
)
_HESSE_FLAGS = (
    ("hesse_failed", True, "HESSE failed"),
    ("has_posdef_covar", False, "not positive definite"),
    ("has_made_posdef_covar", True, "forced positive definite"),
    ("has_accurate_covar", False, "not accurate"),
)


def _flags(fmin: Any, table: tuple) -> list[str]:
    return [label for attr, bad, label in table if bool(getattr(fmin, attr)) == bad]


def _covariance_flags(fmin: Any) -> list[str]:
    return _flags(fmin, _HESSE_FLAGS)


def _describe_invalid(fmin: Any, converged: bool) -> list[str]:
    """Minuit's reasons for invalidity; a parameter at a limit is none (iminuit's is_valid agrees)."""
    problems = []
    if not converged:
        reasons = _flags(fmin, _MIGRAD_FLAGS) + (["negative EDM"] if fmin.edm < 0 else [])
        problems.append(
            "MIGRAD did not converge to a valid minimum" + (f" ({', '.join(reasons)})" if reasons else "")
        )
    covariance = _covariance_flags(fmin)
    if covariance:
        problems.append(f"the covariance from HESSE is not usable ({', '.join(covariance)})")
    return problems
