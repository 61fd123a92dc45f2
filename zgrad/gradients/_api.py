"""``zgrad.gradient``, ``value_gradient``, ``hessian`` and ``derivatives``: the policy-driven entry points."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zgrad import _convert, _policy, _strategy_table
from zgrad.errors import GradientError
from zgrad.gradients.registry import check_strategy
from zgrad.gradients.result import GradientResult, symmetrize
from zgrad.typing import HessianStrategy

__all__ = ["derivatives", "gradient", "hessian", "value_gradient"]


def resolve_strategy(strategy: Any) -> tuple[str, Any]:
    """Return ``(name, strategy object)`` for None (the policy, read now), a name, or a strategy object."""
    if strategy is None:
        name = _policy.effective().strategy_name
        return name, _strategy_table.lookup(name)
    if isinstance(strategy, str):
        return strategy, _strategy_table.lookup(strategy)
    check_strategy(strategy)
    return getattr(strategy, "name", type(strategy).__name__), strategy


def check_params(params: Any) -> tuple:
    """Return ``params`` as a tuple of variables, or raise saying what was wrong."""
    import tensorflow as tf  # only reached with Parameters in hand, so TensorFlow is imported already

    if isinstance(params, tf.Variable):
        params = (params,)
    if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
        raise TypeError(f"params must be a sequence of Parameters; got {params!r} ({type(params).__name__}).")
    params = tuple(params)
    if not params:
        raise ValueError("params is empty: give at least one Parameter to differentiate with respect to.")
    for p in params:
        if not isinstance(p, tf.Variable):
            raise TypeError(f"params must hold Parameters (tf.Variable); got {p!r} ({type(p).__name__}).")
        if p.shape.num_elements() != 1:
            # each parameter is one component of the (n,) gradient
            raise ValueError(
                f"params must hold scalar Parameters; {p.name!r} has shape {p.shape.as_list()} "
                f"({p.shape.num_elements()} elements)."
            )
    seen: dict[str, Any] = {}
    for p in params:
        other = seen.setdefault(p.name, p)
        if other is p and sum(q is p for q in params) > 1:
            raise ValueError(f"Parameter {p.name!r} appears more than once in params.")
        if other is not p:
            raise ValueError(
                f"params holds two different Parameters named {p.name!r}; names must identify parameters."
            )
    return params


def derivatives(
    func: Callable[[], Any],
    params: Sequence[Any],
    *,
    strategy: Any = None,
    hessian: bool = False,
) -> GradientResult:
    """Return value, gradient (and optionally Hessian) of ``func`` with their cost and error estimates.

    Parameters
    ----------
    func : callable
        A zero-argument callable returning a scalar that reads the Parameters (as a loss does).
    params : sequence of Parameter
        The Parameters to differentiate with respect to (a single Parameter is accepted).
    strategy : str or strategy object, optional
        Overrides the gradient policy; by default the active strategy, read at call time.
    hessian : bool, default False
        Also compute the Hessian.

    Returns
    -------
    GradientResult
        NumPy values when called eagerly, tensors inside a trace; the Hessian is exactly symmetric.

    Raises
    ------
    zgrad.errors.GradientError
        If the strategy provides no gradient (``'minuit'``) or no Hessian, or the function does
        not depend on a parameter.
    TypeError, ValueError
        For a non-callable ``func``, bad ``params`` or an unknown strategy.

    Examples
    --------
    >>> import zgrad
    >>> x = zgrad.Parameter("x", 2.0)
    >>> r = zgrad.derivatives(lambda: x**3, [x], hessian=True)
    >>> r.gradient.tolist(), r.hessian.tolist(), r.strategy
    ([12.0], [[12.0]], 'autodiff')
    """
    if not callable(func):
        raise TypeError(f"func must be a zero-argument callable; got {func!r} ({type(func).__name__}).")
    if not isinstance(hessian, bool):
        raise TypeError(f"hessian must be True or False; got {hessian!r}.")
    params = check_params(params)
    name, strat = resolve_strategy(strategy)
    if not strat.provides_gradient:
        strat.value_gradient(func, params)  # a strategy without a gradient explains itself here
        raise GradientError(f"The strategy {name!r} provides no gradient (provides_gradient is False).")
    method = strat.value_gradient
    if hessian:
        if not isinstance(strat, HessianStrategy):
            raise GradientError(
                f"The strategy {name!r} provides no Hessian (it has no 'hessian' method); use "
                "strategy='autodiff' or 'numerical' for Hessians."
            )
        method = strat.hessian
    try:
        raw = method(func, params)
    except (AttributeError, TypeError, ValueError) as exc:
        _explain_failure(func, params, strat, exc)  # a func that returns no real scalar: say so
        raise
    result = _normalise(raw, name, params, strat, func, hessian=hessian)
    check_scalar_output(result.value, func)
    return result


def _is_tensor(value: Any) -> bool:
    # duck-typed: a tf.DType has is_floating, a NumPy dtype has not (no TensorFlow import needed here)
    return hasattr(getattr(value, "dtype", None), "is_floating") and hasattr(value, "shape")


def _describe(func: Any) -> str:
    return repr(getattr(func, "__qualname__", func))


def check_scalar_output(value: Any, func: Any) -> Any:
    """Return ``value`` if it is what a loss function must return: a real scalar (one element).

    Tensors are checked by dtype and static shape (so this works inside a trace too).

    Raises
    ------
    TypeError
        If ``value`` is None, a string, complex or anything but a real number.
    ValueError
        If ``value`` has more (or fewer) than one element.

    Examples
    --------
    >>> from zgrad.gradients._api import check_scalar_output
    >>> check_scalar_output(2.5, print)
    2.5
    >>> check_scalar_output(None, print)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: The function 'print' returned None (NoneType); it must return a real scalar ...
    """
    allowed = "a real scalar (a float, a NumPy scalar or a tensor with one element)"
    shape = getattr(value, "shape", None)
    if _is_tensor(value):  # maybe symbolic: judged by dtype and static shape, never converted
        real = value.dtype.is_floating or value.dtype.is_integer
        size = shape.num_elements() if shape.is_fully_defined() else 1
    else:
        array = np.asarray(value) if value is not None else None
        real = array is not None and array.dtype.kind in "iuf"
        size = 1 if array is None else array.size
        shape = getattr(array, "shape", None)
    if not real:
        raise TypeError(
            f"The function {_describe(func)} returned {value!r} ({type(value).__name__}); it must return "
            f"{allowed}."
        )
    if size != 1:
        raise ValueError(
            f"The function {_describe(func)} returned a value of shape {tuple(shape)}; it must return "
            f"{allowed}."
        )
    return value


def _explain_failure(func: Callable, params: tuple, strat: Any, exc: Exception) -> None:
    """After a strategy failed: raise a clear error if ``func`` returns no real scalar, else return."""
    try:
        value = func()
    except Exception:  # func fails by itself: the strategy's error says more
        return
    try:
        check_scalar_output(value, func)
    except (TypeError, ValueError) as clear:
        raise clear from exc
    if getattr(strat, "is_autograd", False) and not _is_tensor(value):
        raise GradientError(
            f"The function {_describe(func)} returned {value!r} ({type(value).__name__}), a constant: a "
            f"value not computed from the Parameters {[p.name for p in params]} with TensorFlow "
            "operations has no automatic gradient."
        ) from exc


def _normalise(
    raw: Any, name: str, params: tuple, strat: Any, func: Callable, *, hessian: bool
) -> GradientResult:
    if isinstance(raw, GradientResult):
        result = raw
    elif hessian:  # a user strategy returned the bare matrix: take value and gradient from value_gradient
        base = _normalise(strat.value_gradient(func, params), name, params, strat, func, hessian=False)
        result = GradientResult(
            value=base.value,
            gradient=base.gradient,
            hessian=raw,
            error=base.error,
            n_evals=base.n_evals,
            strategy=name,
            params=base.params,
        )
    else:
        try:
            value, grad = raw
        except (TypeError, ValueError):
            raise TypeError(
                f"Strategy {name!r}: value_gradient must return a GradientResult or a (value, gradient) "
                f"pair; got {type(raw).__name__}."
            ) from None
        names = tuple(p.name for p in params)
        result = GradientResult(value=value, gradient=grad, strategy=name, params=names)
    if hessian and result.hessian is None:
        raise GradientError(f"Strategy {name!r}: hessian() returned no Hessian.")
    if _policy.in_trace():
        return result
    return _as_numpy(result, name, len(params))


def _already_numpy(result: GradientResult, n: int) -> bool:
    """Whether ``result`` is already what :func:`_as_numpy` would build (the built-ins' eager results)."""
    hess = result.hessian
    return (
        isinstance(result.gradient, np.ndarray)
        and result.gradient.shape == (n,)
        and isinstance(result.value, (float, np.floating, np.ndarray))
        and (
            hess is None
            or (isinstance(hess, np.ndarray) and hess.shape == (n, n) and np.array_equal(hess, hess.T))
        )
        and bool(result.strategy)
        and len(result.status) == n
    )


def _as_numpy(result: GradientResult, name: str, n: int) -> GradientResult:
    if _already_numpy(result, n):  # nothing to convert: skip rebuilding it (a minimizer's hot path)
        return result
    if result.gradient is None or (
        isinstance(result.gradient, (list, tuple)) and any(g is None for g in result.gradient)
    ):
        raise GradientError(f"Strategy {name!r} returned a gradient with missing (None) components.")
    value, grad, hess = _convert.to_numpy((result.value, result.gradient, result.hessian))
    grad = np.asarray(grad).reshape(-1)
    if grad.shape != (n,):
        raise ValueError(f"Strategy {name!r} returned a gradient of shape {grad.shape}; expected ({n},).")
    if hess is not None:
        hess = np.asarray(hess)
        if hess.shape != (n, n):
            raise ValueError(
                f"Strategy {name!r} returned a Hessian of shape {hess.shape}; expected ({n}, {n})."
            )
        hess = symmetrize(hess)
    return GradientResult(
        value=np.asarray(value)[()],
        gradient=grad,
        hessian=hess,
        error=result.error,
        hessian_error=result.hessian_error,
        n_evals=result.n_evals,
        strategy=result.strategy or name,
        status=result.status if len(result.status) == n else (),
        params=result.params,
    )


def value_gradient(
    func: Callable[[], Any], params: Sequence[Any], *, strategy: Any = None
) -> tuple[Any, Any]:
    """Return ``(value, gradient)`` of ``func`` w.r.t. ``params``; see :func:`derivatives`.

    Examples
    --------
    >>> import zgrad
    >>> x = zgrad.Parameter("x", 2.0)
    >>> value, grad = zgrad.value_gradient(lambda: x**2, [x])
    >>> float(value), grad.tolist()
    (4.0, [4.0])
    """
    result = derivatives(func, params, strategy=strategy)
    return result.value, result.gradient


def gradient(func: Callable[[], Any], params: Sequence[Any], *, strategy: Any = None) -> Any:
    """Return the gradient of ``func`` w.r.t. ``params``, shape ``(n,)``; see :func:`derivatives`.

    Examples
    --------
    >>> import zgrad
    >>> x, y = zgrad.Parameter("x", 1.0), zgrad.Parameter("y", 2.0)
    >>> zgrad.gradient(lambda: x * y**2, [x, y]).tolist()
    [4.0, 4.0]
    """
    return derivatives(func, params, strategy=strategy).gradient


def hessian(func: Callable[[], Any], params: Sequence[Any], *, strategy: Any = None) -> Any:
    """Return the exactly symmetric Hessian of ``func`` w.r.t. ``params``, shape ``(n, n)``.

    Examples
    --------
    >>> import zgrad
    >>> x, y = zgrad.Parameter("x", 1.0), zgrad.Parameter("y", 2.0)
    >>> zgrad.hessian(lambda: x * y**2, [x, y]).tolist()
    [[0.0, 4.0], [4.0, 2.0]]
    """
    return derivatives(func, params, strategy=strategy, hessian=True).hessian
