"""Hessians by extrapolated second differences: the Hessian part of the finite-difference engine.

:func:`hessian` follows the rules of :mod:`zgrad._finite` (one step rule, limits never left,
the log-distance rule close to a limit, honest errors with a rounding floor) and returns its
:class:`~zgrad._finite.FiniteResult`. numdifftools is imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from zgrad import _stencils as st
from zgrad._finite import ACCURATE_FRACTION, LOCAL_STEP, FiniteResult, gradient, step_sequence
from zgrad._stencils import STATUS_NEAR_LIMIT, STATUS_NONFINITE, STATUS_OK, STATUS_ONE_SIDED

__all__ = ["hessian"]

#: Steps per Hessian sequence (a central Hessian costs 2 n**2 evaluations a step); five are
#: the fewest that numdifftools can extrapolate with Richardson and then Wynn's epsilon.
_NUM_STEPS_HESSIAN = 8
#: How much the final Hessian amplifies noise of size ``delta`` in the f values, in units of
#: ``delta / (h_i h_j)`` (as :mod:`zgrad._finite` measures it for the gradient).
_AMPLIFY_HESSIAN = {0: 20.0, 1: 100.0}


def hessian(
    f: Callable[[np.ndarray], Any],
    x: Any,
    scales: Any,
    lower: Any = None,
    upper: Any = None,
    f0: Any = None,
    *,
    x_eps: Any = None,
) -> FiniteResult:
    """Hessian by Richardson-extrapolated second differences (``numdifftools.Hessian``), exactly symmetric.

    The central rule reaches ``x ± 2 h`` on the diagonal. If every component has that room
    (steps shrunk up to 8x to fit), all are central; otherwise the forward rule is used for
    all, mirrored per component so that each goes towards the side of its own limit that
    has room. Where a component lacks the room but is not on its limit, the Hessian is also
    taken centrally in ``log(distance to the limit)`` for it, a stencil that cannot straddle
    a singularity at the limit; the one-sided entries are kept only where both agree within
    their errors and theirs is smaller (status ``'one-sided'``), else the log-distance ones
    (``'near-limit'``). Eight steps from ``0.1 * scales`` for float64; for a coarser dtype
    the sequence starts ``(eps / eps64)**(1/8)`` times larger, where rounding allows the
    best accuracy.

    Parameters
    ----------
    f, x, scales, lower, upper, f0, x_eps
        As for :func:`gradient`.

    Returns
    -------
    FiniteResult
        ``estimate`` and ``error`` of shape ``(n, n)``, both exactly symmetric; ``status``
        per component (``'near-limit'`` where it was taken in log-distance, ``'one-sided'``
        where the forward rule was used, ``'non-finite'``).

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad._finite_hessian import hessian
    >>> r = hessian(lambda v: v[0] ** 2 * v[1], [1.0, 3.0], 1.0)
    >>> np.round(r.estimate, 8).tolist(), bool(np.all(r.estimate == r.estimate.T)), r.status
    ([[6.0, 2.0], [2.0, 0.0]], True, ('ok', 'ok'))
    """
    x, scales, lo, hi, x_eps = st.prepare(x, scales, lower, upper, x_eps)
    counted = st.Counted(f, x, lo, hi)
    counted.f0 = counted(x) if f0 is None else st.as_float(f0, counted)
    n = x.size
    if not np.isfinite(counted.f0):
        return FiniteResult(
            np.full((n, n), np.nan), np.full((n, n), np.inf), counted.n, (STATUS_NONFINITE,) * n
        )
    coarse = (max(counted.eps, float(np.max(x_eps))) / np.finfo(np.float64).eps) ** 0.125
    steps = ACCURATE_FRACTION * scales * coarse
    limits = np.where(hi - x < x - lo, hi, lo)  # each component's nearer limit
    cramped = np.array([st.plan(x[i], steps[i], lo[i], hi[i], 2.0)[0] != 0 for i in range(x.size)])
    sides, base = _hessian_rules(x, steps, lo, hi)
    one_sided = _extrapolated_hessian(counted, x, sides, base)
    if not np.any(cramped) or np.any(cramped & (x == limits)):
        return one_sided
    # a limit where no central rule fits: also central in log-distance for those components,
    # which cannot straddle a singularity at the limit; the one-sided entries are kept only
    # where both agree within their errors and theirs is the smaller error (smooth functions)
    local = _log_distance_hessian(counted, x, steps, lo, hi, cramped, limits)
    agree = np.abs(one_sided.estimate - local.estimate) <= one_sided.error + local.error
    keep = agree & np.isfinite(one_sided.error) & (one_sided.error <= local.error)
    estimate = np.where(keep, one_sided.estimate, local.estimate)
    error = np.where(keep, one_sided.error, local.error)
    status = tuple(
        (STATUS_ONE_SIDED if keep[i, i] else STATUS_NEAR_LIMIT) if cramped[i] and state == STATUS_NEAR_LIMIT
        else state
        for i, state in enumerate(local.status)
    )  # fmt: skip
    return FiniteResult(estimate, error, counted.n, status)


def _log_distance_hessian(
    counted: st.Counted, x: np.ndarray, steps: np.ndarray, lo: np.ndarray, hi: np.ndarray,
    near: np.ndarray, limits: np.ndarray,
) -> FiniteResult:  # fmt: skip
    """Central Hessian in ``y``: ``y_i = log|x_i - limit_i|`` for the ``near`` components, else ``x_i``.

    No stencil in ``y`` reaches the limit or straddles a singularity there. With
    ``J = dx/dy`` (the signed distance ``d_i`` for a near component, else 1) and, for a near
    component, ``d^2 x_i / dy_i^2 = d_i`` too: ``H_x = (H_y - diag(g_y * near)) / (J J^T)``, the
    gradient ``g_y`` by the accurate rule in ``y``. Errors are carried the same way.
    """
    signed = np.where(near, x - limits, 1.0)  # J
    y0 = np.where(near, np.log(np.abs(signed)), x)
    span = np.log((hi - lo) * (1.0 - st.LIMIT_MARGIN))  # |x - limit| stays below the range
    y_lo = np.where(near, -np.inf, lo)
    y_hi = np.where(near, span, hi)
    y_steps = np.where(near, LOCAL_STEP, steps)

    def x_of(y: np.ndarray) -> np.ndarray:
        return np.where(near, limits + np.sign(signed) * np.exp(y), y)

    def g(y: np.ndarray) -> float:
        return counted(x_of(y))

    inner = hessian(g, y0, y_steps / ACCURATE_FRACTION, y_lo, y_hi, f0=counted.f0)
    slope = gradient(g, y0, y_steps / ACCURATE_FRACTION, y_lo, y_hi, f0=counted.f0)
    curvature = np.diag(np.where(near, slope.estimate, 0.0))
    outer = np.outer(signed, signed)
    estimate = (inner.estimate - curvature) / outer
    error = (inner.error + np.diag(np.where(near, slope.error, 0.0))) / np.abs(outer)
    estimate, error = 0.5 * (estimate + estimate.T), np.maximum(error, error.T)
    status = tuple(
        STATUS_NONFINITE if not np.all(np.isfinite(row)) else (STATUS_NEAR_LIMIT if flag else state)
        for row, flag, state in zip(estimate, near, inner.status, strict=True)
    )
    return FiniteResult(estimate, error, counted.n, status)


def _hessian_rules(
    x: np.ndarray, steps: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per component: the side (0 central for all, else ±1 forward mirrored) and the largest step."""
    n = x.size
    plans = [st.plan(x[i], steps[i], lo[i], hi[i], reach=2.0) for i in range(n)]
    sides = np.array([side for side, _ in plans])
    base = np.array([step for _, step in plans])
    if not np.any(sides != 0):
        return sides, base
    sides = np.where(sides == 0, np.where(hi - x >= x - lo, 1, -1), sides)
    base = np.array(
        [st.plan(x[i], steps[i], x[i] if sides[i] > 0 else lo[i], hi[i] if sides[i] > 0 else x[i], 2.0)[1]
         for i in range(n)]
    )  # fmt: skip
    return sides, base


def _extrapolated_hessian(
    counted: st.Counted, x: np.ndarray, sides: np.ndarray, base: np.ndarray
) -> FiniteResult:
    import numdifftools as nd

    n = x.size
    one_sided = bool(np.any(sides != 0))
    mirror = np.where(sides < 0, -1.0, 1.0)
    counted.reset_window()
    generator = step_sequence(base, _NUM_STEPS_HESSIAN)
    method = "forward" if one_sided else "central"
    with st.Quiet():
        result = nd.Hessian(
            lambda y: counted(x + mirror * y), step=generator, method=method, full_output=True
        )(np.zeros(n))
    estimate = np.asarray(result.estimate, dtype=np.float64).reshape(n, n) * np.outer(mirror, mirror)
    error = np.abs(np.asarray(result.error_estimate, dtype=np.float64).reshape(n, n))
    # final_step[i, j] is step j of the chosen index; the same index scales every component
    shrink = np.abs(np.asarray(result.final_step, dtype=np.float64).reshape(n, n)) / base[None, :]
    h_i, h_j = base[:, None] * shrink, base[None, :] * shrink
    delta = 2.0 * counted.eps * counted.max_abs
    error = error + _AMPLIFY_HESSIAN[int(one_sided)] * delta / (h_i * h_j)
    estimate = 0.5 * (estimate + estimate.T)
    error = np.maximum(error, error.T)
    error[~np.isfinite(estimate)] = np.inf
    bad = ~np.all(np.isfinite(estimate), axis=1)
    geometry = STATUS_ONE_SIDED if one_sided else STATUS_OK
    status = tuple(STATUS_NONFINITE if b else geometry for b in bad)
    return FiniteResult(estimate, error, counted.n, status)
