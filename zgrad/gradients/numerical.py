"""The ``'numerical'`` strategy: finite differences of the loss, evaluated from Python.

The strategy moves each Parameter with ``assign``, calls the loss, and puts every Parameter
back to its exact original value afterwards, also when the loss raises. The differences
themselves live in :mod:`zgrad._finite` (numdifftools underneath). Moving Parameters in place
is not thread-safe: do not differentiate the same Parameters from two threads at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from zgrad import _finite, _finite_hessian, _policy
from zgrad.gradients.result import GradientResult
from zgrad.params import Parameter
from zgrad.typing import BatchedValues, limits_of

__all__ = ["NumericalStrategy"]

BUDGETS = ("accurate", "fast")

#: A Parameter's default ``step_size`` is 1 % of its value, so ``100 * step_size`` is taken as
#: the scale on which the loss changes shape (the steps themselves are chosen by zgrad._finite).
_SCALE_PER_STEP = 100.0


class NumericalStrategy:
    """Numerical derivatives by finite differences, with an error estimate per component.

    Two budgets:

    - ``'accurate'`` (default): Richardson-extrapolated differences (numdifftools) over a
      sequence of 15 steps per Parameter, at most ``30 n + 1`` evaluations with ``f(x)``. The
      error is numdifftools' estimate plus a floor for floating-point rounding, so that it
      covers the true error also where rounding dominates (float32 losses, badly scaled ones).
    - ``'fast'``: one central difference per Parameter, exactly ``2 n + 1`` evaluations with
      the value, for minimizer inner loops. Its error estimate is crude: ``|f''| h / 2`` from
      the same evaluations (the size of a one-sided rule's error, usually pessimistic for a
      central one) plus the rounding floor.

    Steps are scale-aware: the scale of a :class:`zgrad.Parameter` ``p`` is ``100 * p.step_size``
    (for any other variable, such as a zfit Parameter: ``max(|value|, 1)``). The fast step is
    ``eps**(1/3)`` times the scale (``eps`` of the loss's dtype), the accurate sequence starts
    at 0.1 times the scale. Steps never leave a Parameter's ``lower``/``upper`` limits: near a
    limit a component is differentiated one-sidedly (status ``'one-sided'``) and, in the
    accurate budget, also in the logarithm of the distance to the limit, which resolves a
    singularity at the limit (status ``'near-limit'`` where that estimate is the one kept).
    All of it is :mod:`zgrad._finite`, the engine shared with ``z.py_function`` and the
    minimizers' gradient check.

    Parameters
    ----------
    budget : {'accurate', 'fast'}, default 'accurate'

    Raises
    ------
    ValueError
        If ``budget`` is anything else.

    Notes
    -----
    The loss is evaluated from Python, so calling the strategy inside a trace raises
    ``RuntimeError``. Parameters are moved in place: differentiating the same Parameters from
    several threads at once is not safe.

    Examples
    --------
    >>> import zgrad
    >>> from zgrad.gradients.numerical import NumericalStrategy
    >>> x = zgrad.Parameter("x", 3.0)
    >>> result = NumericalStrategy().value_gradient(lambda: (x - 1.0) ** 2, [x])
    >>> round(float(result.value), 12), round(float(result.gradient[0]), 9), result.status
    (4.0, 4.0, ('ok',))
    >>> bool(result.error[0] < 1e-8), result.n_evals <= 31, float(x.value())
    (True, True, 3.0)
    >>> fast = NumericalStrategy("fast").value_gradient(lambda: (x - 1.0) ** 2, [x])
    >>> round(float(fast.gradient[0]), 6), fast.n_evals
    (4.0, 3)
    """

    name = "numerical"
    is_autograd = False
    provides_gradient = True

    def __init__(self, budget: str = "accurate") -> None:
        if not isinstance(budget, str) or budget not in BUDGETS:
            raise ValueError(f"budget={budget!r} is not allowed; choose one of {list(BUDGETS)}.")
        self._budget = budget

    @property
    def budget(self) -> str:
        """``'accurate'`` or ``'fast'``."""
        return self._budget

    def with_budget(self, budget: str) -> NumericalStrategy:
        """Return a new strategy with the given budget (this one is unchanged).

        Examples
        --------
        >>> from zgrad.gradients.numerical import NumericalStrategy
        >>> NumericalStrategy().with_budget("fast").budget
        'fast'
        """
        return NumericalStrategy(budget)

    def __repr__(self) -> str:
        return f"NumericalStrategy(budget={self._budget!r})"

    def value_gradient(self, func: Callable[[], Any], params: Sequence[tf.Variable]) -> GradientResult:
        """Value and gradient of ``func`` with respect to ``params``, with errors and cost.

        Parameters
        ----------
        func : callable
            Zero-argument callable returning a scalar (Python or NumPy number, or an eager
            tensor, float32 allowed) that reads the Parameters.
        params : sequence of tf.Variable
            Scalar variables (usually :class:`zgrad.Parameter`), in the order of the result.

        Returns
        -------
        GradientResult
            ``value`` (float64), ``gradient`` and ``error`` (float64 arrays), ``n_evals``,
            ``status`` per component, ``strategy='numerical'``, ``params`` (names).

        Raises
        ------
        RuntimeError
            Inside a trace.
        TypeError
            If ``params`` is not a non-empty sequence of scalar float ``tf.Variable``.

        Examples
        --------
        >>> import zgrad
        >>> from zgrad.gradients.numerical import NumericalStrategy
        >>> a = zgrad.Parameter("a", 0.5, lower=0.0, upper=0.5)
        >>> r = NumericalStrategy().value_gradient(lambda: a ** 2, [a])
        >>> round(float(r.gradient[0]), 9), r.status, float(a.value())
        (1.0, ('one-sided',), 0.5)
        """
        point = _Point(func, params, "value_gradient")
        with point:
            f0 = point.evaluate(point.x0)
            derivative = self._gradient(point, f0)
        return GradientResult(
            value=np.float64(f0),
            gradient=derivative.estimate,
            error=derivative.error,
            n_evals=derivative.n_evals + 1,
            strategy=self.name,
            status=derivative.status,
            params=point.names,
        )

    def hessian(self, func: Callable[[], Any], params: Sequence[tf.Variable]) -> GradientResult:
        """Value, gradient and Hessian of ``func``, with error estimates; the Hessian is exactly symmetric.

        The gradient comes from this strategy's budget; the Hessian always uses the extrapolated
        scheme of :func:`zgrad._finite_hessian.hessian` (a fast Hessian would not be accurate
        enough to be useful). ``n_evals`` counts both.

        Examples
        --------
        >>> import zgrad
        >>> from zgrad.gradients.numerical import NumericalStrategy
        >>> x, y = zgrad.Parameter("x", 1.0), zgrad.Parameter("y", 2.0)
        >>> r = NumericalStrategy().hessian(lambda: x ** 2 * y, [x, y])
        >>> (r.hessian.round(8) + 0.0).tolist(), bool((r.hessian == r.hessian.T).all())
        ([[4.0, 2.0], [2.0, 0.0]], True)
        """
        point = _Point(func, params, "hessian")
        with point:
            f0 = point.evaluate(point.x0)
            derivative = self._gradient(point, f0)
            second = _finite_hessian.hessian(
                point.evaluate, point.x0, point.scales, point.lower, point.upper, f0=f0, x_eps=point.x_eps
            )
        return GradientResult(
            value=np.float64(f0),
            gradient=derivative.estimate,
            hessian=second.estimate,
            error=derivative.error,
            hessian_error=second.error,
            n_evals=1 + derivative.n_evals + second.n_evals,
            strategy=self.name,
            status=derivative.status,
            params=point.names,
        )

    def _gradient(self, point: _Point, f0: np.ndarray) -> _finite.FiniteResult:
        batch = point.evaluate_batch if self._budget == "fast" and point.batched else None
        return _finite.gradient(
            point.evaluate,
            point.x0,
            point.scales,
            point.lower,
            point.upper,
            f0=f0,
            budget=self._budget,
            x_eps=point.x_eps,
            f_batch=batch,
        )


class _Point:
    """The Parameters at their current values: evaluates ``func`` elsewhere, restores on exit."""

    def __init__(self, func: Callable[[], Any], params: Any, method: str) -> None:
        if _policy.in_trace():
            raise RuntimeError(
                f"NumericalStrategy.{method} was called inside a trace: the numerical strategy "
                "evaluates the loss from Python; call it eagerly (outside tf.function / z.function)."
            )
        if not callable(func):
            raise TypeError(f"func must be a zero-argument callable; got {func!r} ({type(func).__name__}).")
        self.params = _checked_params(params)
        self._func = func
        self._originals = [p.numpy() for p in self.params]
        self.x0 = np.array([float(v) for v in self._originals], dtype=np.float64)
        self.names = tuple(str(p.name) for p in self.params)
        self.lower, self.upper = (np.array(side) for side in zip(*map(limits_of, self.params), strict=True))
        self.scales = np.array([_scale(p, x) for p, x in zip(self.params, self.x0, strict=True)])
        self.x_eps = np.array([float(np.finfo(p.dtype.as_numpy_dtype).eps) for p in self.params])
        self._current = self.x0.copy()

    @property
    def batched(self) -> bool:
        """Whether ``func`` evaluates several points in one call (:class:`~zgrad.typing.BatchedValues`)."""
        return isinstance(self._func, BatchedValues)

    def evaluate_batch(self, points: np.ndarray) -> np.ndarray:
        """Values at each row of ``points`` in one call; the Parameters end where they started."""
        values = self._func.zgrad_values(tuple(self.params), tuple(p.ref() for p in self.params), points)
        return np.asarray(values.numpy() if isinstance(values, tf.Tensor) else values)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Set the Parameters that differ from the last point, call ``func``, return a NumPy scalar."""
        for i in np.flatnonzero(x != self._current):
            param = self.params[i]
            param.assign(np.asarray(x[i], dtype=param.dtype.as_numpy_dtype))
            self._current[i] = x[i]
        value = self._func()
        if isinstance(value, (tf.Tensor, tf.Variable)):
            value = value.numpy()
        return np.asarray(value)

    def __enter__(self) -> _Point:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for param, original in zip(self.params, self._originals, strict=True):
            param.assign(original)


def _checked_params(params: Any) -> list[tf.Variable]:
    if isinstance(params, (tf.Variable, str, bytes)) or not isinstance(params, Sequence) or not params:
        raise TypeError(
            f"params must be a non-empty sequence (list or tuple) of tf.Variable / zgrad.Parameter; "
            f"got {params!r} ({type(params).__name__})."
        )
    seen = set()
    for i, param in enumerate(params):
        if not isinstance(param, tf.Variable):
            raise TypeError(
                f"params[{i}] must be a tf.Variable or zgrad.Parameter; got {param!r} "
                f"({type(param).__name__})."
            )
        if param.shape.rank != 0 or not param.dtype.is_floating:
            raise TypeError(
                f"params[{i}] ({param.name!r}) must be a scalar floating-point variable; "
                f"got shape {param.shape} and dtype {param.dtype.name}."
            )
        if param.ref() in seen:
            raise ValueError(f"params[{i}] ({param.name!r}) appears more than once in params.")
        seen.add(param.ref())
    return list(params)


def _scale(param: tf.Variable, value: float) -> float:
    """Return the scale on which the loss changes shape along ``param`` (see the class docstring)."""
    # only zgrad's Parameters document a step size (zfit's, for one, warn on this name)
    step = param.step_size if isinstance(param, Parameter) else None
    if step is not None and np.isfinite(step) and step > 0:
        return _SCALE_PER_STEP * float(step)
    return max(abs(value), 1.0)
