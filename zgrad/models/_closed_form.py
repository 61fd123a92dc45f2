"""Closed-form derivatives of the analytic models' log-densities, in NumPy and SciPy.

The validation suite compares every gradient strategy with these; they are written
independently of the TensorFlow expressions in :mod:`zgrad.models.analytic`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

_SQRT2 = math.sqrt(2.0)
_SQRT_HALF_PI = math.sqrt(math.pi / 2.0)


def _series_or(z: np.ndarray, coefficients: list[float], direct: Any, cut: float = 0.1) -> np.ndarray:
    """Evaluate ``sum_k coefficients[k] z**k`` where ``|z| < cut`` and ``direct(z)`` elsewhere."""
    z = np.asarray(z, dtype=float)
    small = np.abs(z) < cut
    safe = np.where(small, 1.0, z)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(small, np.polynomial.polynomial.polyval(z, coefficients), direct(safe))


def _np_expm1_ratio(z: Any) -> np.ndarray:
    """``expm1(z) / z = int_0^1 exp(z r) dr``."""
    coefficients = [1.0 / math.factorial(k + 1) for k in range(12)]
    return _series_or(z, coefficients, lambda s: np.expm1(s) / s)


def _np_expm1_moment(z: Any) -> np.ndarray:
    """``int_0^1 r exp(z r) dr = (exp(z) (z - 1) + 1) / z**2``."""
    coefficients = [1.0 / (math.factorial(k) * (k + 2)) for k in range(12)]
    return _series_or(z, coefficients, lambda s: (np.exp(s) * (s - 1.0) + 1.0) / (s * s))


def _np_log_expm1_ratio_slope(s: float) -> float:
    """``d/ds log((1 - exp(-s)) / s) = 1 / expm1(s) - 1 / s`` for ``s >= 0`` (Bernoulli series near 0)."""
    if s < 0.1:
        return -0.5 + s / 12.0 - s**3 / 720.0 + s**5 / 30240.0 - s**7 / 1209600.0
    # exp(-s) / (1 - exp(-s)) is 1 / expm1(s) without overflow for large s
    return -math.exp(-s) / math.expm1(-s) - 1.0 / s


def _np_power_integrals(v_lo: np.ndarray, log_ratio: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """``int v**-p dv`` and ``int v**-p log(v) dv`` over ``[v_lo, v_lo * exp(log_ratio)]``."""
    # substituting v = v_lo * exp(s) turns both into expm1-type ratios that are exact through p == 1
    q = 1.0 - p
    z = q * log_ratio
    power = v_lo**q
    plain = power * log_ratio * _np_expm1_ratio(z)
    logged = power * (np.log(v_lo) * log_ratio * _np_expm1_ratio(z) + log_ratio**2 * _np_expm1_moment(z))
    return plain, logged


def _np_tail_terms(t1: float, t2: float, alpha: float, n: float) -> tuple[float, float, float]:
    """Low-tail area over ``[t1, t2]`` (``t1 <= t2 <= -alpha``) and its derivatives by alpha and n."""
    v_lo = 1.0 - alpha * (t2 + alpha) / n
    log_ratio = math.log1p(alpha * (t2 - t1) / (n * v_lo))
    scale = math.exp(-0.5 * alpha * alpha) * n / alpha
    plain_n, logged_n = _np_power_integrals(v_lo, log_ratio, n)
    plain_n1, _ = _np_power_integrals(v_lo, log_ratio, n + 1.0)
    area = scale * plain_n
    # d log(shape) / d alpha = -alpha + (t + 2 alpha) / v and t + 2 alpha = alpha + n (1 - v) / alpha
    d_alpha = -alpha * area + scale * ((alpha + n / alpha) * plain_n1 - n / alpha * plain_n)
    # d log(shape) / d n = -log(v) - (1 - v) / v
    d_n = scale * (-logged_n - plain_n1 + plain_n)
    return float(area), float(d_alpha), float(d_n)


def _np_cb_log_shape(t: np.ndarray, left: tuple, right: tuple | None) -> tuple[np.ndarray, ...]:
    """Log-shape, its t-derivative, and its derivatives by (alpha, n) of each tail, in NumPy."""
    zeros = np.zeros_like(t)
    log_shape, d_t = -0.5 * t * t, -t
    out = [log_shape, d_t]
    for sign, tail in ((1.0, left), (-1.0, right)):
        if tail is None:
            continue
        alpha, n = tail
        u = sign * t  # each tail in the orientation of the low one
        inside = u < -alpha
        uc = np.minimum(u, -alpha)
        v = 1.0 - alpha * (uc + alpha) / n
        out[0] = np.where(inside, -0.5 * alpha * alpha - n * np.log(v), out[0])
        out[1] = np.where(inside, sign * alpha / v, out[1])
        out.append(np.where(inside, -alpha + (uc + 2.0 * alpha) / v, zeros))
        out.append(np.where(inside, -np.log(v) - (1.0 - v) / v, zeros))
    return tuple(out)


def _np_cb_derivatives(
    x: np.ndarray, limits: tuple[float, float], values: dict[str, float], left: tuple, right: tuple | None
) -> dict[str, np.ndarray | None]:
    mu, sigma = values["mu"], values["sigma"]
    t = (x - mu) / sigma
    t_a, t_b = ((limit - mu) / sigma for limit in limits)
    alpha, n = left
    left_area, left_d_alpha, left_d_n = _np_tail_terms(min(t_a, -alpha), min(t_b, -alpha), alpha, n)
    core_lo, core_hi = -alpha, (math.inf if right is None else right[0])
    lo, hi = min(max(t_a, core_lo), core_hi), min(max(t_b, core_lo), core_hi)
    area = left_area + _SQRT_HALF_PI * (special.erf(hi / _SQRT2) - special.erf(lo / _SQRT2))
    tail_d = [(left_d_alpha, left_d_n)]
    if right is not None:
        right_area, right_d_alpha, right_d_n = _np_tail_terms(
            -max(t_b, right[0]), -max(t_a, right[0]), *right
        )
        area += right_area
        tail_d.append((right_d_alpha, right_d_n))
    shape_at = _np_cb_log_shape(np.array([t_a, t_b]), left, right)[0]
    log_parts = _np_cb_log_shape(t, left, right)
    d_mu, d_sigma = _location_scale_terms(t, log_parts[1], sigma, t_a, t_b, *np.exp(shape_at), area)
    out: dict[str, np.ndarray | None] = {"mu": d_mu, "sigma": d_sigma}
    names = [("alpha", "n")] if right is None else [("alphal", "nl"), ("alphar", "nr")]
    for k, ((name_alpha, name_n), (d_alpha, d_n)) in enumerate(zip(names, tail_d, strict=True)):
        out[name_alpha] = log_parts[2 + 2 * k] - d_alpha / area
        out[name_n] = log_parts[3 + 2 * k] - d_n / area
    return out


def _location_scale_terms(
    t: np.ndarray,
    d_log_shape_dt: np.ndarray,
    sigma: float,
    t_a: float,
    t_b: float,
    shape_a: float,
    shape_b: float,
    area: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return d log pdf / d mu and d sigma for ``shape((x - mu) / sigma) / (sigma * area)`` on ``[a, b]``."""
    # the normalisation is sigma * int_{t_a}^{t_b} shape(t) dt with both limits moving with mu and sigma
    d_log_norm_mu = (shape_a - shape_b) / (sigma * area)
    d_log_norm_sigma = (area + t_a * shape_a - t_b * shape_b) / (sigma * area)
    d_mu = -d_log_shape_dt / sigma - d_log_norm_mu
    d_sigma = -t * d_log_shape_dt / sigma - d_log_norm_sigma
    return d_mu, d_sigma


def _np_chebyshev_integrals(k: int, y_lo: float, y_hi: float) -> np.ndarray:
    """``int T_j(y) dy`` over ``[y_lo, y_hi]`` for ``j = 0 .. k``."""
    out = np.empty(k + 1)
    for j in range(k + 1):
        antiderivative = np.polynomial.chebyshev.chebint(np.eye(k + 1)[j])
        out[j] = np.polynomial.chebyshev.chebval(y_hi, antiderivative) - np.polynomial.chebyshev.chebval(
            y_lo, antiderivative
        )
    return out


# --- small shared checks --------------------------------------------------------------------------
