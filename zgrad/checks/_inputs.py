"""Validation of ``crosscheck``'s arguments, and moving Parameters to a point.

Each function checks one argument at the boundary and raises with a message that says what was
given and what is allowed, before any Parameter is touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from zgrad.gradients import _api, registry
from zgrad.typing import limits_of

__all__ = [
    "assign",
    "check_rtol",
    "closed_form",
    "resolve_points",
    "resolve_reference",
    "resolve_strategies",
    "resolve_target",
]


def resolve_target(loss_or_callable: Any, params: Any) -> tuple[Callable[[], Any], tuple]:
    """Return ``(func, params)``: a loss provides its own ``.params``, a plain callable needs them."""
    if not callable(loss_or_callable):
        raise TypeError(
            f"crosscheck needs a loss or a zero-argument callable; got {loss_or_callable!r} "
            f"({type(loss_or_callable).__name__})."
        )
    if params is None:
        params = getattr(loss_or_callable, "params", None)
        if params is None:
            raise ValueError(
                "params is required when checking a plain callable (it has no .params): pass the "
                "Parameters it reads, e.g. crosscheck(func, [mu, sigma])."
            )
    return loss_or_callable, _api.check_params(params)


def resolve_strategies(strategies: Any) -> tuple[str, ...]:
    """Return the strategy names to check; None means every registered one that provides a gradient."""
    available = registry.available()
    if strategies is None:
        return tuple(name for name in available if registry.get(name).provides_gradient)
    if isinstance(strategies, str):
        strategies = [strategies]
    names = tuple(strategies)
    if not names:
        raise ValueError(f"strategies is empty; choose among {list(available)}.")
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"strategies must be names (str); got {name!r} ({type(name).__name__}).")
        if name not in available:
            raise ValueError(
                f"Unknown gradient strategy {name!r}; registered strategies are {list(available)}."
            )
    if len(set(names)) != len(names):
        raise ValueError(f"strategies names a strategy twice: {list(names)}.")
    return names


def check_rtol(value: Any, what: str) -> float:
    """Return ``value`` as a positive finite float, or raise naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{what} must be a positive number; got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what} must be positive and finite; got {value}.")
    return value


def resolve_reference(reference: Any) -> tuple[Callable | None, Callable | None]:
    """Return ``(gradient, hessian)`` closed forms from a callable, a dict of them, or None."""
    if reference is None:
        return None, None
    if isinstance(reference, Mapping):
        unknown = sorted(set(reference) - {"gradient", "hessian"})
        if unknown:
            raise ValueError(f"reference dict keys must be 'gradient' and/or 'hessian'; got {unknown}.")
        grad, hess = reference.get("gradient"), reference.get("hessian")
    else:
        grad, hess = reference, None
    for key, fn in (("gradient", grad), ("hessian", hess)):
        if fn is not None and not callable(fn):
            raise TypeError(f"reference {key} must be a callable of the values array; got {fn!r}.")
    return grad, hess


def resolve_points(points: Any, params: tuple) -> list[np.ndarray]:
    """Return each point as a full values array in ``params`` order, checked against the limits."""
    current = np.array([float(p.numpy()) for p in params])
    if points is None:
        return [current]
    if (
        isinstance(points, (Mapping, str))
        or not isinstance(points, Sequence)
        and not isinstance(points, np.ndarray)
    ):
        raise TypeError(f"points must be a list of dicts or arrays; got {type(points).__name__}.")
    names = [p.name for p in params]
    out = []
    for k, point in enumerate(points):
        x = current.copy()
        if isinstance(point, Mapping):
            for key, value in point.items():
                if key not in names:
                    raise ValueError(f"points[{k}] names {key!r}, which is not among the parameters {names}.")
                x[names.index(key)] = float(value)
        else:
            x = np.asarray(point, dtype=float).reshape(-1)
            if x.shape != (len(params),):
                raise ValueError(
                    f"points[{k}] has {x.size} values; expected {len(params)} (one per parameter {names})."
                )
        _check_inside(x, params, k)
        out.append(x)
    if not out:
        raise ValueError("points is empty; pass None to check at the current values.")
    return out


def _check_inside(x: np.ndarray, params: tuple, k: int) -> None:
    for value, p in zip(x, params, strict=True):
        lo, hi = limits_of(p)
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError(
                f"points[{k}]: {p.name} = {value} is not finite or outside its limits [{lo}, {hi}]."
            )


def assign(params: tuple, x: np.ndarray) -> None:
    """Set each Parameter to its value in ``x`` (in the Parameter's own dtype)."""
    for p, value in zip(params, x, strict=True):
        p.assign(np.asarray(value, dtype=p.dtype.as_numpy_dtype))


def closed_form(fn: Callable, x: np.ndarray, shape: tuple, hessian: bool) -> np.ndarray:
    """Return a closed-form reference at ``x`` as a float array, checking its shape."""
    values = np.asarray(fn(x.copy()), dtype=float)
    if values.shape != shape:
        what = "hessian" if hessian else "gradient"
        raise ValueError(f"The reference {what} returned shape {values.shape}; expected {shape}.")
    return values
