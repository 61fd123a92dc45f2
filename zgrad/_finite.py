"""Finite differences on NumPy callables, with honest error estimates and counted evaluations.

Everything here works on a plain callable ``f(x) -> scalar`` of a float64 vector ``x``
and never looks at TensorFlow: the numerical gradient strategy and the ``z.py_function``
bridge both build on it. Two budgets:

- :func:`central_gradient` (*fast*): one central difference per component, 2 evaluations
  each, a second-order three-point one-sided rule (also 2 evaluations) near a limit.
- :func:`extrapolated_gradient` (*accurate*): numdifftools' Richardson/Wynn extrapolation
  over a decreasing sequence of steps, at most ``30 n + 1`` evaluations, ``f(x)`` included.

Steps never leave ``[lower, upper]``. numdifftools' own error estimate measures how well the
extrapolation converged but ignores floating-point rounding, so a *rounding floor* is added to
it (see :func:`_rounding_floor`). numdifftools is imported on first use (it takes ~0.4 s).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["central_gradient", "extrapolated_gradient", "extrapolated_hessian"]

# The status codes of zgrad.gradients.result, repeated here because the ground layer must not
# import the strategy layer; a test asserts that both spellings agree.
STATUS_OK = "ok"
STATUS_ROUNDING = "rounding-limited"
STATUS_ONE_SIDED = "one-sided"
STATUS_NONFINITE = "non-finite"

#: Steps shrink by this ratio along the extrapolation sequence.
_STEP_RATIO = 2.0
#: Steps per gradient component: a central rule costs 2 evaluations a step, so a component
#: costs at most 2 * 15 = 30 evaluations and a gradient 30 n + 1 with the shared f(x).
_NUM_STEPS = 15
#: Steps per Hessian sequence (a central Hessian costs 2 n**2 evaluations a step); five are
#: the fewest that numdifftools can extrapolate with Richardson and then Wynn's epsilon.
_NUM_STEPS_HESSIAN = 8
#: A central rule may shrink its steps by up to this factor to fit between the limits before
#: a one-sided rule (less accurate for the same steps) is used instead.
_MAX_CENTRAL_SHRINK = 8.0
#: Keep evaluation points this fraction of the room away from a limit, so that rounding in
#: ``x + h`` cannot step over it; the evaluation wrapper clips as a last guard.
_LIMIT_MARGIN = 1e-9
#: An evaluation is taken to be accurate to this many units of ``eps * |f|``.
_NOISE_ULPS = 2.0
#: How much the final estimate amplifies noise of size ``delta`` in the f values, in units of
#: ``delta / h_final`` (``h_final``: numdifftools' ``final_step``). Measured on smooth functions
#: plus uniform noise: the 99th percentile was 6.5 (central) and 41 (one-sided).
_AMPLIFY = {0: 8.0, 1: 50.0, -1: 50.0}
#: Same for the Hessian, in units of ``delta / (h_i h_j)``.
_AMPLIFY_HESSIAN = {0: 20.0, 1: 100.0}
#: A plain central difference amplifies noise ``delta`` by ``1 / h``; the three-point
#: one-sided rule ``(-3 f0 + 4 f1 - f2) / 2h`` by ``(3 + 4 + 1) / 2h``.
_AMPLIFY_FAST = {0: 1.0, 1: 4.0, -1: 4.0}

_METHODS = {0: "central", 1: "forward", -1: "backward"}


class _Counted:
    """Evaluate ``f`` on float64 vectors: count calls, check the output, track magnitude and dtype.

    ``f(x0)`` is served from memory once known, so numdifftools' own call at the centre
    costs nothing. User code runs under the floating-point error settings that were in
    force when the wrapper was made, not numdifftools' ``errstate``.
    """

    def __init__(self, f: Callable[[np.ndarray], Any], x0: np.ndarray, lower: np.ndarray, upper: np.ndarray):
        self._f = f
        self._x0 = x0
        self._lower = lower
        self._upper = upper
        self._errstate = np.geterr()
        self.f0: float | None = None
        #: values computed ahead of time for whole batches of points, by their bytes
        self._prefetched: dict[bytes, Any] = {}
        self.n = 0
        self.eps = float(np.finfo(np.float64).eps)
        self.max_abs = 0.0
        self.low = self.high = 0.0
        self.nonfinite = False

    def __call__(self, x: np.ndarray) -> float:
        x = np.clip(np.asarray(x, dtype=np.float64), self._lower, self._upper)
        if self.f0 is not None and np.array_equal(x, self._x0):
            return self.f0
        raw = self._prefetched.pop(x.tobytes(), None)
        if raw is None:
            with np.errstate(**self._errstate):
                raw = self._f(x)
        self.n += 1
        value = _as_float(raw, self)
        if np.isfinite(value):
            self.max_abs = max(self.max_abs, abs(value))
            self.low, self.high = min(self.low, value), max(self.high, value)
        else:
            self.nonfinite = True
        return value

    def prefetch(self, f_batch: Callable[[np.ndarray], Any], points: list[np.ndarray]) -> None:
        """Evaluate ``points`` in one call of ``f_batch``; later calls at those points use the values."""
        points = [np.clip(p, self._lower, self._upper) for p in points]
        with np.errstate(**self._errstate):
            values = list(f_batch(np.stack(points)))
        if len(values) != len(points):
            raise ValueError(f"f_batch returned {len(values)} values for {len(points)} points.")
        self._prefetched.update((p.tobytes(), v) for p, v in zip(points, values, strict=True))

    def reset_window(self) -> None:
        """Start tracking magnitude, spread and finiteness afresh (per component), keeping f(x0)."""
        finite = self.f0 is not None and bool(np.isfinite(self.f0))
        self.max_abs = abs(self.f0) if finite else 0.0
        self.low = self.high = self.f0 if finite else 0.0
        self.nonfinite = not finite

    def slope_scale(self, reach: float) -> float:
        """How much f varied in this window per unit of the largest excursion ``reach``."""
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: the status says non-finite
            return (self.high - self.low) / reach


def _as_float(raw: Any, counter: _Counted) -> float:
    value = np.asarray(raw)
    if value.dtype.kind not in "fiu" or value.size != 1:
        raise ValueError(
            f"The function must return a real scalar; got {type(raw).__name__} with shape "
            f"{value.shape} and dtype {value.dtype}."
        )
    if value.dtype.kind == "f":
        # a float32 (or float16) result is only that accurate, whatever it is converted to later
        counter.eps = max(counter.eps, float(np.finfo(value.dtype).eps))
    return float(value.reshape(()))


def _prepare(
    x: Any, steps: Any, lower: Any, upper: Any, x_eps: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = np.array(x, dtype=np.float64, ndmin=1)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be a finite 1-D array; got {x!r}.")
    n = x.size
    steps = np.broadcast_to(np.asarray(steps, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(steps) & (steps > 0)):
        raise ValueError(f"steps must be positive and finite; got {steps!r}.")
    lo = np.full(n, -np.inf) if lower is None else np.broadcast_to(np.asarray(lower, float), (n,)).copy()
    hi = np.full(n, np.inf) if upper is None else np.broadcast_to(np.asarray(upper, float), (n,)).copy()
    lo = np.where(np.isnan(lo), -np.inf, lo)
    hi = np.where(np.isnan(hi), np.inf, hi)
    if np.any(x < lo) or np.any(x > hi):
        raise ValueError(f"x = {x!r} lies outside the limits [{lo!r}, {hi!r}].")
    if np.any(lo >= hi):
        raise ValueError(f"Every lower limit must be below its upper limit; got [{lo!r}, {hi!r}].")
    eps64 = float(np.finfo(np.float64).eps)
    x_eps = np.broadcast_to(np.asarray(eps64 if x_eps is None else x_eps, float), (n,)).copy()
    return x, steps, lo, hi, x_eps


def _plan(x: float, step: float, lo: float, hi: float, reach: float) -> tuple[int, float]:
    """Choose the rule for one component: ``(side, step)``, side 0 central, +1 forward, -1 backward.

    ``reach`` is how many steps the rule goes out from ``x``. A central rule is kept, with its
    steps shrunk to fit, while that costs at most a factor ``_MAX_CENTRAL_SHRINK``; otherwise the
    one-sided rule goes towards the side with more room.
    """
    room_lo = (x - lo) * (1.0 - _LIMIT_MARGIN)
    room_hi = (hi - x) * (1.0 - _LIMIT_MARGIN)
    want = reach * step
    room = min(room_lo, room_hi)
    if room >= want:
        return 0, step
    if room * _MAX_CENTRAL_SHRINK >= want:
        return 0, room / reach
    side = 1 if room_hi >= room_lo else -1
    return side, min(step, max(room_lo, room_hi) / reach)


def _rounding_floor(
    amplify: float, eps: float, magnitude: float, x_eps: float, x: float, slope: float, step: float
) -> float:
    """Error a derivative estimate can owe to rounding alone.

    Each f value is taken to be wrong by up to ``delta = _NOISE_ULPS * eps * |f|``, plus what
    rounding the input coordinate to its own precision does to f (``x_eps * |x * df/dx|``).
    The estimate amplifies ``delta`` by ``amplify / step``.
    """
    delta = _NOISE_ULPS * (eps * magnitude + x_eps * abs(x * slope))
    return amplify * delta / step


def _status(
    side: int,
    value: float,
    error: float,
    floor: float,
    truncation: float,
    eps: float,
    nonfinite: bool,
    slope_scale: float,
) -> str:
    """Per-component status: non-finite, else rounding-limited, else one-sided, else ok.

    Rounding-limited means the rounding floor dominates the error and exceeds ``sqrt(eps)``
    relative to the larger of the slope and ``slope_scale`` (how much f varied over the steps,
    per unit step: the yardstick where the slope itself is zero, e.g. at a minimum): more than
    half the digits are lost to rounding.
    """
    if nonfinite or not (np.isfinite(value) and np.isfinite(error)):
        return STATUS_NONFINITE
    if floor > truncation and floor > np.sqrt(eps) * max(abs(value), slope_scale):
        return STATUS_ROUNDING
    return STATUS_ONE_SIDED if side else STATUS_OK


def central_gradient(
    f: Callable[[np.ndarray], Any],
    x: Any,
    steps: Any,
    lower: Any = None,
    upper: Any = None,
    f0: float | None = None,
    *,
    full_output: bool = False,
    x_eps: Any = None,
    f_batch: Callable[[np.ndarray], Any] | None = None,
) -> tuple[np.ndarray, int] | tuple[np.ndarray, np.ndarray, int, tuple[str, ...]]:
    """Gradient by one central difference per component: the fast budget, ``2 n`` evaluations.

    Near a limit, where ``x ± step`` would leave ``[lower, upper]``, the component uses the
    second-order one-sided rule ``±(-3 f(x) + 4 f(x ± h) - f(x ± 2h)) / 2h`` (also two
    evaluations, ``f(x)`` shared). No evaluation point lies outside the limits.

    Parameters
    ----------
    f : callable
        ``f(x)`` for a float64 vector ``x``, returning a real scalar.
    x : array_like, shape (n,)
        The point.
    steps : array_like, shape (n,) or scalar
        Step per component (shrunk where the limits leave less room).
    lower, upper : array_like, optional
        Limits per component (``None``, ``±inf`` or NaN: unbounded).
    f0 : float, optional
        ``f(x)`` if already known; otherwise it is evaluated (one more evaluation).
    full_output : bool, default False
        Also return a crude error estimate per component and a status per component.
    x_eps : array_like, optional
        Relative precision in which ``f`` really receives each coordinate (default float64's
        eps); it enters the rounding part of the error estimate.
    f_batch : callable, optional
        ``f_batch(points)`` for an array of shape ``(2 n, n)`` returning the ``2 n`` values at
        once (e.g. a loss evaluating several parameter points in one graph call); the same
        points and the same count of evaluations as with ``f`` alone.

    Returns
    -------
    gradient : ndarray, shape (n,)
    error : ndarray, shape (n,)
        Only with ``full_output``: ``|f''| h / 2`` from the same evaluations (the size of the
        first neglected term of a *one-sided* rule, so usually pessimistic for a central one)
        plus the rounding floor.
    n_evals : int
        Evaluations of ``f`` made here: ``2 n``, plus one when ``f0`` was not given.
    status : tuple of str
        Only with ``full_output``: ``'ok'``, ``'one-sided'``, ``'rounding-limited'`` or
        ``'non-finite'`` per component.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad._finite import central_gradient
    >>> g, n = central_gradient(lambda v: (v[0] - 1.0) ** 2 + v[1] ** 3, [3.0, 2.0], 1e-5)
    >>> np.round(g, 6).tolist(), n
    ([4.0, 12.0], 5)
    >>> g, n = central_gradient(lambda v: v[0] ** 2, [1.0], 1e-5, lower=0.0, upper=1.0)
    >>> round(float(g[0]), 6), n
    (2.0, 3)
    """
    x, steps, lo, hi, x_eps = _prepare(x, steps, lower, upper, x_eps)
    counted = _Counted(f, x, lo, hi)
    counted.f0 = counted(x) if f0 is None else float(f0)
    n = x.size
    gradient, error = np.empty(n), np.empty(n)
    status: list[str] = []
    plans = [_fast_plan(x[i], steps[i], lo[i], hi[i]) for i in range(n)]
    if f_batch is not None:
        counted.prefetch(f_batch, [p for i, plan in enumerate(plans) for p in _points(x, i, *plan)])
    for i in range(n):
        counted.reset_window()
        side, h = plans[i]
        g, curvature, h_used = _difference(counted, x, i, side, h)
        floor = _rounding_floor(_AMPLIFY_FAST[side], counted.eps, counted.max_abs, x_eps[i], x[i], g, h_used)
        truncation = abs(curvature) * h_used / 2.0
        gradient[i] = g
        error[i] = truncation + floor if np.isfinite(g) else np.inf
        status.append(
            _status(
                side,
                g,
                error[i],
                floor,
                truncation,
                counted.eps,
                counted.nonfinite,
                counted.slope_scale(h_used * (2.0 if side else 1.0)),
            )
        )
    if full_output:
        return gradient, error, counted.n, tuple(status)
    return gradient, counted.n


def _fast_plan(x: float, step: float, lo: float, hi: float) -> tuple[int, float]:
    side, h = _plan(x, step, lo, hi, reach=1.0)
    return _plan(x, step, lo, hi, reach=2.0) if side else (side, h)


def _points(x: np.ndarray, i: int, side: int, h: float) -> list[np.ndarray]:
    """Return the points :func:`_difference` evaluates for component ``i`` (same rounding)."""
    offsets = (h, -h) if side == 0 else (side * h, 2.0 * side * h)
    out = []
    for t in offsets:
        point = x.copy()
        point[i] = x[i] + t
        out.append(point)
    return out


def _difference(counted: _Counted, x: np.ndarray, i: int, side: int, h: float) -> tuple[float, float, float]:
    """:func:`_difference_unguarded` without NumPy warnings for non-finite values."""
    # Non-finite loss values (inf - inf) are reported through the component's status
    # ('non-finite'), not as NumPy warnings, which a warnings-as-errors setting would raise.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _difference_unguarded(counted, x, i, side, h)


def _difference_unguarded(
    counted: _Counted, x: np.ndarray, i: int, side: int, h: float
) -> tuple[float, float, float]:
    """One difference quotient for component ``i``: ``(slope, curvature, |step|)``.

    The steps actually taken, ``(x + h) - x`` after rounding, are used in the formulas.
    """

    def at(t: float) -> tuple[float, float]:
        point = x.copy()
        point[i] = np.clip(x[i] + t, counted._lower[i], counted._upper[i])
        return counted(point), point[i] - x[i]

    f0 = counted.f0
    if side == 0:
        f_plus, h_plus = at(h)
        f_minus, h_minus = at(-h)
        h_minus = -h_minus
        slope = (f_plus - f_minus) / (h_plus + h_minus)
        curvature = 2.0 * (h_minus * f_plus + h_plus * f_minus - (h_plus + h_minus) * f0)
        curvature /= h_plus * h_minus * (h_plus + h_minus)
        return slope, curvature, min(h_plus, h_minus)
    f1, h1 = at(side * h)
    f2, h2 = at(2.0 * side * h)
    # derivative at 0 of the parabola through (0, f0), (h1, f1), (h2, f2); h1, h2 carry the sign
    slope = -(h1 + h2) / (h1 * h2) * f0 + h2 / (h1 * (h2 - h1)) * f1 - h1 / (h2 * (h2 - h1)) * f2
    curvature = 2.0 * (f0 / (h1 * h2) - f1 / (h1 * (h2 - h1)) + f2 / (h2 * (h2 - h1)))
    return slope, curvature, abs(h1)


def extrapolated_gradient(
    f: Callable[[np.ndarray], Any],
    x: Any,
    steps: Any,
    lower: Any = None,
    upper: Any = None,
    f0: float | None = None,
    *,
    x_eps: Any = None,
) -> tuple[np.ndarray, np.ndarray, int, tuple[str, ...]]:
    """Gradient by Richardson-extrapolated differences with an error estimate: the accurate budget.

    Each component runs ``numdifftools.Derivative`` over 15 steps ``steps[i] / 2**k``
    (``k = 0 .. 14``): a central rule where ``x ± steps[i]`` fits between the limits (steps
    shrunk up to 8x to fit), else a one-sided rule towards the side with room. ``f(x)`` is
    evaluated once and shared, so at most ``30 n + 1`` evaluations are made.

    Components are differentiated one at a time because ``numdifftools.Gradient`` applies
    one rule (central, forward or backward) to every component, while a component near a
    limit needs a one-sided rule and the others should stay central.

    Parameters
    ----------
    f : callable
        ``f(x)`` for a float64 vector ``x``, returning a real scalar (a float32 result is
        treated as accurate to float32 only).
    x : array_like, shape (n,)
        The point.
    steps : array_like, shape (n,) or scalar
        The largest step per component; the sequence decreases from it.
    lower, upper : array_like, optional
        Limits per component (``None``, ``±inf`` or NaN: unbounded).
    f0 : float, optional
        ``f(x)`` if already known (then at most ``30 n`` evaluations are made here).
    x_eps : array_like, optional
        Relative precision in which ``f`` really receives each coordinate (default float64's).

    Returns
    -------
    gradient : ndarray, shape (n,)
    error : ndarray, shape (n,)
        numdifftools' error estimate plus a rounding floor: ``C * delta / h`` with ``h`` the
        step of the chosen estimate, ``delta = 2 eps (max |f| + |x_i df/dx_i|)`` the assumed
        error of one evaluation (``eps`` of f's dtype) and ``C`` the measured noise
        amplification of the rule (8 central, 50 one-sided).
    n_evals : int
        Evaluations of ``f`` made here.
    status : tuple of str
        Per component: ``'ok'``; ``'one-sided'``; ``'rounding-limited'`` (the rounding floor
        dominates and exceeds ``sqrt(eps)`` relative); ``'non-finite'`` (an evaluation or the
        estimate was not finite).

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad._finite import extrapolated_gradient
    >>> g, err, n, status = extrapolated_gradient(lambda v: np.exp(v[0]) * v[1], [1.0, 2.0], 0.1)
    >>> bool(abs(g[0] - 2 * np.e) < 1e-10 and abs(g[1] - np.e) < 1e-10), n <= 61, status
    (True, True, ('ok', 'ok'))
    >>> g, err, n, status = extrapolated_gradient(lambda v: v[0] ** 3, [0.0], 0.1, lower=0.0)
    >>> bool(abs(g[0]) <= err[0] < 1e-8), status
    (True, ('one-sided',))
    """
    import numdifftools as nd

    x, steps, lo, hi, x_eps = _prepare(x, steps, lower, upper, x_eps)
    counted = _Counted(f, x, lo, hi)
    counted.f0 = counted(x) if f0 is None else float(f0)
    n = x.size
    gradient, error = np.full(n, np.nan), np.full(n, np.inf)
    if not np.isfinite(counted.f0):
        return gradient, error, counted.n, (STATUS_NONFINITE,) * n
    status: list[str] = []
    for i in range(n):
        counted.reset_window()
        side, base = _plan(x[i], steps[i], lo[i], hi[i], reach=1.0)
        generator = nd.MaxStepGenerator(
            base_step=base, step_ratio=_STEP_RATIO, num_steps=_NUM_STEPS, step_nom=1.0, use_exact_steps=False
        )

        def along(t: Any, i: int = i) -> float:
            point = x.copy()
            point[i] = t
            return counted(point)

        with _quiet():
            result = nd.Derivative(along, step=generator, method=_METHODS[side], full_output=True)(x[i])
        g = float(result.estimate)
        truncation = float(result.error_estimate)
        floor = _rounding_floor(
            _AMPLIFY[side], counted.eps, counted.max_abs, x_eps[i], x[i], g, abs(float(result.final_step))
        )
        gradient[i] = g
        error[i] = truncation + floor if np.isfinite(g) and np.isfinite(truncation) else np.inf
        status.append(
            _status(
                side,
                g,
                error[i],
                floor,
                truncation,
                counted.eps,
                counted.nonfinite,
                counted.slope_scale(base),
            )
        )
    return gradient, error, counted.n, tuple(status)


def extrapolated_hessian(
    f: Callable[[np.ndarray], Any],
    x: Any,
    steps: Any,
    lower: Any = None,
    upper: Any = None,
    f0: float | None = None,
    *,
    x_eps: Any = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Hessian by Richardson-extrapolated differences (``numdifftools.Hessian``), exactly symmetric.

    The central rule reaches ``x ± 2 h`` on the diagonal. If every component has that room
    (steps shrunk up to 8x to fit), all are central; otherwise the forward rule is used for
    all, mirrored per component (``f(x0 + s * y)`` with ``s = ±1``) so that each goes
    towards the side of its own limit that has room. Eight steps ``steps[i] / 2**k``.

    Parameters
    ----------
    f, x, steps, lower, upper, f0, x_eps
        As for :func:`extrapolated_gradient`.

    Returns
    -------
    hessian : ndarray, shape (n, n)
        Exactly symmetric.
    error : ndarray, shape (n, n)
        numdifftools' estimate plus a rounding floor ``C * delta / (h_i h_j)``; symmetric.
    n_evals : int
        Evaluations of ``f`` made here: at most ``1 + 8 * 2 n**2``.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad._finite import extrapolated_hessian
    >>> h, err, n = extrapolated_hessian(lambda v: v[0] ** 2 * v[1], [1.0, 3.0], 0.1)
    >>> np.round(h, 8).tolist(), bool(np.all(h == h.T))
    ([[6.0, 2.0], [2.0, 0.0]], True)
    """
    import numdifftools as nd

    x, steps, lo, hi, x_eps = _prepare(x, steps, lower, upper, x_eps)
    counted = _Counted(f, x, lo, hi)
    counted.f0 = counted(x) if f0 is None else float(f0)
    n = x.size
    if not np.isfinite(counted.f0):
        return np.full((n, n), np.nan), np.full((n, n), np.inf), counted.n
    plans = [_plan(x[i], steps[i], lo[i], hi[i], reach=2.0) for i in range(n)]
    sides = np.array([side for side, _ in plans])
    base = np.array([step for _, step in plans])
    one_sided = bool(np.any(sides != 0))
    if one_sided:
        sides = np.where(sides == 0, np.where(hi - x >= x - lo, 1, -1), sides)
        base = np.array(
            [
                _plan(x[i], steps[i], x[i] if sides[i] > 0 else lo[i], hi[i] if sides[i] > 0 else x[i], 2.0)[
                    1
                ]
                for i in range(n)
            ]
        )
    mirror = np.where(sides < 0, -1.0, 1.0)

    def mirrored(y: np.ndarray) -> float:
        return counted(x + mirror * y)

    counted.reset_window()
    generator = nd.MaxStepGenerator(
        base_step=base,
        step_ratio=_STEP_RATIO,
        num_steps=_NUM_STEPS_HESSIAN,
        step_nom=1.0,
        use_exact_steps=False,
    )
    method = "forward" if one_sided else "central"
    with _quiet():
        result = nd.Hessian(mirrored, step=generator, method=method, full_output=True)(np.zeros(n))
    hessian = np.asarray(result.estimate, dtype=np.float64).reshape(n, n) * np.outer(mirror, mirror)
    error = np.abs(np.asarray(result.error_estimate, dtype=np.float64).reshape(n, n))
    # final_step[i, j] is step j of the chosen index; the same index scales every component
    shrink = np.abs(np.asarray(result.final_step, dtype=np.float64).reshape(n, n)) / base[None, :]
    h_i, h_j = base[:, None] * shrink, base[None, :] * shrink
    delta = _NOISE_ULPS * (counted.eps * counted.max_abs)
    error = error + _AMPLIFY_HESSIAN[int(one_sided)] * delta / (h_i * h_j)
    hessian = 0.5 * (hessian + hessian.T)
    error = np.maximum(error, error.T)
    error[~np.isfinite(hessian)] = np.inf
    return hessian, error, counted.n


class _quiet(warnings.catch_warnings):
    """Silence numdifftools' own warnings (e.g. 'All-NaN slice' when f is NaN on every step).

    Only warnings attributed to numdifftools' modules are ignored; the user's function keeps
    its warnings (and :class:`_Counted` restores the caller's NumPy error settings for it).
    """

    def __enter__(self) -> Any:
        entered = super().__enter__()
        warnings.filterwarnings("ignore", module=r"numdifftools(\..*)?$")
        # NumPy's nan-reductions inside numdifftools attribute this one to a frame further up
        warnings.filterwarnings("ignore", message="All-NaN (slice|axis) encountered", category=RuntimeWarning)
        return entered
