"""One toy: reset the Parameters to the truth, draw, build the loss, fit, and keep the numbers.

A toy never raises for a problem of its own: an exception while sampling, building the loss
or fitting, an invalid fit, or a non-finite value or error gives a :class:`ToyRow` with
``valid=False`` and a message saying what happened. Only ``KeyboardInterrupt`` and other
``BaseException`` s go through (the Parameters are restored on the way out).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from zgrad import _policy, losses
from zgrad.minimize import Minuit
from zgrad.toystudy._spec import ToyPlan

__all__ = ["ToyRow", "run_block"]


@dataclass(frozen=True)
class ToyRow:
    """The numbers of one toy fit; ``values`` and ``errors`` follow the plan's ``names``."""

    index: int
    valid: bool
    message: str
    values: tuple[float, ...]
    errors: tuple[float, ...]
    at_limit: tuple[str, ...]
    nfcn: float
    seconds: float


def _failed(plan: ToyPlan, index: int, message: str, seconds: float) -> ToyRow:
    nan = (math.nan,) * len(plan.names)
    return ToyRow(index, False, message, nan, nan, (), math.nan, seconds)


def _row(plan: ToyPlan, index: int, result: Any, seconds: float) -> ToyRow:
    values = tuple(float(result.values[n]) for n in plan.names)
    errors = tuple(float(result.errors[n]) for n in plan.names)
    bad = [
        n
        for n, v, e in zip(plan.names, values, errors, strict=True)
        if not (math.isfinite(v) and math.isfinite(e))
    ]
    message = str(result.message or "")
    if bad:
        message = f"non-finite value or error for {bad}" + (f"; {message}" if message else "")
    at_limit = tuple(str(getattr(n, "name", n)) for n in result.at_limit)
    return ToyRow(
        index=index,
        valid=bool(result.valid) and not bad,
        message=message,
        values=values,
        errors=errors,
        at_limit=at_limit,
        nfcn=float(result.nfcn),
        seconds=seconds,
    )


def _strategy_scope(strategy: str | None) -> Any:
    # the scoped policy: a minimizer asking the policy (gradient=None) uses this strategy
    return contextlib.nullcontext() if strategy is None else _policy.set_mode(autograd=strategy)


def _one_toy(model: Any, params: dict[str, Any], plan: ToyPlan, index: int, minimizer: Any) -> ToyRow:
    begin = time.perf_counter()
    for name, value in plan.truth.items():
        params[name].assign(value)
    loss_class = losses.ExtendedUnbinnedNLL if plan.extended else losses.UnbinnedNLL
    try:
        with _strategy_scope(plan.strategy):
            data = model.sample(int(plan.n_events[index]), seed=int(plan.seeds[index]))
            result = minimizer.minimize(loss_class(model, data))
            return _row(plan, index, result, time.perf_counter() - begin)
    except Exception as exc:  # a failed toy is a row saying why, never an abort
        return _failed(plan, index, f"{type(exc).__name__}: {exc}", time.perf_counter() - begin)


def run_block(
    model: Any, plan: ToyPlan, indices: Sequence[int], done: Callable[[int], None] | None = None
) -> list[ToyRow]:
    """Fit toys ``indices`` of ``plan`` on ``model``, one after another; ``done(k)`` after each.

    The model's Parameters are left as they were found, also after an exception or an interrupt.
    """
    params = {p.name: p for p in model.get_params(floating=None)}
    saved = {name: p.numpy() for name, p in params.items()}
    minimizer = plan.minimizer if plan.minimizer is not None else Minuit()
    rows = []
    try:
        for index in indices:
            rows.append(_one_toy(model, params, plan, int(index), minimizer))
            if done is not None:
                done(int(index))
    finally:
        for name, param in params.items():
            param.assign(saved[name])
    return rows
