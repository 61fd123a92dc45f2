"""Closed-form quantiles of the truncated shapes, in NumPy: inverse-CDF sampling without rejection.

Each function maps uniform probabilities ``u`` in ``[0, 1)`` onto the shape truncated to a
range. Both are written so that no probability is formed as a difference of two numbers
close to one: a range far in a tail of the normal is sampled through the logarithm of the
tail probability, and an exponential with a tiny slope through ``log1p``/``expm1`` (and a
series where even those lose the slope).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

__all__ = ["truncated_exponential", "truncated_normal"]

_SQRT2 = math.sqrt(2.0)
# Below this decay over the range, -log1p(u * expm1(-s)) / s is replaced by its first-order
# series u - s u (1 - u) / 2: the neglected term is of order s**2, under float64's resolution.
_EXPONENTIAL_SERIES_CUT = 1e-8


def truncated_normal(u: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Return the quantiles at ``u`` of the standard normal truncated to ``[lower, upper]``.

    Parameters
    ----------
    u : ndarray
        Probabilities in ``[0, 1)``.
    lower, upper : float
        The range in standard units, ``lower < upper`` (either may be infinite).

    Returns
    -------
    ndarray
        Values in ``[lower, upper]``, the same shape as ``u``.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad.models._sampling import truncated_normal
    >>> float(truncated_normal(np.array([0.5]), -1.0, 1.0)[0]) == 0.0  # the median
    True
    >>> bool(5.0 <= truncated_normal(np.array([0.999]), 5.0, 6.0)[0] <= 6.0)  # far in the tail
    True
    """
    if lower >= 0.0:
        return _upper_tail(u, lower, upper)
    if upper <= 0.0:  # the mirror image; 1 - u keeps the quantile increasing in u
        return -_upper_tail(1.0 - u, -upper, -lower)
    # the range holds the mode: each quantile is taken from the tail it lies in, where its
    # probability is small and exact (P(X <= x) and P(X > x) are both formed by additions)
    mass = 0.5 * (special.erf(upper / _SQRT2) - special.erf(lower / _SQRT2))
    below = special.ndtr(lower) + u * mass
    above = special.ndtr(-upper) + (1.0 - u) * mass
    t = special.ndtri(np.minimum(below, above))
    return np.clip(np.where(below < above, t, -t), lower, upper)


def _upper_tail(u: np.ndarray, lower: float, upper: float) -> np.ndarray:
    """Quantiles on ``0 <= lower < upper``, through ``log P(X > x)``: exact however far the tail."""
    log_lower, log_upper = special.log_ndtr(-lower), special.log_ndtr(-upper)
    # P(X > x) = P(X > lower) * (1 - u * (1 - P(X > upper) / P(X > lower)))
    log_p = log_lower + np.log1p(u * np.expm1(log_upper - log_lower))
    return np.clip(-special.ndtri_exp(log_p), lower, upper)


def truncated_exponential(u: np.ndarray, lam: float, lower: float, upper: float) -> np.ndarray:
    """Return the quantiles at ``u`` of the density ``exp(lam * x)`` truncated to ``[lower, upper]``.

    Parameters
    ----------
    u : ndarray
        Probabilities in ``[0, 1)``.
    lam : float
        The slope: any finite value; 0 gives the uniform density.
    lower, upper : float
        The finite range, ``lower < upper``.

    Returns
    -------
    ndarray
        Values in ``[lower, upper]``, the same shape as ``u``.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad.models._sampling import truncated_exponential
    >>> float(truncated_exponential(np.array([0.25]), 0.0, 0.0, 4.0)[0])  # uniform
    1.0
    >>> x = truncated_exponential(np.array([0.5]), -1.0, 0.0, 50.0)[0]  # the median of exp(-x)
    >>> bool(abs(x - np.log(2.0)) < 1e-15)
    True
    """
    width = upper - lower
    decay = abs(lam) * width  # the density falls by exp(-decay) from its highest end to the other
    # measured from the end where the density is highest; 1 - u keeps the quantile increasing in u
    v = u if lam <= 0 else 1.0 - u
    if decay < _EXPONENTIAL_SERIES_CUT:
        fraction = v - 0.5 * decay * v * (1.0 - v)
    else:
        fraction = -np.log1p(v * np.expm1(-decay)) / decay
    distance = width * fraction
    return np.clip(lower + distance if lam <= 0 else upper - distance, lower, upper)
