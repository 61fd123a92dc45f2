"""The iminuit adapter: MIGRAD then HESSE, with the gradient the policy chooses."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from zgrad.minimize import _gradient_choice, _limits, _objective
from zgrad.minimize._adapter import Adapter, Outcome, Run
from zgrad.minimize.result import FitResult, ParamMap
from zgrad.typing import HessianStrategy

__all__ = ["Minuit"]


class Minuit(Adapter):
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
        self.gradient = _gradient_choice.validate_gradient_option(gradient)
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

    @property
    def _label(self) -> str:
        return "minuit"

    def _hessian_strategy(self, grad_name: str | None, grad_strategy: Any) -> tuple[str, Any]:
        """Take the strategy's Hessian where it is exact (autodiff); else none, and HESSE computes one."""
        if grad_name is not None and grad_strategy.is_autograd and isinstance(grad_strategy, HessianStrategy):
            return grad_name, grad_strategy
        return "minuit", None

    def _minimize(self, objective: _objective.Objective, x0: np.ndarray) -> Run:
        minuit = build_minuit(objective, x0, strategy=self.strategy, tol=self.tol)
        problems = []
        try:
            minuit.migrad()
            minuit.hesse()
        except Exception as error:  # reported in the result, as promised: the fit failed, the caller decides
            problems.append(f"the minimization raised {type(error).__name__}: {error}")
        return Run(np.array(minuit.values, dtype=float), problems, minuit)

    def _assess(self, objective: _objective.Objective, run: Run) -> Outcome:
        minuit, values, params = run.state, run.x, objective.params
        errors = np.array(minuit.errors, dtype=float)
        fmin, nhess = minuit.fmin, objective.nhess  # nhess: the fit's, before the check at the minimum
        problems = list(run.problems)
        fval = float(fmin.fval) if fmin is not None else math.nan
        edm = float(fmin.edm) if fmin is not None else math.nan
        if fmin is not None and not math.isfinite(fval):
            problems.append("the loss is not finite at the minimum (NaN or inf)")
        limited = _objective.at_limit(params, values, errors)
        if fmin is not None:
            problems += _verdict(minuit, objective, values, limited, failed=bool(run.problems))
        covariance = None
        if minuit.covariance is not None and fmin is not None and fmin.has_covariance:
            covariance = np.array(minuit.covariance, dtype=float)
        return Outcome(
            errors=errors,
            covariance=covariance,
            fmin=fval,
            edm=edm,
            problems=problems,
            at_limit=limited,
            info={"minuit": minuit},
            minuit=minuit,
            nfcn=int(minuit.nfcn),
            ngrad=int(minuit.ngrad),
            nhess=nhess,
        )

    def minos(self, result: FitResult, *params: Any, cl: float | None = None) -> ParamMap:
        """Return asymmetric ``(lower, upper)`` errors of ``result`` from iminuit's MINOS.

        What :meth:`FitResult.minos` calls, with the same arguments and errors raised. MINOS
        continues with the Minuit that ran the fit (``result.minuit``); a result without one (a
        copy, or another minimizer's result) gets a new Minuit at its best fit, with Minuit's own
        gradient, MIGRAD and HESSE first. The Parameters are left at the best fit.

        Parameters
        ----------
        result : FitResult
            A fit's result that holds its loss.
        *params : str, Parameter, or a list or tuple of them
            Which parameters (all floating ones if none are given).
        cl : float, optional
            Confidence level or number of sigmas, as iminuit takes it (default 1 sigma).

        Returns
        -------
        ParamMap
            ``(lower, upper)`` by parameter name, lower negative.

        Examples
        --------
        >>> import zgrad
        >>> x = zgrad.Parameter("x", 1.0)
        >>> loss = zgrad.losses.SimpleLoss(lambda: (x - 3.0) ** 2, [x], errordef=1.0)
        >>> minuit = zgrad.minimize.Minuit()
        >>> result = minuit.minimize(loss)
        >>> lower, upper = minuit.minos(result, "x")["x"]
        >>> round(lower, 6), round(upper, 6)
        (-1.0, 1.0)
        """
        if result.loss is None:
            raise ValueError("This FitResult does not hold its loss, so MINOS cannot scan it.")
        names = [p.name for p in result.params]
        flat = [q for p in params for q in (p if isinstance(p, (list, tuple)) else [p])]
        wanted = [ParamMap.name_of(w) for w in flat] or names
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise ValueError(f"minos: unknown parameters {unknown}; the fit's parameters are {names}.")
        minuit = result.minuit if result.minuit is not None else _restart(result)
        try:
            minuit.minos(*wanted, cl=cl)
        finally:
            for p, name in zip(result.params, names, strict=True):
                p.assign(result.values[name])
        return ParamMap({n: (float(minuit.merrors[n].lower), float(minuit.merrors[n].upper)) for n in wanted})


def build_minuit(objective: _objective.Objective, x0: np.ndarray, *, strategy: int, tol: float | None) -> Any:
    """Return the ``iminuit.Minuit`` of ``objective`` at ``x0``: the one place that builds one.

    Names, limits and ``errordef`` come from the objective's Parameters and loss; its
    gradient goes with it where it has a strategy, its Hessian (and G2) where it has a Hessian
    strategy. Used for the fit and for MINOS around a result whose Minuit is gone.
    """
    import iminuit  # 0.2 s to import: only when a fit is run

    hess, g2 = None, None
    limits = [_objective.limits(p) for p in objective.params]
    if objective.hessian_strategy is not None:
        # Minuit2 as bundled in iminuit <= 2.33 takes a user Hessian and G2 into its internal coordinates
        # without the curvature a limit adds (ROOT issue 22692): a parameter held at a limit keeps an EDM
        # near g^2 / 2H, MIGRAD needs hundreds of calls, HESSE's errors are wrong, and a start near a limit
        # can misstep. _limits adds the term; its probe leaves the callbacks alone on a Minuit2 that has
        # ROOT PR 22700. Remove _limits once zgrad requires an iminuit bundling that fix.
        lower, upper = zip(*limits, strict=True)
        hess, g2 = _limits.compensate(objective.hess, objective.g2, objective.gradient_at, lower, upper)
    grad = objective.grad if objective.strategy is not None else None
    with warnings.catch_warnings():
        # Minuit2 calls the user's G2 whenever it can compute a Hessian, e.g. after finding a
        # negative second derivative; iminuit 2.33 then calls g2=None and raises TypeError. So g2
        # goes with the Hessian, although iminuit warns that it is unused.
        warnings.filterwarnings("ignore", "hessian overrides g2", iminuit.util.IMinuitWarning)
        minuit = iminuit.Minuit(
            objective.fcn, x0, grad=grad, g2=g2, hessian=hess, name=[p.name for p in objective.params]
        )
    minuit.limits = limits
    minuit.errordef = objective.loss.errordef
    minuit.strategy = strategy
    if tol is not None:
        minuit.tol = tol
    return minuit


def _restart(result: FitResult) -> Any:
    """Start a new Minuit at ``result``'s best fit, with Minuit's own gradient; run MIGRAD and HESSE."""
    objective = _objective.Objective(result.loss, result.params, None, None)
    minuit = build_minuit(
        objective, np.array([result.values[p.name] for p in result.params]), strategy=1, tol=None
    )
    minuit.migrad()
    minuit.hesse()
    return minuit


def _verdict(minuit: Any, objective: Any, values: np.ndarray, limited: list, *, failed: bool) -> list[str]:
    """Return the problems that make the fit invalid.

    Valid means: MIGRAD converged (Minuit's own verdict: EDM below the tolerance, no call
    limit) and the covariance is positive definite, neither failed nor forced by HESSE. With an
    exact Hessian from zgrad, the Hessian at the minimum must itself be positive definite (iminuit
    may force a singular one positive definite and call the fit valid).
    """
    fmin, exact = minuit.fmin, objective.hessian_strategy is not None
    converged, problems = bool(fmin.is_valid), []
    if exact and not failed:
        problems = _exact_check(minuit, objective, values, limited)
    problems = _describe_invalid(fmin, converged) + problems
    if not exact and not failed and _covariance_flags(fmin):
        problems += _name_unconstrained(objective.loss, objective.params, values, limited)
    return problems


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
        result = _objective.hessian_at(loss, params, "numerical")
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
