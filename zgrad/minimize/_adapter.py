"""The template both minimizer adapters follow: choose and check the gradient, minimize, report.

:meth:`Adapter.minimize` does what every adapter does the same way (select the Parameters,
choose the strategies, check a user gradient, leave the Parameters at the end point, collect
the problems, build the :class:`~zgrad.minimize.FitResult`); an adapter implements three hooks:
``_hessian_strategy`` (where its Hessian comes from), ``_minimize`` (run the minimizer) and
``_assess`` (errors and the verdict at the end point). :meth:`Adapter.hesse` is shared too.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zgrad.gradients._api import check_params
from zgrad.minimize import _gradient_choice
from zgrad.minimize._objective import Objective, covariance_and_edm, hessian_at, resolution
from zgrad.minimize.result import FitResult, ParamMap


@dataclass
class Run:
    """What a minimizer's run left: its end point, the problems it met, and its own state."""

    x: np.ndarray
    problems: list[str]
    state: Any = None


@dataclass
class Outcome:
    """An adapter's assessment of a run at its end point: errors, verdict, counts."""

    errors: np.ndarray
    covariance: np.ndarray | None
    fmin: float
    edm: float
    problems: list[str]
    at_limit: list[str]
    info: dict = field(default_factory=dict)
    minuit: Any = None
    #: the minimizer's own counts where it keeps them; None: the objective's
    nfcn: int | None = None
    ngrad: int | None = None
    nhess: int | None = None


class Adapter(metaclass=abc.ABCMeta):
    """The shared part of :class:`~zgrad.minimize.Minuit` and :class:`~zgrad.minimize.Scipy`.

    Subclasses set ``gradient`` (validated by :func:`_gradient_choice.validate_gradient_option`)
    and implement the hooks; ``minos`` is theirs too (MINOS is iminuit's).
    """

    gradient: Any

    @property
    @abc.abstractmethod
    def _label(self) -> str:
        """The minimizer's name in ``FitResult.minimizer``."""

    @abc.abstractmethod
    def _hessian_strategy(self, grad_name: str | None, grad_strategy: Any) -> tuple[str, Any]:
        """Return ``(name reported as hessian_strategy, strategy object or None)``."""

    @abc.abstractmethod
    def _minimize(self, objective: Objective, x0: np.ndarray) -> Run:
        """Run the minimizer from ``x0``; failures inside it come back as problems, not exceptions."""

    @abc.abstractmethod
    def _assess(self, objective: Objective, run: Run) -> Outcome:
        """Compute errors and the problems that make the fit invalid; the Parameters are at ``run.x``."""

    def minimize(self, loss: Any, params: Any = None) -> FitResult:
        """Minimize ``loss`` over its floating Parameters (or ``params``) and return a :class:`FitResult`.

        After the fit the Parameters hold the best-fit values. Failures inside the
        minimizer or the loss (NaN, no convergence, a covariance or exact Hessian that is not
        positive definite, an error raised by the loss) give ``valid=False`` with a message
        saying what happened; parameters at a limit are named in ``at_limit`` and the message
        but leave the fit valid.

        Raises
        ------
        ValueError
            If there is no floating Parameter to minimize.
        zgrad.errors.GradientError
            If ``gradient=True`` and the active strategy provides no gradient.

        Examples
        --------
        >>> import zgrad
        >>> x = zgrad.Parameter("x", 1.0, lower=0.0)
        >>> loss = zgrad.losses.SimpleLoss(lambda: (x - 3.0) ** 2, [x], errordef=1.0)
        >>> result = zgrad.minimize.Scipy().minimize(loss)
        >>> result.valid, round(float(x.numpy()), 6), result.at_limit
        (True, 3.0, [])
        """
        params = list(check_params(params)) if params is not None else loss.params
        if not params:
            raise ValueError("The loss has no floating Parameters to minimize.")
        grad_name, grad_strategy = _gradient_choice.choose_strategy(self.gradient)
        hess_name, hess_strategy = self._hessian_strategy(grad_name, grad_strategy)
        objective = Objective(loss, params, grad_strategy, hess_strategy)
        x0 = np.array([float(p.numpy()) for p in params])
        check = _gradient_choice.guarded_check(objective, grad_name, x0)
        start = time.perf_counter()
        run = self._minimize(objective, x0)
        objective.set_point(run.x)  # the Parameters are left at the end point, also for _assess
        outcome = self._assess(objective, run)
        wall = time.perf_counter() - start
        problems = outcome.problems + _gradient_choice.common_problems(check, grad_name)
        if problems and objective.first_nonfinite is not None:  # the likely cause of the failure: first
            problems.insert(0, nonfinite_note(objective.first_nonfinite))
        names = [p.name for p in params]
        return FitResult(
            params=params,
            values=ParamMap(dict(zip(names, run.x.tolist(), strict=True))),
            errors=ParamMap(dict(zip(names, outcome.errors.tolist(), strict=True))),
            covariance=outcome.covariance,
            fmin=outcome.fmin,
            edm=outcome.edm,
            valid=not problems,
            message="; ".join(problems + limit_note(outcome.at_limit)),
            nfcn=objective.nfcn if outcome.nfcn is None else outcome.nfcn,
            ngrad=objective.ngrad if outcome.ngrad is None else outcome.ngrad,
            wall_time=wall,
            gradient_strategy=grad_name,
            hessian_strategy=hess_name,
            minimizer=self._label,
            loss=loss,
            gradient_check=check,
            info={**outcome.info, "nhess": objective.nhess if outcome.nhess is None else outcome.nhess},
            at_limit=outcome.at_limit,
            adapter=self,
            minuit=outcome.minuit,
        )

    def hesse(self, result: FitResult, *, strategy: Any = None) -> ParamMap:
        """Recompute ``result``'s symmetric errors at its best fit as ``sqrt(diag(2 errordef H^-1))``.

        What :meth:`FitResult.hesse` calls, with the same arguments and errors raised. The
        Hessian ``H`` comes from ``strategy`` (by default the active one, read at call time)
        through the normalisation of :func:`zgrad.derivatives`, so a strategy may return the
        bare matrix. Neither the result nor the Parameters' values change.

        Parameters
        ----------
        result : FitResult
            A fit's result that holds its loss.
        strategy : str or strategy object, optional
            Which strategy's Hessian.

        Returns
        -------
        ParamMap
            The errors by parameter name.

        Examples
        --------
        >>> import zgrad
        >>> y = zgrad.Parameter("y", 0.0)
        >>> fit = zgrad.minimize.Minuit()
        >>> result = fit.minimize(zgrad.losses.SimpleLoss(lambda: ((y + 1.0) / 2.0) ** 2, [y], errordef=1.0))
        >>> round(fit.hesse(result, strategy="numerical")["y"], 6)  # 1 / sqrt(H / 2) with H = 1/2
        2.0
        """
        if result.loss is None:
            raise ValueError("This FitResult does not hold its loss, so its Hessian cannot be computed.")
        params, names = list(result.params), [p.name for p in result.params]
        before = [p.numpy() for p in params]
        try:
            for p in params:
                p.assign(
                    result.values[p.name]
                )  # assign: a float32 best fit may lie a rounding step past a limit
            derivatives = hessian_at(result.loss, params, strategy)
        finally:
            for p, value in zip(params, before, strict=True):
                p.assign(value)
        covariance, _, problem = covariance_and_edm(
            derivatives.hessian,
            derivatives.gradient,
            result.loss.errordef,
            names,
            resolution(params),
            hessian_error=derivatives.hessian_error,
        )
        if problem:
            raise ValueError(f"hesse: {problem}; no errors from strategy {derivatives.strategy!r}.")
        return ParamMap(dict(zip(names, np.sqrt(np.diag(covariance)).tolist(), strict=True)))


def nonfinite_note(point: dict[str, float]) -> str:
    """Return the message part of a failed fit that met a NaN or inf loss at ``point`` (name -> value).

    Examples
    --------
    >>> from zgrad.minimize._adapter import nonfinite_note
    >>> nonfinite_note({"x": 1.5})
    'the loss was not finite (NaN or inf) at x=1.5, first met during the minimization'
    """
    where = ", ".join(f"{name}={value!r}" for name, value in point.items())
    return f"the loss was not finite (NaN or inf) at {where}, first met during the minimization"


def limit_note(limited: Sequence[str]) -> list[str]:
    """Name the Parameters at a limit in a message; this does not make a fit invalid."""
    return [f"parameters at a limit: {list(limited)} (errors there are unreliable)"] if limited else []
