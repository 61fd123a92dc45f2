"""Reference cases: functions of a few Parameters with closed-form gradients and Hessians.

:data:`CASES` joins these reference functions (:data:`FUNCTION_CASES`, which include the
singular functions at limits and the noisy loss of :mod:`validation.edge_cases`) and the
models inside losses of :mod:`validation.model_cases` (:data:`MODEL_CASES`).

A :class:`Case` is a declarative specification: parameter names, limits and
the points to evaluate at, a seeded data generator, a builder that turns
Parameters into the TensorFlow function to differentiate, and the exact
gradient and Hessian as NumPy functions of the parameter values. A case holds
no live TensorFlow state and its data are regenerated from a fixed seed, so a
worker process can rebuild the same case from its name alone.

Every builder (:func:`validation.builders.make`) returns NaN when a Parameter lies outside
its declared limits, so a strategy that steps over a limit shows up as a failure instead of
passing by luck.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import numpy as np
import tensorflow as tf

from validation.builders import make
from validation.edge_cases import EDGE_CASES
from validation.model_cases import MODEL_CASES
from validation.spec import LEVELS, Case, ParamSpec, Tolerance

__all__ = ["CASES", "FUNCTION_CASES", "LEVELS", "MODEL_CASES", "Case", "ParamSpec", "Tolerance", "select"]

# --- Gaussian negative log-likelihood in (mu, sigma) ----------------------------------------------


def _gauss_data(dtype: np.dtype) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240601)
    return {"x": rng.normal(0.3, 1.2, size=1000).astype(dtype)}


def _gauss_nll(mu, sigma, x):
    z = (x - mu) / sigma
    return tf.reduce_sum(0.5 * z * z + tf.math.log(sigma))


def _gauss_grad(p, data):
    mu, sigma = p
    d = data["x"] - mu
    n = d.size
    return np.array([-d.sum() / sigma**2, n / sigma - (d * d).sum() / sigma**3])


def _gauss_hess(p, data):
    mu, sigma = p
    d = data["x"] - mu
    n = d.size
    h_mm = n / sigma**2
    h_ms = 2 * d.sum() / sigma**3
    h_ss = -n / sigma**2 + 3 * (d * d).sum() / sigma**4
    return np.array([[h_mm, h_ms], [h_ms, h_ss]])


_GAUSS_PARAMS = (ParamSpec("mu", -5.0, 5.0), ParamSpec("sigma", 0.1, 10.0))
_LIMIT_PARAMS = (ParamSpec("mu", -2.0, 2.0), ParamSpec("sigma", 1.0, 5.0))


# --- Rosenbrock in 5 dimensions ---------------------------------------------------------------------


def _rosenbrock(*x):
    total = tf.zeros([], x[0].dtype)
    for a, b in zip(x[:-1], x[1:], strict=True):
        total += 100.0 * (b - a * a) ** 2 + (1.0 - a) ** 2
    return total


def _rosenbrock_grad(x, data):
    g = np.zeros_like(x)
    g[:-1] += -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return g


def _rosenbrock_hess(x, data):
    n = x.size
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        h[i + 1, i + 1] += 200.0
        h[i, i + 1] = h[i + 1, i] = -400.0 * x[i]
    return h


# --- scale disparity, exp at a large argument, a float32 objective ------------------------------


def _disparity(x, y):
    return 1e6 * x * x + 1e-6 * y * y


def _disparity_grad(p, data):
    return np.array([2e6 * p[0], 2e-6 * p[1]])


def _disparity_hess(p, data):
    return np.diag([2e6, 2e-6])


def _exp(x):
    return tf.exp(x)


def _exp_grad(p, data):
    return np.exp(p)


def _exp_hess(p, data):
    return np.exp(p).reshape(1, 1)


def _mixed(a, b):
    return a * a * b + tf.sin(a) * tf.exp(0.5 * b)


def _mixed_grad(p, data):
    a, b = p
    e = np.exp(0.5 * b)
    return np.array([2 * a * b + np.cos(a) * e, a * a + 0.5 * np.sin(a) * e])


def _mixed_hess(p, data):
    a, b = p
    e = np.exp(0.5 * b)
    h_ab = 2 * a + 0.5 * np.cos(a) * e
    return np.array([[2 * b - np.sin(a) * e, h_ab], [h_ab, 0.25 * np.sin(a) * e]])


# --- Poisson NLL of a binned exponential on [0, 5] ------------------------------------------------

_EDGES = np.linspace(0.0, 5.0, 41)


def _poisson_data(dtype: np.dtype) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    probs = np.exp(-0.8 * _EDGES[:-1]) - np.exp(-0.8 * _EDGES[1:])
    counts = rng.poisson(2000.0 * probs / probs.sum())
    return {"lo": _EDGES[:-1].astype(dtype), "hi": _EDGES[1:].astype(dtype), "n": counts.astype(dtype)}


def _poisson_nll(norm, lam, lo, hi, n):
    width = hi[-1] - lo[0]
    nu = norm * (tf.exp(-lam * lo) - tf.exp(-lam * hi)) / (1.0 - tf.exp(-lam * width))
    return tf.reduce_sum(nu - n * tf.math.log(nu))


def _bin_fractions(lam, lo, hi):
    """Return the bin probabilities of the truncated exponential and their first two lam-derivatives."""
    width = hi[-1] - lo[0]
    ea, eb, ew = np.exp(-lam * lo), np.exp(-lam * hi), np.exp(-lam * width)
    u, du, d2u = ea - eb, -lo * ea + hi * eb, lo**2 * ea - hi**2 * eb
    v, dv, d2v = 1.0 - ew, width * ew, -(width**2) * ew
    p = u / v
    dp = (du * v - u * dv) / v**2
    d2p = d2u / v - 2 * du * dv / v**2 - u * d2v / v**2 + 2 * u * dv**2 / v**3
    return p, dp, d2p


def _poisson_grad(x, data):
    norm, lam = x
    p, dp, _ = _bin_fractions(lam, data["lo"], data["hi"])
    w = 1.0 - data["n"] / (norm * p)
    return np.array([(w * p).sum(), (w * norm * dp).sum()])


def _poisson_hess(x, data):
    norm, lam = x
    n = data["n"]
    p, dp, d2p = _bin_fractions(lam, data["lo"], data["hi"])
    nu = norm * p
    w, r = 1.0 - n / nu, n / nu**2
    jac = np.stack([p, norm * dp])  # d nu / d (norm, lam), one column per bin
    second = np.array([[np.zeros_like(p), dp], [dp, norm * d2p]])  # d2 nu / d(.) d(.)
    return np.einsum("ijk,k->ij", second, w) + np.einsum("ik,jk,k->ij", jac, jac, r)


# --- the power-law tail of a Crystal Ball shape -------------------------------------------------


def _tail_data(dtype: np.dtype) -> dict[str, np.ndarray]:
    return {"t": np.linspace(-6.0, -2.3, 12).astype(dtype)}


def _tail_nll(alpha, n, t):
    # -sum log of A (B - t)^-n with A = (n/alpha)^n exp(-alpha^2/2), B = n/alpha - alpha, t < -alpha
    q = n / alpha - alpha - t
    return -tf.reduce_sum(n * tf.math.log(n / alpha) - 0.5 * alpha * alpha - n * tf.math.log(q))


def _tail_parts(x, data):
    alpha, n = x
    q = n / alpha - alpha - data["t"]
    q_a, q_n = -n / alpha**2 - 1.0, 1.0 / alpha
    q_aa, q_an = 2 * n / alpha**3, -1.0 / alpha**2
    return alpha, n, q, q_a, q_n, q_aa, q_an


def _tail_grad(x, data):
    alpha, n, q, q_a, q_n, _, _ = _tail_parts(x, data)
    d_n = np.log(n) + 1.0 - np.log(alpha) - np.log(q) - n * q_n / q
    d_a = -n / alpha - alpha - n * q_a / q
    return -np.array([d_a.sum(), d_n.sum()])


def _tail_hess(x, data):
    alpha, n, q, q_a, q_n, q_aa, q_an = _tail_parts(x, data)
    d_nn = 1.0 / n - 2 * q_n / q + n * q_n**2 / q**2
    d_aa = n / alpha**2 - 1.0 - n * (q_aa / q - q_a**2 / q**2)
    d_an = -1.0 / alpha - q_a / q - n * (q_an / q - q_a * q_n / q**2)
    return -np.array([[d_aa.sum(), d_an.sum()], [d_an.sum(), d_nn.sum()]])


# --- log-sum-exp of an affine map, at arguments where exp overflows ------------------------------


def _lse_data(dtype: np.dtype) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    # the offset of ~750 makes every exp(z) overflow: only a stable log-sum-exp gets it right
    offset = 750.0 + rng.normal(size=8)
    return {"m": rng.normal(size=(8, 3)).astype(dtype), "offset": offset.astype(dtype)}


def _lse(a, b, c, m, offset):
    return tf.reduce_logsumexp(tf.linalg.matvec(m, tf.stack([a, b, c])) + offset)


def _softmax(x, data):
    z = data["m"] @ x + data["offset"]
    s = np.exp(z - z.max())
    return s / s.sum()


def _lse_grad(x, data):
    return data["m"].T @ _softmax(x, data)


def _lse_hess(x, data):
    s = _softmax(x, data)
    return data["m"].T @ (np.diag(s) - np.outer(s, s)) @ data["m"]


_LSE_PARAMS = (ParamSpec("a"), ParamSpec("b"), ParamSpec("c"))


# --- the table of cases ---------------------------------------------------------------------------

_ROSEN_PARAMS = tuple(ParamSpec(f"x{i}") for i in range(5))

_TABLE: dict[str, Case] = {
    case.name: case
    for case in (
        Case(
            "gauss_nll",
            "Gaussian NLL in (mu, sigma) over 1000 seeded events",
            _GAUSS_PARAMS,
            (("near-mle", (0.3, 1.2)), ("off", (-0.5, 0.8)), ("wide", (1.0, 3.0))),
            make(_GAUSS_PARAMS, _gauss_nll),
            _gauss_grad,
            _gauss_hess,
            _gauss_data,
        ),
        Case(
            "gauss_nll_f32",
            "the Gaussian NLL in float32",
            _GAUSS_PARAMS,
            (("off", (-0.5, 0.8)), ("wide", (1.0, 3.0))),
            make(_GAUSS_PARAMS, _gauss_nll),
            _gauss_grad,
            _gauss_hess,
            _gauss_data,
            dtype="float32",
        ),
        Case(
            "rosenbrock5",
            "5-dimensional Rosenbrock function",
            _ROSEN_PARAMS,
            (
                ("start", (-1.2, 1.0, -1.2, 1.0, -1.2)),
                ("minimum", (1.0, 1.0, 1.0, 1.0, 1.0)),
                ("scattered", (0.5, -0.3, 1.4, 0.8, -0.9)),
            ),
            make(_ROSEN_PARAMS, _rosenbrock),
            _rosenbrock_grad,
            _rosenbrock_hess,
        ),
        Case(
            "scale_disparity",
            "1e6 x^2 + 1e-6 y^2",
            (ParamSpec("x"), ParamSpec("y")),
            (("unit", (1.0, 1.0)), ("balanced", (1e-3, 1e3)), ("mixed", (-0.7, 30.0))),
            make((ParamSpec("x"), ParamSpec("y")), _disparity),
            _disparity_grad,
            _disparity_hess,
            hard=True,
        ),
        Case(
            "exp_large",
            "exp(x) at large arguments",
            (ParamSpec("x"),),
            (("x=20", (20.0,)), ("x=10", (10.0,))),
            make((ParamSpec("x"),), _exp),
            _exp_grad,
            _exp_hess,
            hard=True,
        ),
        Case(
            "mixed_f32",
            "a^2 b + sin(a) exp(b/2) in float32",
            (ParamSpec("a"), ParamSpec("b")),
            (("p1", (1.3, 0.7)), ("p2", (-0.4, 2.1))),
            make((ParamSpec("a"), ParamSpec("b")), _mixed),
            _mixed_grad,
            _mixed_hess,
            dtype="float32",
        ),
        Case(
            "poisson_binned_exp",
            "Poisson NLL of a binned exponential (40 bins, seeded counts)",
            (ParamSpec("norm", 10.0, 1e5), ParamSpec("lam", 0.05, 5.0)),
            (("near-mle", (2000.0, 0.8)), ("low", (1500.0, 1.2)), ("high", (2600.0, 0.5))),
            make((ParamSpec("norm", 10.0, 1e5), ParamSpec("lam", 0.05, 5.0)), _poisson_nll),
            _poisson_grad,
            _poisson_hess,
            _poisson_data,
        ),
        Case(
            "crystal_ball_tail",
            "power-law tail of a Crystal Ball shape in (alpha, n)",
            (ParamSpec("alpha", 0.5, 2.2), ParamSpec("n", 1.1, 50.0)),
            (("typical", (1.5, 3.0)), ("steep", (0.8, 10.0)), ("flat", (2.0, 1.5))),
            make((ParamSpec("alpha", 0.5, 2.2), ParamSpec("n", 1.1, 50.0)), _tail_nll),
            _tail_grad,
            _tail_hess,
            _tail_data,
        ),
        Case(
            "logsumexp",
            "log-sum-exp of 8 affine terms near 750 (exp overflows) in 3 parameters",
            _LSE_PARAMS,
            (("small", (0.1, -0.2, 0.3)), ("spread", (2.0, -1.5, 1.0))),
            make(_LSE_PARAMS, _lse),
            _lse_grad,
            _lse_hess,
            _lse_data,
        ),
        Case(
            "near_limit",
            "the Gaussian NLL at points on or next to parameter limits",
            _LIMIT_PARAMS,
            (("sigma-at-lower", (0.3, 1.0)), ("mu-near-upper", (2.0 - 1e-9, 1.5)), ("corner", (2.0, 1.0))),
            make(_LIMIT_PARAMS, _gauss_nll),
            _gauss_grad,
            _gauss_hess,
            _gauss_data,
            hard=True,
        ),
    )
}


#: The reference functions: the table above, then singular functions at limits and a noisy loss.
FUNCTION_CASES: dict[str, Case] = {**_TABLE, **EDGE_CASES}

#: Every case by name: the reference functions, then the models inside losses.
CASES: dict[str, Case] = {**FUNCTION_CASES, **MODEL_CASES}


def select(patterns: list[str] | None = None) -> list[Case]:
    """Return the cases whose names match any of the shell-style ``patterns`` (all for None).

    Raises
    ------
    ValueError
        If a pattern matches no case; the message lists the case names.
    """
    if not patterns:
        return list(CASES.values())
    chosen = []
    for pattern in patterns:
        matched = [c for c in CASES.values() if fnmatchcase(c.name, pattern)]
        if not matched:
            raise ValueError(f"--cases pattern {pattern!r} matches no case; cases are {list(CASES)}.")
        chosen.extend(c for c in matched if all(c.name != k.name for k in chosen))
    return chosen
