"""Functions of a parameter vector and iminuit cost functions, as ``crosscheck`` targets.

A vector function ``fcn(x) -> float`` (iminuit's array-call convention) or an iminuit cost
``cost(*values)`` becomes one zgrad Parameter per component and a zero-argument callable
that reads them from Python and calls the function with their values. Such a function is
NumPy code: automatic differentiation cannot see through it, so the strategies compared are
``'numerical'`` (which evaluates the function from Python) and ``'user'``: the user's own
derivatives (``gradient=``/``hessian=``, or the cost's ``grad``), each a callable of the
values array.

A zfit loss keeps its own Parameters (TensorFlow variables): zgrad's strategies differentiate
``loss.value()`` as they would a zgrad loss, and zfit's own derivatives
(``loss.value_gradient``, ``loss.hessian``) are checked beside them as the strategy ``'zfit'``.
zfit is never imported here: a loss is taken for a zfit loss only when zfit is already loaded.
"""

from __future__ import annotations

import inspect
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zgrad.checks import _inputs
from zgrad.gradients import registry
from zgrad.gradients._api import check_scalar_output
from zgrad.gradients.result import GradientResult

__all__ = [
    "USER",
    "ZFIT",
    "Adapted",
    "UserStrategy",
    "ZfitStrategy",
    "adapt",
    "adapt_zfit",
    "is_iminuit_cost",
    "is_zfit_loss",
    "resolve_zfit_strategies",
    "wants_adapter",
]

#: The name under which the user's own derivatives appear in a report.
USER = "user"
#: The name under which a zfit loss's own derivatives appear in a report.
ZFIT = "zfit"


@dataclass(frozen=True)
class Adapted:
    """A vector function seen as ``crosscheck`` sees a loss: a callable of Parameters, and its extras."""

    func: Callable[[], float]
    params: tuple
    user: UserStrategy | ZfitStrategy | None
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

    def gradient_jacobian(self, params: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Return the numerical Jacobian of the user gradient at the Parameters' values, and its errors.

        Row ``i`` is the accurate numerical gradient of the gradient's component ``i`` (the engine
        of the ``'numerical'`` strategy, within the Parameters' limits): what a Hessian consistent
        with the user gradient must equal, entry by entry. The Parameters are restored.
        """
        numerical = registry.get("numerical")
        rows, errors = [], []
        for i in range(len(params)):
            component = _GradientComponent(self._gradient, params, i)
            result = numerical.value_gradient(component, params)
            rows.append(result.gradient)
            errors.append(result.error)
        return np.array(rows, dtype=float), np.array(errors, dtype=float)


class _GradientComponent:
    """Component ``i`` of the user gradient as a zero-argument function of the Parameters."""

    def __init__(self, gradient: Callable, params: Sequence[Any], i: int) -> None:
        self._gradient, self._params, self._i = gradient, params, i
        self.__qualname__ = f"component {i} of the user gradient"

    def __call__(self) -> float:
        x = _values(self._params)
        return float(_array(self._gradient(x), (len(x),), "gradient")[self._i])


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


# --- zfit losses ------------------------------------------------------------------------------


def is_zfit_loss(obj: Any) -> bool:
    """Whether ``obj`` is a zfit loss (``zfit.loss.ZfitLoss``); False whenever zfit is not loaded."""
    zfit = sys.modules.get("zfit")
    return zfit is not None and isinstance(obj, zfit.loss.ZfitLoss)


class ZfitStrategy:
    """A zfit loss's own derivatives as a gradient strategy (named ``'zfit'``), local to one check.

    The gradient is ``loss.value_gradient(params)``, the Hessian ``loss.hessian(params)``.
    (zfit 0.28's ``value_gradient_hessian`` left a Parameter moved after the call, so it is
    not used.)
    """

    is_autograd = False
    provides_gradient = True
    name = ZFIT

    def __init__(self, loss: Any) -> None:
        self._loss = loss

    def value_gradient(self, func: Callable[[], Any], params: Sequence[Any]) -> GradientResult:
        """Return zfit's value and gradient of the loss w.r.t. ``params``."""
        value, gradient = self._loss.value_gradient(list(params))
        gradient = np.asarray(gradient, dtype=np.float64).reshape(-1)
        return GradientResult(value=np.float64(value), gradient=gradient, n_evals=1, strategy=ZFIT,
                              params=tuple(p.name for p in params))  # fmt: skip

    def hessian(self, func: Callable[[], Any], params: Sequence[Any]) -> GradientResult:
        """Return zfit's value, gradient and Hessian of the loss w.r.t. ``params``."""
        first = self.value_gradient(func, params)
        n = len(first.gradient)
        hessian = np.asarray(self._loss.hessian(list(params)), dtype=np.float64).reshape(n, n)
        return GradientResult(value=first.value, gradient=first.gradient, hessian=hessian, n_evals=1,
                              strategy=ZFIT, params=first.params)  # fmt: skip


class _ZfitValue:
    """``loss.value()`` as the zero-argument function zgrad's strategies differentiate."""

    def __init__(self, loss: Any) -> None:
        self._loss = loss

    def __call__(self) -> Any:
        return self._loss.value()


def adapt_zfit(loss: Any, params: Any, vector: Mapping[str, Any]) -> Adapted:
    """Return the :class:`Adapted` form of a zfit loss: its floating Parameters (or ``params``)."""
    given = [f"{key}=" for key in ("x0", "gradient", "names", "limits") if vector.get(key) is not None]
    if callable(vector.get("hessian")):
        given.append("hessian=")
    if given:
        raise ValueError(
            f"{', '.join(given)} are for a function of a vector; a zfit loss brings its own Parameters "
            "and derivatives: give params= (some of its Parameters), points= or reference= instead."
        )
    own = list(loss.get_params())
    chosen = own if params is None else list(params)
    for p in chosen:
        if not any(p is q for q in own):
            raise ValueError(
                f"{getattr(p, 'name', p)!r} is not a Parameter of this zfit loss; its Parameters are "
                f"{[q.name for q in own]}."
            )
    kind = f"zfit loss {type(loss).__name__}"
    return Adapted(_ZfitValue(loss), tuple(chosen), ZfitStrategy(loss), float(loss.errordef), kind)


def resolve_zfit_strategies(strategies: Any) -> tuple[str, ...]:
    """Return the strategies for a zfit loss: zgrad's (registered) ones and ``'zfit'``."""
    if strategies is None:
        return (*_inputs.resolve_strategies(None), ZFIT)
    names = (strategies,) if isinstance(strategies, str) else tuple(strategies)
    allowed = [*registry.available(), ZFIT]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"strategies must name each strategy once, among {allowed}; got {list(names)}.")
    others = tuple(n for n in names if n != ZFIT)
    if others:
        _inputs.resolve_strategies(others)  # unknown names raise, listing the registered ones
    return names
