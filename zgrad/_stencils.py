"""The pieces of :mod:`zgrad._finite`: counted evaluation, input checks, rule choice, error floors.

Ground layer: NumPy only. Nothing here chooses a step size; :mod:`zgrad._finite` does.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

STATUS_OK = "ok"
STATUS_ROUNDING = "rounding-limited"
STATUS_ONE_SIDED = "one-sided"
STATUS_NEAR_LIMIT = "near-limit"
STATUS_NONFINITE = "non-finite"

#: A central rule may shrink its steps by up to this factor to fit between the limits before
#: a one-sided rule (less accurate for the same steps) is used instead.
_MAX_CENTRAL_SHRINK = 8.0
#: Keep evaluation points this fraction of the room away from a limit, so that rounding in
#: ``x + h`` cannot step over it; the evaluation wrapper clips as a last guard.
LIMIT_MARGIN = 1e-9
#: An evaluation is taken to be accurate to this many units of ``eps * |f|``.
_NOISE_ULPS = 2.0
#: A measured noise level (residual spread of the evaluations) counts this many times.
_NOISE_SAFETY = 2.0


class Counted:
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
        value = as_float(raw, self)
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


def as_float(raw: Any, counter: Counted) -> float:
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


def prepare(
    x: Any, steps: Any, lower: Any, upper: Any, x_eps: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = np.array(x, dtype=np.float64, ndmin=1)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError(f"x must be a finite 1-D array; got {x!r}.")
    n = x.size
    steps = np.broadcast_to(np.asarray(steps, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(steps) & (steps > 0)):
        raise ValueError(f"scales must be positive and finite; got {steps!r}.")
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


def plan(x: float, step: float, lo: float, hi: float, reach: float) -> tuple[int, float]:
    """Choose the rule for one component: ``(side, step)``, side 0 central, +1 forward, -1 backward.

    ``reach`` is how many steps the rule goes out from ``x``. A central rule is kept, with its
    steps shrunk to fit, while that costs at most a factor ``_MAX_CENTRAL_SHRINK``; otherwise the
    one-sided rule goes towards the side with more room.
    """
    room_lo = (x - lo) * (1.0 - LIMIT_MARGIN)
    room_hi = (hi - x) * (1.0 - LIMIT_MARGIN)
    want = reach * step
    room = min(room_lo, room_hi)
    if room >= want:
        return 0, step
    if room * _MAX_CENTRAL_SHRINK >= want:
        return 0, room / reach
    side = 1 if room_hi >= room_lo else -1
    return side, min(step, max(room_lo, room_hi) / reach)


def rounding_floor(
    amplify: float,
    eps: float,
    magnitude: float,
    x_eps: float,
    x: float,
    slope: float,
    step: float,
    noise: float = 0.0,
) -> float:
    """Error a derivative estimate can owe to rounding and evaluation noise.

    Each f value is taken to be wrong by up to ``delta = _NOISE_ULPS * eps * |f|``, plus what
    rounding the input coordinate to its own precision does to f (``x_eps * |x * df/dx|``), or
    by ``_NOISE_SAFETY`` times the measured ``noise`` where that is larger. The estimate
    amplifies ``delta`` by ``amplify / step``.
    """
    delta = _NOISE_ULPS * (eps * magnitude + x_eps * abs(x * slope))
    return amplify * max(delta, _NOISE_SAFETY * noise) / step


def noise_level(offsets: np.ndarray, values: np.ndarray, keep: int = 9) -> float:
    """Spread of the values closest to the centre around the best quartic through them.

    ``offsets`` are the distances from the centre (0 for ``f(x)`` itself) and ``values`` the
    finite values there. A smooth function leaves residuals at the rounding level; a noisy one
    leaves its noise. Fewer than 7 points: 0 (nothing to measure).

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad._stencils import noise_level
    >>> t = np.linspace(-1e-3, 1e-3, 9)
    >>> noise_level(t, 1.0 + t + t**2) < 1e-15, noise_level(t, np.cos(7e6 * t)) > 0.1
    (True, True)
    """
    order = np.argsort(np.abs(offsets), kind="stable")[:keep]
    t, f = offsets[order], values[order]
    finite = np.isfinite(f)
    t, f = t[finite], f[finite]
    if t.size < 7 or not np.any(t):
        return 0.0
    s = t / np.max(np.abs(t))
    design = np.stack([s**k for k in range(5)], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, f - f[0], rcond=None)
    residual = f - f[0] - design @ coefficients
    return float(np.sqrt(np.sum(residual**2) / (t.size - 5)))


def component_status(
    geometry: str,
    value: float,
    error: float,
    floor: float,
    truncation: float,
    eps: float,
    nonfinite: bool,
    slope_scale: float,
) -> str:
    """Per-component status: non-finite, else rounding-limited, else ``geometry`` (the rule's own).

    Rounding-limited means the rounding floor dominates the error and exceeds ``sqrt(eps)``
    relative to the larger of the slope and ``slope_scale`` (how much f varied over the steps,
    per unit step: the yardstick where the slope itself is zero, e.g. at a minimum): more than
    half the digits are lost to rounding.
    """
    if nonfinite or not (np.isfinite(value) and np.isfinite(error)):
        return STATUS_NONFINITE
    if floor > truncation and floor > np.sqrt(eps) * max(abs(value), slope_scale):
        return STATUS_ROUNDING
    return geometry


def fast_plan(x: float, step: float, lo: float, hi: float) -> tuple[int, float]:
    """Choose the fast rule: central with ``step``; closer to a limit, central with half the room.

    Half the room keeps the stencil as far from the limit as it is wide, so a singularity at
    the limit is resolved rather than stepped over; only a point on a limit gets the one-sided
    three-point rule.
    """
    room = min(x - lo, hi - x) * (1.0 - LIMIT_MARGIN)
    if room >= step:
        return 0, step
    if room > 0.0:
        return 0, room / 2.0
    return plan(x, step, lo, hi, reach=2.0)


def stencil_points(x: np.ndarray, i: int, side: int, h: float) -> list[np.ndarray]:
    """Return the points :func:`_difference` evaluates for component ``i`` (same rounding)."""
    offsets = (h, -h) if side == 0 else (side * h, 2.0 * side * h)
    out = []
    for t in offsets:
        point = x.copy()
        point[i] = x[i] + t
        out.append(point)
    return out


def difference(counted: Counted, x: np.ndarray, i: int, side: int, h: float) -> tuple[float, float, float]:
    """:func:`_unguarded_difference` without NumPy warnings for non-finite values."""
    # Non-finite loss values (inf - inf) are reported through the component's status
    # ('non-finite'), not as NumPy warnings, which a warnings-as-errors setting would raise.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _unguarded_difference(counted, x, i, side, h)


def _unguarded_difference(
    counted: Counted, x: np.ndarray, i: int, side: int, h: float
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


class Quiet(warnings.catch_warnings):
    """Silence numdifftools' own warnings (e.g. 'All-NaN slice' when f is NaN on every step).

    Only warnings attributed to numdifftools' modules are ignored; the user's function keeps
    its warnings (and :class:`Counted` restores the caller's NumPy error settings for it).
    """

    def __enter__(self) -> Any:
        entered = super().__enter__()
        warnings.filterwarnings("ignore", module=r"numdifftools(\..*)?$")
        # NumPy's nan-reductions inside numdifftools attribute this one to a frame further up
        warnings.filterwarnings("ignore", message="All-NaN (slice|axis) encountered", category=RuntimeWarning)
        return entered
