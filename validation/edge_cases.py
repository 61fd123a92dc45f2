"""Edge cases of numerical differentiation: singular functions next to a limit, and a noisy loss.

- Singular at a limit: ``-log(1 - x)`` just below the upper limit 1, ``-log(x)`` and ``sqrt(x)``
  just above the lower limit 0. A stencil that reaches or straddles the limit sees NaN (the
  builders guard the limits) or the wrong branch of the singularity; the derivatives there
  are as large as ``1e8``, so only a stencil scaled to the distance from the limit is right.
- A noisy loss: a Gaussian negative log-likelihood in ``(mu, sigma)`` (written with the summary
  statistics of 1000 events) plus deterministic pseudo-noise of size :data:`NOISE`, a hash
  of the parameters' bits: reproducible, different at every representable point, and without
  a gradient, like the noise of a Monte Carlo normalisation integral. The reference is the
  smooth part's closed form. Autodiff never sees the noise (no gradient flows through the
  bits) and is held to rounding; the numerical strategy must report an error that covers
  its true error (at the minimum, where the gradient is zero and only the noise is left).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from validation.builders import make
from validation.spec import Case, ParamSpec

__all__ = ["EDGE_CASES", "NOISE"]

#: The noisy loss adds uniform pseudo-noise in ``[-NOISE, NOISE)`` to a loss of size ~1000.
NOISE = 1e-6

# --- singular at a limit ----------------------------------------------------------------------------

_UNIT = (ParamSpec("x", 0.0, 1.0),)


def _log_upper(x):
    return -tf.math.log(1.0 - x)


def _log_lower(x):
    return -tf.math.log(x)


def _sqrt_lower(x):
    return tf.math.sqrt(x)


def _singular(name, description, body, points, first, second) -> Case:
    return Case(
        name,
        description,
        _UNIT,
        points,
        make(_UNIT, body),
        lambda p, data: np.array([first(p[0])]),
        lambda p, data: np.array([[second(p[0])]]),
        hard=True,
    )


# --- a noisy Gaussian NLL ---------------------------------------------------------------------------

# 1000 events with mean 0.3 and variance 1.44: their sum and sum of squares
_N, _S1, _S2 = 1000.0, 300.0, 1530.0
_NOISY_PARAMS = (ParamSpec("mu", -5.0, 5.0), ParamSpec("sigma", 0.1, 10.0))
_MIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def _hash_bits(bits: tf.Tensor) -> tf.Tensor:
    # the finaliser of splitmix64 in wrapping uint64 arithmetic: every input bit flips about
    # half of the output bits, so neighbouring floats get unrelated values
    def shift(z, n):
        return tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(n, tf.uint64)))

    z = shift(bits, 30) * tf.constant(_MIX[0], tf.uint64)
    z = shift(z, 27) * tf.constant(_MIX[1], tf.uint64)
    return shift(z, 31)


def _jitter(*params) -> tf.Tensor:
    """Return a uniform number in ``[-1, 1)``: a hash of the parameters' float64 bits, no gradient."""
    z = tf.constant(0x9E3779B97F4A7C15, tf.uint64)
    for p in params:
        z = _hash_bits(tf.bitwise.bitwise_xor(z, tf.bitcast(tf.cast(p, tf.float64), tf.uint64)))
    top = tf.bitwise.right_shift(z, tf.constant(11, tf.uint64))  # 53 bits
    return tf.cast(top, tf.float64) * 2.0**-52 - 1.0


def _noisy_nll(mu, sigma):
    q = _S2 - 2.0 * mu * _S1 + _N * mu * mu
    smooth = _N * tf.math.log(sigma) + q / (2.0 * sigma * sigma)
    return smooth + tf.cast(NOISE * _jitter(mu, sigma), smooth.dtype)


def _noisy_grad(p, data):
    mu, sigma = p
    q = _S2 - 2.0 * mu * _S1 + _N * mu * mu
    return np.array([(_N * mu - _S1) / sigma**2, _N / sigma - q / sigma**3])


def _noisy_hess(p, data):
    mu, sigma = p
    q = _S2 - 2.0 * mu * _S1 + _N * mu * mu
    h_ms = -2.0 * (_N * mu - _S1) / sigma**3
    return np.array([[_N / sigma**2, h_ms], [h_ms, -_N / sigma**2 + 3.0 * q / sigma**4]])


EDGE_CASES: dict[str, Case] = {
    case.name: case
    for case in (
        _singular(
            "log_upper_limit",
            "-log(1 - x) just below its singular upper limit x = 1",
            _log_upper,
            (("1e-6 below", (1.0 - 1e-6,)), ("1e-8 below", (1.0 - 1e-8,))),
            lambda x: 1.0 / (1.0 - x),
            lambda x: 1.0 / (1.0 - x) ** 2,
        ),
        _singular(
            "log_lower_limit",
            "-log(x) just above its singular lower limit x = 0",
            _log_lower,
            (("1e-6 above", (1e-6,)), ("3e-9 above", (3e-9,))),
            lambda x: -1.0 / x,
            lambda x: 1.0 / x**2,
        ),
        _singular(
            "sqrt_lower_limit",
            "sqrt(x) just above x = 0, where its derivatives diverge",
            _sqrt_lower,
            (("1e-8 above", (1e-8,)), ("1e-12 above", (1e-12,))),
            lambda x: 0.5 / np.sqrt(x),
            lambda x: -0.25 / x**1.5,
        ),
        Case(
            "noisy_loss",
            f"a Gaussian NLL plus deterministic pseudo-noise of size {NOISE:g} without a gradient",
            _NOISY_PARAMS,
            (("minimum", (0.3, 1.2)), ("off", (-0.5, 0.8))),
            make(_NOISY_PARAMS, _noisy_nll),
            _noisy_grad,
            _noisy_hess,
            hard=True,
        ),
    )
}
