"""Functions of a parameter vector and iminuit cost functions, as ``crosscheck`` targets.

A vector function ``fcn(x) -> float`` (iminuit's array-call convention) or an iminuit cost
``cost(*values)`` becomes one zgrad Parameter per component and a zero-argument callable
that reads them from Python and calls the function with their values. Such a function is
NumPy code: automatic differentiation cannot see through it, so the strategies compared are
``'numerical'`` (which evaluates the function from Python) and ``'user'``: the user's own
derivatives (``gradient=``/``hessian=``, or the cost's ``grad``), each a callable of the
values array.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zgrad.checks import _inputs
from zgrad.gradients import registry
from zgrad.gradients._api import check_scalar_output
from zgrad.gradients.result import GradientResult

__all__ = ["USER", "Adapted", "UserStrategy", "adapt", "is_iminuit_cost", "wants_adapter"]

#: The name under which the user's own derivatives appear in a report.
USER = "user"


@dataclass(frozen=True)
class Adapted:
    """A vector function seen as ``crosscheck`` sees a loss: a callable of Parameters, and its extras."""

    func: Callable[[], float]
    params: tuple
    user: UserStrategy | None
    errordef: float | None
    kind: str


class UserStrategy:
    """The user's derivatives as a gradient strategy (named ``'user'``), local to one check.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad.checks._adapters import adapt
    >>> a = adapt(lambda x: float(x @ x), x0=[1.0, 2.0], gradient=lambda x: 2 * x)
    >>> a.user.value_gradient(a.func, a.params).gradient.tolist()
    [2.0, 4.0]
    """

    is_autograd = False
    provides_gradient = True
    name = USER

    def __init__(self, fcn: Callable, gradient: Callable, hessian: Callable | None) -> None:
        self._fcn = fcn
        self._gradient = gradient
        self._hessian = hessian
        if hessian is None:  # no 'hessian' attribute: the report notes that it has none
            self.hessian = None

    def value_gradient(self, func: Callable[[], Any], params: Sequence[Any]) -> GradientResult:
        """Return the function's value and the user gradient at the Parameters' values."""
        x = _values(params)
        grad = _array(self._gradient(x.copy()), (len(x),), "gradient")
        return GradientResult(value=np.float64(func()), gradient=grad, n_evals=1, strategy=USER,
                              params=tuple(p.name for p in params))  # fmt: skip

    def hessian(self, func: Callable[[], Any], params: Sequence[Any]) -> GradientResult:
        """Return value, user gradient and user Hessian (which must be symmetric)."""
        first = self.value_gradient(func, params)
        x = _values(params)
        hess = _array(self._hessian(x.copy()), (len(x), len(x)), "hessian")
        i, j = np.unravel_index(np.argmax(np.abs(hess - hess.T)), hess.shape)
        if not np.isclose(hess[i, j], hess[j, i], rtol=1e-10, atol=0.0):
            raise ValueError(
                f"the user hessian is not symmetric: H[{i},{j}] = {hess[i, j]!r} but "
                f"H[{j},{i}] = {hess[j, i]!r}"
            )
        return GradientResult(value=first.value, gradient=first.gradient, hessian=hess, n_evals=1,
                              strategy=USER, params=first.params)  # fmt: skip


def is_iminuit_cost(obj: Any) -> bool:
    """Whether ``obj`` is an iminuit cost function (an instance of ``iminuit.cost.Cost``)."""
    try:
        from iminuit.cost import Cost
    except ImportError:  # iminuit absent: nothing can be one of its costs
        return False
    return isinstance(obj, Cost)


def wants_adapter(target: Any, params: Any, x0: Any, gradient: Any, names: Any, limits: Any) -> bool:
    """Whether ``crosscheck``'s arguments describe a vector function or an iminuit cost."""
    if is_iminuit_cost(target):
        return True
    vector = any(v is not None for v in (x0, gradient, names, limits))
    if vector and getattr(target, "params", None) is not None:
        raise ValueError(
            f"x0=, gradient=, names= and limits= are for a function of a vector; {type(target).__name__} "
            "is a loss with its own Parameters: check it without them."
        )
    if vector and params is not None:
        raise ValueError(
            "params= is for a zero-argument callable reading zgrad Parameters; x0=, gradient=, names= "
            "and limits= are for a function of a vector. Give one kind, not both."
        )
    return vector or (params is None and getattr(target, "params", None) is None and _takes_one(target))


def adapt(target: Any, *, x0: Any = None, points: Any = None, gradient: Any = None, hessian: Any = None,
          names: Any = None, limits: Any = None) -> Adapted:  # fmt: skip
    """Return the :class:`Adapted` form of a vector function or an iminuit cost, checking every input."""
    cost = is_iminuit_cost(target)
    start = _start(x0, points, "the iminuit cost" if cost else "a function of a vector")
    if cost:
        from iminuit.util import describe

        names = _names(names if names is not None else describe(target), len(start))
        fcn = _vector_call(target)
        if gradient is None and target.has_grad:
            gradient = _vector_call(target.grad)
        errordef, kind = float(target.errordef), f"iminuit cost {type(target).__name__}"
    else:
        names = _names(names if names is not None else [f"x{i}" for i in range(len(start))], len(start))
        fcn, errordef, kind = target, None, "function of a vector"
    for key, fn in (("gradient", gradient), ("hessian", hessian)):
        if fn is not None and not callable(fn):
            raise TypeError(
                f"{key} must be a callable of the values array; got {fn!r} ({type(fn).__name__})."
            )
    if hessian is not None and gradient is None:
        raise ValueError(
            "hessian= was given without gradient=: the 'user' strategy needs both, or gradient= alone."
        )
    bounds = _limits(limits, names)
    # imported here, not at the top: importing zgrad.checks must not start TensorFlow
    from zgrad.params import Parameter

    params = tuple(Parameter(n, v, lo, hi) for n, v, (lo, hi) in zip(names, start, bounds, strict=True))
    func = _Evaluate(fcn, params)
    func()  # the function must return a real scalar at the start values: say so now, not per row
    user = None if gradient is None else UserStrategy(fcn, gradient, hessian)
    return Adapted(func, params, user, errordef, kind)


class _Evaluate:
    """The zero-argument callable: the function at the Parameters' current values, as a float."""

    def __init__(self, fcn: Callable, params: tuple) -> None:
        self._fcn = fcn
        self._params = params
        self.__qualname__ = getattr(fcn, "__qualname__", type(fcn).__name__)

    def __call__(self) -> float:
        value = self._fcn(_values(self._params))
        check_scalar_output(value, self._fcn)
        return float(np.asarray(value))


def _vector_call(fn: Callable) -> Callable[[np.ndarray], Any]:
    return lambda x: fn(*x)


def _values(params: Sequence[Any]) -> np.ndarray:
    return np.array([float(p.numpy()) for p in params], dtype=float)


def _array(value: Any, shape: tuple, what: str) -> np.ndarray:
    out = np.asarray(value, dtype=float)
    if out.shape != shape:
        raise ValueError(f"the user {what} returned shape {out.shape}; expected {shape} (one per parameter).")
    return out


def _takes_one(fn: Any) -> bool:
    """Whether ``fn`` needs exactly one positional argument (a function of a vector, not of nothing)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: not recognisably a vector function
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in sig.parameters.values() if p.kind in kinds and p.default is p.empty]
    return len(required) == 1


def _start(x0: Any, points: Any, what: str) -> np.ndarray:
    if x0 is None:
        first = points[0] if isinstance(points, Sequence) and not isinstance(points, str) and points else None
        if first is None or isinstance(first, Mapping):
            raise ValueError(
                f"x0 is required for {what}: give the start values, x0=[...] (one per parameter), or "
                f"points= as a list of value arrays; got x0=None and points={points!r}."
            )
        x0 = first
    start = np.asarray(x0, dtype=float)
    if start.ndim != 1 or start.size == 0 or not np.all(np.isfinite(start)):
        raise ValueError(f"x0 must be a non-empty 1-D array of finite numbers; got {x0!r}.")
    return start


def _names(names: Any, n: int) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise TypeError(f"names must be a list of {n} str; got {names!r} ({type(names).__name__}).")
    names = list(names)
    if len(names) != n or not all(isinstance(s, str) and s for s in names):
        raise ValueError(f"names must be {n} non-empty str (one per value of x0); got {names!r}.")
    if len(set(names)) != n:
        raise ValueError(f"names must be distinct; got {names!r}.")
    return names


def _limits(limits: Any, names: list[str]) -> list[tuple[float | None, float | None]]:
    n = len(names)
    if limits is None:
        return [(None, None)] * n
    allowed = f"a list of {n} pairs (lower, upper), None for no limit, one per parameter {names}"
    if isinstance(limits, (str, Mapping)) or not isinstance(limits, Sequence) or len(limits) != n:
        raise ValueError(f"limits must be {allowed}; got {limits!r}.")
    out = []
    for pair in limits:
        if pair is None:
            pair = (None, None)
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"limits must be {allowed}; got the entry {pair!r}.")
        lo, hi = (None if v is None or (isinstance(v, float) and math.isinf(v)) else float(v) for v in pair)
        out.append((lo, hi))
    return out


def resolve_strategies(strategies: Any, adapted: Adapted, has_reference: bool) -> tuple[str, ...]:
    """Return the strategies to check on an adapted function: never one that differentiates automatically."""
    if strategies is None:
        if adapted.user is None and not has_reference:
            raise ValueError(
                f"Nothing to compare for this {adapted.kind}: it comes with no derivatives of its own. Give "
                "gradient= (and optionally hessian=), the derivatives to check, or reference= (closed forms)."
            )
        return ("numerical", USER) if adapted.user is not None else ("numerical",)
    names = (strategies,) if isinstance(strategies, str) else tuple(strategies)
    if USER in names and adapted.user is None:
        raise ValueError(
            f"strategy {USER!r} needs the user's derivatives: give gradient=; this {adapted.kind} has none."
        )
    others = tuple(n for n in names if n != USER)
    checked = _inputs.resolve_strategies(others) if others else ()
    for name in checked:
        if registry.get(name).is_autograd:
            raise ValueError(
                f"strategy {name!r} differentiates automatically, which cannot see through a {adapted.kind} "
                f"(NumPy code); choose among 'numerical', {USER!r} and registered non-automatic strategies."
            )
    if len(set(names)) != len(names):
        raise ValueError(f"strategies names a strategy twice: {list(names)}.")
    return names
