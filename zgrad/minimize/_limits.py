"""The curvature a limit adds in Minuit2's internal coordinates, which Minuit2 leaves out of a user Hessian.

Minuit2 minimizes a limited parameter in an internal coordinate ``q``: with both limits
``x = a + (b - a) / 2 (sin q + 1)``, with a lower limit only ``x = a - 1 + sqrt(q^2 + 1)``, with
an upper limit only ``x = b + 1 - sqrt(q^2 + 1)``. The Hessian in ``q`` has on its diagonal
``x'^2 H_ii + x'' g_i`` (primes: derivatives by ``q``). Minuit2 up to ROOT PR 22700 (ROOT issue
22692), as bundled in iminuit 2.33, converts a user Hessian and G2 with ``x'^2 H_ii`` alone.
Adding ``r_i g_i`` with ``r = x'' / x'^2`` to the external diagonal restores the term. Both
factors are functions of ``x``, written here without ``q``, so no arcsine loses precision
next to a limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

_EPS = float(np.finfo(np.float64).eps)


def transform_ratio(x: Any, lower: Any, upper: Any) -> np.ndarray:
    """Return ``r = x'' / x'^2`` of Minuit2's transformation at the external values ``x``.

    ``lower`` and ``upper`` hold each parameter's limits (``-inf`` and ``inf`` for none); an
    unlimited parameter has ``r = 0``. At a limit ``x'`` vanishes and ``r`` diverges: the
    distance to the limit is taken as at least the spacing of floating-point numbers there
    (``x`` is known to no better), so ``r`` stays finite and Minuit2's product ``x'^2 r g``
    tends to zero with ``x'`` instead of becoming ``0 * inf``.

    Examples
    --------
    >>> from zgrad.minimize._limits import transform_ratio
    >>> transform_ratio([0.5, 1.0, 2.0, 3.0], [0.0, 0.0, -np.inf, -np.inf], [2.0, np.inf, 3.0, np.inf])
    array([ 0.66666667,  0.16666667, -0.16666667,  0.        ])
    """
    x, lower, upper = (np.asarray(v, dtype=float) for v in (x, lower, upper))
    has_lower, has_upper = np.isfinite(lower), np.isfinite(upper)
    floor = _EPS * np.maximum.reduce(
        [np.ones_like(x), np.where(has_lower, abs(lower), 0.0), np.where(has_upper, abs(upper), 0.0)]
    )
    above = np.maximum(np.where(has_lower, x - lower, 1.0), floor)  # distance to the lower limit
    below = np.maximum(np.where(has_upper, upper - x, 1.0), floor)  # distance to the upper limit
    both = (below - above) / (2.0 * above * below)  # -(2x - a - b) / (2 (b - x)(x - a))
    only_lower = 1.0 / ((above + 1.0) * above * (above + 2.0))
    only_upper = -1.0 / ((below + 1.0) * below * (below + 2.0))
    return np.select(
        [has_lower & has_upper, has_lower, has_upper], [both, only_lower, only_upper], default=0.0
    )


def compensate(
    hess: Callable, g2: Callable, gradient_at: Callable, lower: Any, upper: Any
) -> tuple[Callable, Callable]:
    """Return ``(hess, g2)`` with ``r_i g_i`` added to limited parameters' diagonal, if Minuit2 needs it.

    ``gradient_at(x)`` gives the gradient at ``x`` (after ``hess(x)``, from the same
    evaluation). When no parameter has a limit, or the installed Minuit2 converts the Hessian
    itself (:func:`minuit_drops_limit_term` is False), ``hess`` and ``g2`` come back unchanged,
    so the term is never added twice.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad.minimize._limits import compensate
    >>> hess, g2 = compensate(
    ...     lambda x: np.diag([2.0, 2.0]), lambda x: np.array([2.0, 2.0]),
    ...     lambda x: 2.0 * (x - 2.0), [0.0, -np.inf], [1.0, np.inf],
    ... )
    >>> hess(np.array([0.9, 0.9]))  # r = -0.8 / 0.18 and g = -2.2 for the first; no limit on the second
    array([[11.77777778,  0.        ],
           [ 0.        ,  2.        ]])
    """
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    limited = np.isfinite(lower) | np.isfinite(upper)
    if not limited.any() or not minuit_drops_limit_term():
        return hess, g2

    def term(x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        r = transform_ratio(x[limited], lower[limited], upper[limited])
        out = np.zeros_like(x)
        out[limited] = r * np.asarray(gradient_at(x), dtype=float)[limited]
        return out

    def hess_with_term(x: Any) -> np.ndarray:
        hessian = np.array(hess(x), dtype=float)  # a copy: the term is added in place
        hessian[np.diag_indices_from(hessian)] += term(x)
        return hessian

    def g2_with_term(x: Any) -> np.ndarray:
        return np.asarray(g2(x), dtype=float) + term(x)

    return hess_with_term, g2_with_term


@functools.cache
def minuit_drops_limit_term() -> bool:
    """Whether the installed iminuit's Minuit2 leaves ``x'' g`` out of a user Hessian (once per process).

    HESSE with a user gradient and Hessian of ``(x - 2)^2`` at ``x = 0.9``, limits ``[0, 1]``,
    errordef 1. With the term, the external variance is ``2 x'^2 / (x'^2 H + x'' g) = 2 / (H + r g)``
    (0.1698); without it, ``2 / H = 1``. About a millisecond.

    Raises
    ------
    RuntimeError
        When the variance is neither: this Minuit2 treats a user Hessian in a way zgrad does not know.

    Examples
    --------
    >>> from zgrad.minimize._limits import minuit_drops_limit_term
    >>> isinstance(minuit_drops_limit_term(), bool)
    True
    """
    import iminuit

    minuit = iminuit.Minuit(
        lambda x: (x[0] - 2.0) ** 2,
        [0.9],
        grad=lambda x: np.array([2.0 * (x[0] - 2.0)]),
        hessian=lambda x: np.array([[2.0]]),
    )
    minuit.errordef = 1.0
    minuit.limits = [(0.0, 1.0)]
    minuit.hesse()
    variance = float(minuit.covariance[0, 0])
    kept = 2.0 / (2.0 - 2.2 * float(transform_ratio([0.9], [0.0], [1.0])[0]))
    if abs(variance - 1.0) <= 1e-9:
        return True
    if abs(variance - kept) <= 1e-9:
        return False
    raise RuntimeError(
        f"iminuit {iminuit.__version__}: HESSE with a user Hessian and a limit gave the variance "
        f"{variance!r} for the probe (x - 2)^2 at x = 0.9 in [0, 1]; zgrad knows 1.0 (Minuit2 leaves out "
        f"the limit's curvature, ROOT issue 22692) and {kept!r} (the full conversion, ROOT PR 22700)."
    )
