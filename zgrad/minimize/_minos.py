"""Errors computed again for any FitResult at its best fit: HESSE from a strategy, MINOS by iminuit."""

from __future__ import annotations

from typing import Any

import iminuit
import numpy as np

from zgrad.minimize import _objective
from zgrad.minimize.result import ParamMap


def run_minos(result: Any, which: tuple, cl: float | None) -> ParamMap:
    """Run MINOS for ``which`` (names or Parameters; all if empty) around ``result``'s minimum."""
    if result.loss is None:
        raise ValueError("This FitResult does not hold its loss, so MINOS cannot scan it.")
    names = [p.name for p in result.params]
    wanted = [w if isinstance(w, str) else getattr(w, "name", w) for w in which] or names
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise ValueError(f"minos: unknown parameters {unknown}; the fit's parameters are {names}.")
    minuit = result.info.get("minuit")
    if minuit is None:  # not a Minuit fit: start a Minuit at the best fit, with the fit's covariance
        objective = _objective.Objective(result.loss, result.params, None, None)
        minuit = iminuit.Minuit(objective.fcn, np.array([result.values[n] for n in names]), name=names)
        minuit.errordef = result.loss.errordef
        minuit.limits = [
            (
                p.lower if getattr(p, "lower", None) is not None else -np.inf,
                p.upper if getattr(p, "upper", None) is not None else np.inf,
            )
            for p in result.params
        ]
        minuit.migrad()
        minuit.hesse()
    try:
        minuit.minos(*wanted, cl=cl)
    finally:
        for p, v in zip(result.params, (result.values[n] for n in names), strict=True):
            p.assign(v)
    return ParamMap({n: (float(minuit.merrors[n].lower), float(minuit.merrors[n].upper)) for n in wanted})


def run_hesse(result: Any, strategy: Any) -> ParamMap:
    """Return ``name -> sqrt(diag(2 errordef H^-1))`` with ``H`` from ``strategy`` at ``result``'s minimum."""
    if result.loss is None:
        raise ValueError("This FitResult does not hold its loss, so its Hessian cannot be computed.")
    params, names = list(result.params), [p.name for p in result.params]
    before = [p.numpy() for p in params]
    try:
        for p in params:
            p.assign(result.values[p.name])  # assign: a float32 best fit may lie a rounding step past a limit
        derivatives = result.loss.derivatives(params, strategy=strategy, hessian=True)
    finally:
        for p, value in zip(params, before, strict=True):
            p.assign(value)
    covariance, _, problem = _objective.covariance_and_edm(
        derivatives.hessian,
        derivatives.gradient,
        result.loss.errordef,
        names,
        _objective.resolution(params),
        hessian_error=derivatives.hessian_error,
    )
    if problem:
        raise ValueError(f"hesse: {problem}; no errors from strategy {derivatives.strategy!r}.")
    return ParamMap(dict(zip(names, np.sqrt(np.diag(covariance)).tolist(), strict=True)))
