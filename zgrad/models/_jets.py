"""Closed-form first and second derivatives of the analytic models, in TensorFlow.

A jet is ``(value, {role: first derivative}, {(role, role): second derivative})``: second
derivatives are given once per unordered pair of roles, and an entry may be a scalar that
broadcasts over the events. Two per model:

- ``log_shape``: ``u(x)``, the log of the unnormalised density, per event;
- ``log_normalization``: ``log N``, the log of its integral over the observable's range.

Losses use them to build exact Hessians without differentiating the data twice by tapes
(``zgrad.losses._jet_derivatives``); the tests compare them with nested tapes.
"""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf

_SQRT_HALF_PI = math.sqrt(math.pi / 2.0)
# Below this |z| the moments of expm1(z)/z are summed as series (the direct formulas cancel).
_SERIES_CUT = 0.5
_SERIES_TERMS = 24


def gauss_log_shape(model: Any, x: tf.Tensor) -> tuple[tf.Tensor, dict, dict]:
    """``u = -(x - mu)**2 / (2 sigma**2)`` per event."""
    mu, sigma = model.params["mu"], model.params["sigma"]
    inv_var = 1.0 / (sigma * sigma)
    d = x - mu
    d_mu = d * inv_var  # (x - mu) / sigma**2
    d_sigma = d * d_mu / sigma  # (x - mu)**2 / sigma**3
    second = {
        ("mu", "mu"): -inv_var,
        ("mu", "sigma"): -2.0 * d_mu / sigma,
        ("sigma", "sigma"): -3.0 * d_sigma / sigma,
    }
    return -0.5 * d * d_mu, {"mu": d_mu, "sigma": d_sigma}, second


def gauss_log_normalization(model: Any) -> tuple[tf.Tensor, dict, dict]:
    """``log N`` with ``N = sigma sqrt(pi/2) (erf(beta/sqrt 2) - erf(alpha/sqrt 2))``.

    With ``alpha, beta = (limits - mu) / sigma`` and ``A, B = exp(-alpha**2/2), exp(-beta**2/2)``:
    ``N_mu = A - B``, ``N_sigma = N/sigma + alpha A - beta B`` and
    ``N_{mu mu}, N_{mu sigma}, N_{sigma sigma} = (alpha**k A - beta**k B) / sigma`` for k = 1, 2, 3.
    """
    mu, sigma = model.params["mu"], model.params["sigma"]
    dtype = mu.dtype
    lower, upper = (tf.constant(v, dtype) for v in model.obs.limits)
    alpha, beta = (lower - mu) / sigma, (upper - mu) / sigma
    a, b = tf.exp(-0.5 * alpha * alpha), tf.exp(-0.5 * beta * beta)
    scale = sigma * _SQRT_HALF_PI
    norm = scale * (tf.math.erf(beta / math.sqrt(2.0)) - tf.math.erf(alpha / math.sqrt(2.0)))

    def moment(k: int) -> tf.Tensor:
        return alpha**k * a - beta**k * b

    first = {"mu": a - b, "sigma": norm / sigma + moment(1)}
    second = {
        ("mu", "mu"): moment(1) / sigma,
        ("mu", "sigma"): moment(2) / sigma,
        ("sigma", "sigma"): moment(3) / sigma,
    }
    return _log_of(norm, first, second)


def exponential_log_shape(model: Any, x: tf.Tensor) -> tuple[tf.Tensor, dict, dict]:
    """``u = lam (x - reference)``, the reference switching with the sign of ``lam`` as in the model."""
    shifted = x - model._reference()
    return model.params["lam"] * shifted, {"lam": shifted}, {}


def exponential_log_normalization(model: Any) -> tuple[tf.Tensor, dict, dict]:
    """``log N = log W + log E(z)``, ``E(z) = expm1(z)/z``, ``z = -|lam| W``, ``W`` the range's width.

    ``E' = int_0^1 r exp(z r) dr`` and ``E'' = int_0^1 r**2 exp(z r) dr``; ``dz/dlam = -W``
    when ``lam >= 0`` (the reference is the upper limit) and ``+W`` otherwise.
    """
    lam = model.params["lam"]
    dtype = lam.dtype
    width = tf.constant(model.obs.width, dtype)
    slope = tf.where(model._rising(), -width, width)  # dz / dlam
    z = slope * lam  # = -|lam| W on either branch
    e0, e1, e2 = _expm1_moments(z)
    log_norm = tf.math.log(width) + tf.math.log(e0)
    ratio = e1 / e0
    return log_norm, {"lam": slope * ratio}, {("lam", "lam"): slope * slope * (e2 / e0 - ratio * ratio)}


def _log_of(norm: tf.Tensor, first: dict, second: dict) -> tuple[tf.Tensor, dict, dict]:
    """Return the jet of ``log N`` from that of ``N``: ``L_i = N_i / N``, ``L_ij = N_ij / N - L_i L_j``."""
    slopes = {role: d / norm for role, d in first.items()}
    curvature = {(r, s): d2 / norm - slopes[r] * slopes[s] for (r, s), d2 in second.items()}
    return tf.math.log(norm), slopes, curvature


def _expm1_moments(z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``int_0^1 r**k exp(z r) dr`` for k = 0, 1, 2 at ``z <= 0``: series near 0, closed forms elsewhere."""
    small = tf.abs(z) < _SERIES_CUT
    safe = tf.where(small, -tf.ones_like(z), z)  # keeps the unused branch finite
    exp = tf.exp(safe)
    direct = (
        tf.math.expm1(safe) / safe,
        (exp * (safe - 1.0) + 1.0) / (safe * safe),
        (exp * (safe * (safe - 2.0) + 2.0) - 2.0) / (safe * safe * safe),
    )
    # sum_k z**k / (k! (k + m + 1)) for moment m, Horner-free: terms are few and z is small
    series = []
    for m in range(3):
        total, power = tf.zeros_like(z), tf.ones_like(z)
        for k in range(_SERIES_TERMS):
            total += power / (math.factorial(k) * (k + m + 1))
            power *= z
        series.append(total)
    return tuple(tf.where(small, s, d) for s, d in zip(series, direct, strict=True))
