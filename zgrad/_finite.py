"""The one finite-difference engine: every numerical derivative in zgrad is computed here.

Everything works on plain NumPy callables and never looks at TensorFlow. The numerical gradient
strategy, the ``z.py_function`` bridge and the minimizers' directional gradient check all call
it, and every function returns one :class:`FiniteResult` (estimate, error, evaluations, status).

- :func:`gradient`, budget ``'fast'``: one central difference per component, ``2 n``
  evaluations; closer to a limit than the step, central over half the room (``'near-limit'``);
  on a limit, a second-order three-point one-sided rule (also 2 evaluations).
- :func:`gradient`, budget ``'accurate'``: numdifftools' Richardson/Wynn extrapolation over a
  decreasing sequence of steps, at most ``30 n + 1`` evaluations, ``f(x)`` included.
- :func:`zgrad._finite_hessian.hessian`: extrapolated second differences, exactly symmetric,
  built on this module's results and steps.
- :func:`directional`: the accurate derivative along a direction, inside a box.
- :func:`array_derivative`: central differences of an array-valued function, elementwise or a
  full Jacobian (the bridge's vector-Jacobian products contract it).

The step rule lives here and nowhere else (:func:`first_step`, :data:`ACCURATE_FRACTION`):
steps scale with each component's ``scale`` and the resolution of the function's dtype, and
never leave ``[lower, upper]``. Close to a limit (closer than ``4`` largest steps) the accurate
gradient also differentiates in ``u = log(distance to the limit)``, a stencil that can neither
reach the limit nor straddle a singularity there, and keeps the one-sided estimate only where
both agree (status ``'near-limit'`` otherwise). Error estimates add a floor for rounding and for
evaluation noise measured from the evaluations themselves (see :mod:`zgrad._stencils`).
numdifftools is imported on first use (it takes ~0.4 s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zgrad import _stencils as st
from zgrad._stencils import STATUS_NEAR_LIMIT, STATUS_NONFINITE, STATUS_OK, STATUS_ONE_SIDED, STATUS_ROUNDING

__all__ = [
    "ACCURATE_FRACTION",
    "FiniteResult",
    "STATUS_NEAR_LIMIT",
    "STATUS_NONFINITE",
    "STATUS_OK",
    "STATUS_ONE_SIDED",
    "STATUS_ROUNDING",
    "array_derivative",
    "directional",
    "first_step",
    "gradient",
    "step_sequence",
]

BUDGETS = ("accurate", "fast")
#: Largest step of the accurate sequences (gradient and Hessian), as a fraction of the scale.
ACCURATE_FRACTION = 0.1
#: Steps shrink by this ratio along the extrapolation sequence.
_STEP_RATIO = 2.0
#: Steps per gradient component: a central rule costs 2 evaluations a step, so a component
#: costs at most 2 * 15 = 30 evaluations and a gradient 30 n + 1 with the shared f(x).
_NUM_STEPS = 15
#: Near a limit: the one-sided rule takes 15 steps (15 evaluations), the rule in log-distance
#: 7 central steps (14): together at most 29, inside the same budget.
_NUM_STEPS_LOCAL = 7
#: The largest step of the rule in ``u = log(distance to the limit)``: the stencil spans
#: distances from ``exp(-0.5)`` to ``exp(0.5)`` times the present one.
LOCAL_STEP = 0.5
#: A limit closer than this many largest steps counts as near.
_NEAR = 4.0
#: How much the final estimate amplifies noise of size ``delta`` in the f values, in units of
#: ``delta / h_final`` (``h_final``: numdifftools' ``final_step``). Measured on smooth functions
#: plus uniform noise: the 99th percentile was 6.5 (central) and 41 (one-sided).
_AMPLIFY = {0: 8.0, 1: 50.0, -1: 50.0}
#: A plain central difference amplifies noise ``delta`` by ``1 / h``; the three-point
#: one-sided rule ``(-3 f0 + 4 f1 - f2) / 2h`` by ``(3 + 4 + 1) / 2h``.
_AMPLIFY_FAST = {0: 1.0, 1: 4.0, -1: 4.0}
_METHODS = {0: "central", 1: "forward", -1: "backward"}


@dataclass(frozen=True)
class FiniteResult:
    """A finite-difference derivative with its error estimate, cost and status.

    Attributes
    ----------
    estimate : ndarray
        The derivative: shape ``(n,)`` for a gradient, ``(n, n)`` for a Hessian, ``(1,)`` for a
        directional derivative, the derivative array's shape for :func:`array_derivative`.
    error : ndarray
        Estimated absolute error, of the estimate's shape.
    n_evals : int
        Evaluations of the function made (a given ``f(x)`` is not counted).
    status : tuple of str
        Per component: ``'ok'``, ``'one-sided'``, ``'near-limit'``, ``'rounding-limited'`` or
        ``'non-finite'`` (for :func:`array_derivative`: one entry for the whole array).

    Examples
    --------
    >>> from zgrad._finite import gradient
    >>> r = gradient(lambda v: v[0] ** 2, [3.0], 1.0)
    >>> round(float(r.estimate[0]), 9), r.status, bool(r.error[0] < 1e-9), r.n_evals <= 31
    (6.0, ('ok',), True, True)
    """

    estimate: np.ndarray
    error: np.ndarray
    n_evals: int
    status: tuple[str, ...]


def first_step(scale: Any, eps: Any, depth: int = 0) -> np.ndarray:
    """Return the step of a single central difference: ``noise**(1/3) * scale``.

    ``noise`` is the relative accuracy of what is differenced: ``eps`` for a function, and for
    a derivative of depth ``d`` (itself a difference quotient) ``eps**((2/3)**d)``: the
    accuracy a central difference with the optimal step leaves.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad._finite import first_step
    >>> eps = np.finfo(np.float64).eps
    >>> [float(np.round(first_step(1.0, eps, d), 6)) for d in (0, 1)]
    [6e-06, 0.000332]
    """
    noise = np.asarray(eps, dtype=np.float64) ** ((2.0 / 3.0) ** depth)
    return np.cbrt(noise) * np.asarray(scale, dtype=np.float64)


def step_sequence(base: Any, num_steps: int) -> Any:
    """Return numdifftools' generator of ``num_steps`` steps from ``base`` down by :data:`_STEP_RATIO`.

    Every extrapolated rule of the engine (gradient, log-distance rule, Hessian) takes its
    steps from here, so the sequence is defined once.
    """
    import numdifftools as nd

    return nd.MaxStepGenerator(
        base_step=base, step_ratio=_STEP_RATIO, num_steps=num_steps, step_nom=1.0, use_exact_steps=False
    )


def gradient(
    f: Callable[[np.ndarray], Any],
    x: Any,
    scales: Any,
    lower: Any = None,
    upper: Any = None,
    f0: Any = None,
    *,
    budget: str = "accurate",
    x_eps: Any = None,
    f_batch: Callable[[np.ndarray], Any] | None = None,
) -> FiniteResult:
    """Gradient of ``f`` at ``x`` with an error estimate per component.

    Parameters
    ----------
    f : callable
        ``f(x)`` for a float64 vector ``x``, returning a real scalar (a float32 result is
        treated as accurate to float32 only).
    x : array_like, shape (n,)
        The point.
    scales : array_like, shape (n,) or scalar
        The scale on which ``f`` changes shape along each component. The fast budget steps
        :func:`first_step` of it, the accurate sequence starts at ``0.1`` of it.
    lower, upper : array_like, optional
        Limits per component (``None``, ``±inf`` or NaN: unbounded). No evaluation leaves them.
    f0 : scalar, optional
        ``f(x)`` if already known (its dtype counts); otherwise it is evaluated.
    budget : {'accurate', 'fast'}, default 'accurate'
        ``'accurate'``: at most 30 evaluations per component; ``'fast'``: exactly 2.
    x_eps : array_like, optional
        Relative precision in which ``f`` really receives each coordinate (default float64's).
    f_batch : callable, optional
        Fast budget only: ``f_batch(points)`` for an array of shape ``(2 n, n)`` returning the
        ``2 n`` values at once; the same points and count as with ``f`` alone.

    Returns
    -------
    FiniteResult

    Raises
    ------
    ValueError
        For an unknown budget, ``f_batch`` with the accurate budget, ``x`` outside the limits,
        non-positive scales, or ``f`` returning anything but a real scalar.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad._finite import gradient
    >>> r = gradient(lambda v: np.exp(v[0]) * v[1], [1.0, 2.0], 1.0)
    >>> bool(np.allclose(r.estimate, [2 * np.e, np.e], rtol=1e-10)), r.status
    (True, ('ok', 'ok'))
    >>> r = gradient(lambda v: np.log(1 - v[0]), [1 - 1e-6], 1.0, lower=0.0, upper=1.0)
    >>> bool(abs(r.estimate[0] + 1e6) <= r.error[0] < 1.0), r.status  # central in log(1 - x)
    (True, ('rounding-limited',))
    >>> fast = gradient(lambda v: (v[0] - 1.0) ** 2 + v[1] ** 3, [3.0, 2.0], 1.0, budget="fast")
    >>> np.round(fast.estimate, 6).tolist(), fast.n_evals
    ([4.0, 12.0], 5)
    """
    if budget not in BUDGETS:
        raise ValueError(f"budget={budget!r} is not allowed; choose one of {list(BUDGETS)}.")
    if f_batch is not None and budget != "fast":
        raise ValueError("f_batch is used by the fast budget only; got it with budget='accurate'.")
    x, scales, lo, hi, x_eps = st.prepare(x, scales, lower, upper, x_eps)
    counted = st.Counted(f, x, lo, hi)
    counted.f0 = counted(x) if f0 is None else st.as_float(f0, counted)
    if budget == "fast":
        return _fast_gradient(counted, x, scales, lo, hi, x_eps, f_batch)
    return _accurate_gradient(counted, x, scales, lo, hi, x_eps)


def _fast_gradient(
    counted: st.Counted, x: np.ndarray, scales: np.ndarray, lo: np.ndarray, hi: np.ndarray,
    x_eps: np.ndarray, f_batch: Callable | None,
) -> FiniteResult:  # fmt: skip
    n = x.size
    steps = first_step(scales, np.maximum(counted.eps, x_eps))
    plans = [st.fast_plan(x[i], steps[i], lo[i], hi[i]) for i in range(n)]
    if f_batch is not None:
        counted.prefetch(f_batch, [p for i, plan in enumerate(plans) for p in st.stencil_points(x, i, *plan)])
    estimate, error, status = np.empty(n), np.empty(n), []
    for i in range(n):
        counted.reset_window()
        side, h = plans[i]
        g, curvature, h_used = st.difference(counted, x, i, side, h)
        floor = st.rounding_floor(
            _AMPLIFY_FAST[side], counted.eps, counted.max_abs, x_eps[i], x[i], g, h_used
        )
        truncation = abs(curvature) * h_used / 2.0
        estimate[i] = g
        error[i] = truncation + floor if np.isfinite(g) else np.inf
        reach = counted.slope_scale(h_used * (2.0 if side else 1.0))
        geometry = STATUS_ONE_SIDED if side else (STATUS_NEAR_LIMIT if h < steps[i] else STATUS_OK)
        status.append(st.component_status(geometry, g, error[i], floor, truncation, counted.eps,
                                          counted.nonfinite, reach))  # fmt: skip
    return FiniteResult(estimate, error, counted.n, tuple(status))


def _accurate_gradient(
    counted: st.Counted, x: np.ndarray, scales: np.ndarray, lo: np.ndarray, hi: np.ndarray, x_eps: np.ndarray
) -> FiniteResult:
    n = x.size
    estimate, error = np.full(n, np.nan), np.full(n, np.inf)
    if not np.isfinite(counted.f0):
        return FiniteResult(estimate, error, counted.n, (STATUS_NONFINITE,) * n)
    status = []
    for i in range(n):
        line = _Line(counted, x, i, lo[i], hi[i], x_eps[i])
        estimate[i], error[i], state = line.derivative(ACCURATE_FRACTION * scales[i])
        status.append(state)
    return FiniteResult(estimate, error, counted.n, tuple(status))


class _Line:
    """``f`` along component ``i`` through ``x``: the accurate rules for one derivative."""

    def __init__(self, counted: st.Counted, x: np.ndarray, i: int, lo: float, hi: float, x_eps: float):
        self.counted, self.x, self.i, self.lo, self.hi, self.x_eps = counted, x, i, lo, hi, x_eps

    def at(self, t: float) -> float:
        point = self.x.copy()
        point[self.i] = t
        return self.counted(point)

    def derivative(self, base: float) -> tuple[float, float, str]:
        """``(estimate, error, status)``: central far from the limits, else one-sided and local."""
        xi = self.x[self.i]
        room_lo, room_hi = xi - self.lo, self.hi - xi
        if min(room_lo, room_hi) >= _NEAR * base:
            return self._extrapolate(0, base)
        side = 1 if room_hi >= room_lo else -1
        far = (room_hi if side > 0 else room_lo) * (1.0 - st.LIMIT_MARGIN)
        one_sided = self._extrapolate(side, min(base, far))
        if min(room_lo, room_hi) == 0.0:
            return one_sided
        local = self._local(-side)
        agree = abs(one_sided[0] - local[0]) <= one_sided[1] + local[1]
        if agree and np.isfinite(one_sided[1]) and one_sided[1] <= local[1]:
            return one_sided
        return local if np.isfinite(local[1]) or not np.isfinite(one_sided[1]) else one_sided

    def _extrapolate(self, side: int, base: float) -> tuple[float, float, str]:
        import numdifftools as nd

        self.counted.reset_window()
        seen: list[tuple[float, float]] = []

        def along(t: Any) -> float:
            value = self.at(float(t))
            seen.append((float(t) - self.x[self.i], value))
            return value

        generator = step_sequence(base, _NUM_STEPS)
        with st.Quiet():
            result = nd.Derivative(along, step=generator, method=_METHODS[side], full_output=True)(
                self.x[self.i]
            )
        geometry = STATUS_ONE_SIDED if side else STATUS_OK
        return self._judge(result, seen, _AMPLIFY[side], 1.0, geometry, base)

    def _local(self, toward: int) -> tuple[float, float, str]:
        """Differentiate centrally in ``u = log|x - limit|`` for the limit on side ``toward`` (+1 upper)."""
        import numdifftools as nd

        xi = self.x[self.i]
        limit = self.hi if toward > 0 else self.lo
        distance = abs(xi - limit)
        far = (xi - self.lo) if toward > 0 else (self.hi - xi)
        step = min(LOCAL_STEP, float(np.log1p(far * (1.0 - st.LIMIT_MARGIN) / distance)))
        u0, sign = float(np.log(distance)), -float(toward)
        self.counted.reset_window()
        seen: list[tuple[float, float]] = []

        def along(u: Any) -> float:
            u = float(u)
            value = self.counted.f0 if u == u0 else self.at(limit + sign * np.exp(u))
            seen.append((u - u0, value))
            return value

        generator = step_sequence(step, _NUM_STEPS_LOCAL)
        with st.Quiet():
            result = nd.Derivative(along, step=generator, method="central", full_output=True)(u0)
        return self._judge(result, seen, _AMPLIFY[0], sign * distance, STATUS_NEAR_LIMIT, step)

    def _judge(
        self, result: Any, seen: list, amplify: float, jacobian: float, geometry: str, reach: float
    ) -> tuple[float, float, str]:
        """Estimate, error and status in ``x`` from numdifftools' result in a variable ``x(t)``.

        ``jacobian`` is ``dx/dt`` at the centre: 1 for ``t = x``, ``±distance`` in log-distance.
        """
        counted = self.counted
        slope = float(result.estimate) / jacobian
        truncation = float(result.error_estimate) / abs(jacobian)
        offsets, values = (np.array(v, dtype=float) for v in zip((0.0, counted.f0), *seen, strict=True))
        noise = st.noise_level(offsets, values)
        xi, h_final = self.x[self.i], abs(float(result.final_step))
        floor = st.rounding_floor(amplify, counted.eps, counted.max_abs, self.x_eps, xi, slope,
                                  h_final, noise) / abs(jacobian)  # fmt: skip
        finite = np.isfinite(slope) and np.isfinite(truncation)
        error = truncation + floor if finite else np.inf
        state = st.component_status(geometry, slope, error, floor, truncation, counted.eps, counted.nonfinite,
                                    counted.slope_scale(reach * abs(jacobian)))  # fmt: skip
        return slope, error, state


def directional(
    f: Callable[[np.ndarray], Any],
    x: Any,
    direction: Any,
    lower: Any = None,
    upper: Any = None,
    f0: Any = None,
) -> FiniteResult:
    """Differentiate ``t -> f(x + t * direction)`` at ``t = 0``: the accurate rule on one line.

    The line is cut where it leaves the box ``[lower, upper]``, so a limit near ``x`` along
    the direction is handled as for :func:`gradient` (one-sided or in log-distance). The
    direction's length sets the scale: the largest step is ``0.1 * direction``.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad._finite import directional
    >>> r = directional(lambda v: v[0] ** 2 + 3 * v[1], [1.0, 2.0], [0.01, -0.01])
    >>> round(float(r.estimate[0]), 10), r.status
    (-0.01, ('ok',))
    """
    x = np.array(x, dtype=np.float64, ndmin=1)
    d = np.broadcast_to(np.asarray(direction, dtype=np.float64), x.shape)
    if not np.any(d) or not np.all(np.isfinite(d)):
        raise ValueError(f"direction must be finite and not zero; got {direction!r}.")
    _, _, lo, hi, _ = st.prepare(x, 1.0, lower, upper, None)
    moving = d != 0
    ends = np.stack([(lo - x)[moving] / d[moving], (hi - x)[moving] / d[moving]])
    t_lo, t_hi = float(np.max(np.min(ends, axis=0))), float(np.min(np.max(ends, axis=0)))

    def along(t: np.ndarray) -> Any:
        return f(np.clip(x + t[0] * d, lo, hi))

    return gradient(along, [0.0], 1.0 / ACCURATE_FRACTION, t_lo, t_hi, f0=f0)


def array_derivative(
    func: Callable, xs: Sequence[np.ndarray], i: int, mode: str, depth: int = 0
) -> FiniteResult:
    """Central-difference derivative of the array function ``func(*xs)`` w.r.t. ``xs[i]``.

    ``mode``: ``'scalar'`` and ``'elementwise'`` cost 2 evaluations and give an array of the
    output's shape; ``'full'`` costs 2 evaluations per element of ``xs[i]`` and gives shape
    output + input. The step is :func:`first_step` of ``max(|x|, 1)`` for the input's dtype at
    derivative ``depth`` (0 for a function, 1 for a derivative bridged again, ...). ``error`` is
    the rounding part only (two evaluations cannot measure the truncation); ``status`` has one
    entry for the whole array.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad._finite import array_derivative
    >>> r = array_derivative(np.sin, [np.array([0.0, 1.0])], 0, "elementwise")
    >>> bool(np.allclose(r.estimate, np.cos([0.0, 1.0]), rtol=1e-9)), r.n_evals, r.status
    (True, 2, ('ok',))
    """
    dtype = np.asarray(xs[i]).dtype
    dtype = dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)
    x = np.asarray(xs[i], dtype=np.float64)
    # h = step * max(|x|, 1), built in place: on 10^6 points every temporary array costs about as
    # much as a tenth of a SciPy special-function evaluation
    h = np.abs(x, out=np.empty_like(x))
    np.maximum(h, 1.0, out=h)
    h *= float(first_step(1.0, np.finfo(dtype).eps, depth))
    if mode in ("scalar", "elementwise"):
        estimate, error = _quotient(func, xs, i, x, h, dtype)
        n_evals = 2
    else:
        flat_h = h.reshape(-1)
        columns, errors = [], []
        for k in range(x.size):
            delta = np.zeros(x.size)
            delta[k] = flat_h[k]
            column, column_error = _quotient(func, xs, i, x, delta.reshape(x.shape), dtype, k)
            columns.append(column)
            errors.append(column_error)
        estimate = np.stack(columns, axis=-1) if columns else np.zeros((0,))
        error = np.stack(errors, axis=-1) if errors else np.zeros((0,))
        estimate = estimate.reshape(estimate.shape[:-1] + x.shape)
        error = error.reshape(estimate.shape)
        n_evals = 2 * x.size
    finite = bool(np.all(np.isfinite(estimate)))
    return FiniteResult(estimate, error, n_evals, (STATUS_OK if finite else STATUS_NONFINITE,))


def _quotient(
    func: Callable,
    xs: Sequence[np.ndarray],
    i: int,
    x: np.ndarray,
    delta: np.ndarray,
    dtype: Any,
    k: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One central quotient at points representable in the input's dtype, divided by their true distance."""
    upper = np.add(x, delta).astype(dtype, copy=False)
    lower = np.subtract(x, delta).astype(dtype, copy=False)
    span = np.subtract(upper, lower, dtype=np.float64)
    if k is not None:  # one element moved: its distance is the divisor
        span = span.reshape(-1)[k]
    f_plus, f_minus = _evaluate(func, xs, i, upper), _evaluate(func, xs, i, lower)
    output_eps = 2.0 * float(np.finfo(f_plus.dtype if f_plus.dtype.kind == "f" else np.float64).eps)
    f_plus, f_minus = f_plus.astype(np.float64, copy=False), f_minus.astype(np.float64, copy=False)
    error = np.abs(f_plus)
    error += np.abs(f_minus)
    error *= output_eps
    error /= np.abs(span)
    difference = np.subtract(f_plus, f_minus)
    difference /= span
    return difference, error


def _evaluate(func: Callable, xs: Sequence[np.ndarray], i: int, value: np.ndarray) -> np.ndarray:
    args = list(xs)
    args[i] = value
    return np.asarray(func(*args))
