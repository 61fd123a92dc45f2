"""Analytic reference PDFs, each normalised in closed form over the observable's range.

Every model here also exposes ``log_pdf_derivatives(x)``: the derivatives of its
normalised log-density with respect to each parameter, written out in NumPy/SciPy
(no automatic differentiation), so that the validation suite has an independent
reference for every gradient strategy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from scipy import special

from zgrad import _policy
from zgrad.models import _jets, _sampling
from zgrad.models._base import BasePDF
from zgrad.models._closed_form import (
    _location_scale_terms,
    _np_cb_derivatives,
    _np_chebyshev_integrals,
    _np_log_expm1_ratio_slope,
)
from zgrad.space import Space

__all__ = ["CrystalBall", "DoubleCrystalBall", "Exponential", "Gauss", "Polynomial"]

_SQRT2 = math.sqrt(2.0)
_SQRT_HALF_PI = math.sqrt(math.pi / 2.0)
# Below this |z| the ratio expm1(z)/z is summed as a series: the direct quotient is exact in value
# but its autodiff derivative cancels catastrophically near z = 0 (and is 0/0 at z = 0).
_SERIES_CUT = 1e-3


class Gauss(BasePDF):
    """Gaussian density, truncated to the observable's range.

    Parameters
    ----------
    obs : Space
    mu, sigma : Parameter
        Mean and width (``sigma > 0``).

    Examples
    --------
    >>> import zgrad
    >>> obs = zgrad.Space("x", limits=(-5.0, 5.0))
    >>> g = zgrad.models.Gauss(obs=obs, mu=zgrad.Parameter("mu", 0.0), sigma=zgrad.Parameter("sigma", 1.0))
    >>> round(float(g.integrate((-5.0, 5.0))), 12)
    1.0
    >>> sorted(g.log_pdf_derivatives([0.5]))
    ['mu', 'sigma']
    """

    def __init__(self, obs: Space, mu: Any, sigma: Any, name: str | None = None) -> None:
        super().__init__(obs, {"mu": mu, "sigma": sigma}, name=name)
        _require_positive(self, "sigma")

    def _log_unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        # one scalar factor instead of a division and a multiplication per event
        sigma = self._params["sigma"]
        d = x - self._params["mu"]
        return d * d * (-0.5 / (sigma * sigma))

    def _unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        return tf.exp(self._log_unnormalized_pdf(x))

    # closed-form derivatives for losses' exact Hessians (see zgrad.models._jets)
    _log_shape_jet = _jets.gauss_log_shape
    _log_normalization_jet = _jets.gauss_log_normalization

    def _integral(self, lower: Any, upper: Any) -> tf.Tensor:
        mu, sigma = self._params["mu"], self._params["sigma"]
        scale = sigma * _SQRT2
        return sigma * _SQRT_HALF_PI * (tf.math.erf((upper - mu) / scale) - tf.math.erf((lower - mu) / scale))

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        # inverse CDF of the truncated normal, at the Parameters' values read once
        values = _values(self)
        mu, sigma = values["mu"], values["sigma"]
        if not (math.isfinite(mu) and 0.0 < sigma < math.inf):
            raise ValueError(
                f"{self.name}: cannot sample with mu={mu}, sigma={sigma}; sigma must be positive."
            )
        lower, upper = self._obs.limits
        t = _sampling.truncated_normal(rng.random(n), (lower - mu) / sigma, (upper - mu) / sigma)
        return np.clip(mu + sigma * t, lower, upper)

    def log_pdf_derivatives(self, x: Any) -> dict[str, np.ndarray | None]:
        """Return ``d log pdf(x) / d param`` for ``'mu'`` and ``'sigma'``, in closed form (NumPy).

        The derivatives include those of the log-normalisation over the observable's range.

        Examples
        --------
        >>> import zgrad
        >>> obs = zgrad.Space("x", limits=(-50.0, 50.0))
        >>> g = zgrad.models.Gauss(obs, zgrad.Parameter("mu", 0.0), zgrad.Parameter("sigma", 2.0))
        >>> float(g.log_pdf_derivatives([1.0])["mu"][0])  # (x - mu) / sigma**2 far from the limits
        0.25
        """
        x, values = _eager_inputs(self, x)
        mu, sigma = values["mu"], values["sigma"]
        t = (x - mu) / sigma
        t_a, t_b = ((limit - mu) / sigma for limit in self._obs.limits)
        area = _SQRT_HALF_PI * (special.erf(t_b / _SQRT2) - special.erf(t_a / _SQRT2))
        d_mu, d_sigma = _location_scale_terms(
            t, -t, sigma, t_a, t_b, math.exp(-0.5 * t_a**2), math.exp(-0.5 * t_b**2), area
        )
        return {"mu": d_mu, "sigma": d_sigma}


class Exponential(BasePDF):
    """Exponential density ``exp(lam * x)``, truncated to the observable's range.

    The shape is evaluated relative to the end of the range where it is largest, so
    neither the density nor the normalisation overflows for large ``|lam| * width``;
    at ``lam == 0`` it is the uniform density, with finite derivatives.

    Parameters
    ----------
    obs : Space
    lam : Parameter
        The slope (any sign; zero gives the uniform density).

    Examples
    --------
    >>> import zgrad
    >>> obs = zgrad.Space("x", limits=(0.0, 10.0))
    >>> expo = zgrad.models.Exponential(obs=obs, lam=zgrad.Parameter("lam", -0.5))
    >>> round(float(expo.pdf([0.0])[0]), 6)  # 0.5 / (1 - exp(-5))
    0.503392
    >>> flat = zgrad.models.Exponential(obs=obs, lam=zgrad.Parameter("lam0", 0.0))
    >>> float(flat.pdf([3.0])[0])
    0.1
    """

    def __init__(self, obs: Space, lam: Any, name: str | None = None) -> None:
        super().__init__(obs, {"lam": lam}, name=name)

    def _rising(self) -> tf.Tensor:
        return self._params["lam"] >= 0

    def _reference(self) -> tf.Tensor:
        lower, upper = (tf.constant(v, self._dtype()) for v in self._obs.limits)
        return tf.where(self._rising(), upper, lower)

    def _log_unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        return self._params["lam"] * (x - self._reference())

    _log_shape_jet = _jets.exponential_log_shape
    _log_normalization_jet = _jets.exponential_log_normalization

    def _unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        return tf.exp(self._log_unnormalized_pdf(x))

    def _integral(self, lower: Any, upper: Any) -> tf.Tensor:
        lam = self._params["lam"]
        # tf.where, not tf.abs: the derivative of |lam| at lam == 0 is taken as 0, which would lose
        # the slope of the normalisation there; the selected branch of tf.where keeps it.
        abs_lam = tf.where(self._rising(), lam, -lam)
        lower, upper = (tf.convert_to_tensor(v, dtype=self._dtype()) for v in (lower, upper))
        highest = tf.where(self._rising(), upper, lower)
        width = upper - lower
        return tf.exp(lam * (highest - self._reference())) * width * _expm1_ratio(-abs_lam * width)

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        lam = _values(self)["lam"]
        if not math.isfinite(lam):
            raise ValueError(f"{self.name}: cannot sample with lam={lam}; it must be finite.")
        return _sampling.truncated_exponential(rng.random(n), lam, *self._obs.limits)

    def log_pdf_derivatives(self, x: Any) -> dict[str, np.ndarray | None]:
        """Return ``{'lam': d log pdf(x) / d lam}`` in closed form (NumPy): ``x - E[x]``.

        Examples
        --------
        >>> import zgrad
        >>> obs = zgrad.Space("x", limits=(0.0, 10.0))
        >>> expo = zgrad.models.Exponential(obs, zgrad.Parameter("lam", 0.0))
        >>> float(expo.log_pdf_derivatives([2.0])["lam"][0])  # x minus the mid-point
        -3.0
        """
        x, values = _eager_inputs(self, x)
        lam = values["lam"]
        lower, upper = self._obs.limits
        width = upper - lower
        s = abs(lam) * width
        if lam >= 0:
            return {"lam": (x - upper) - width * _np_log_expm1_ratio_slope(s)}
        return {"lam": (x - lower) + width * _np_log_expm1_ratio_slope(s)}


class _CrystalBallShape(BasePDF):
    """What the one- and two-sided Crystal Ball share; ``_tails`` says which tails there are."""

    def _tails(self, params: dict[str, Any]) -> tuple[tuple[Any, Any], tuple[Any, Any] | None]:
        raise NotImplementedError

    def _t(self, x: Any) -> Any:
        return (x - self._params["mu"]) / self._params["sigma"]

    def _log_unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        return _cb_log_shape(self._t(x), *self._tails(self._params))

    def _unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        return tf.exp(self._log_unnormalized_pdf(x))

    def _integral(self, lower: Any, upper: Any) -> tf.Tensor:
        area = _cb_area(self._t(lower), self._t(upper), *self._tails(self._params))
        return self._params["sigma"] * area

    def log_pdf_derivatives(self, x: Any) -> dict[str, np.ndarray | None]:
        """Return ``d log pdf(x) / d param`` for every parameter, in closed form (NumPy/SciPy).

        The derivatives include those of the log-normalisation over the observable's
        range. The tail parameters need integrals of ``v**(-n)`` and ``v**(-n) * log(v)``;
        both are written with ``expm1``-type ratios that stay exact through ``n == 1``.

        Examples
        --------
        >>> import zgrad
        >>> obs = zgrad.Space("x", limits=(-10.0, 5.0))
        >>> P = zgrad.Parameter
        >>> cb = zgrad.models.CrystalBall(obs, P("mu", 0.0), P("sigma", 1.0), P("alpha", 1.5), P("n", 3.0))
        >>> sorted(cb.log_pdf_derivatives([-3.0, 0.5]))
        ['alpha', 'mu', 'n', 'sigma']
        """
        x, values = _eager_inputs(self, x)
        return _np_cb_derivatives(x, self._obs.limits, values, *self._tails(values))


class CrystalBall(_CrystalBallShape):
    """Crystal Ball density: a Gaussian core with a power-law tail on the low side, on the range.

    With ``t = (x - mu) / sigma`` the shape is ``exp(-t**2 / 2)`` for ``t > -alpha`` and
    ``A * (B - t)**(-n)`` below, continuous with a continuous first derivative (SciPy's
    ``scipy.stats.crystalball`` with ``beta = alpha`` and ``m = n``). The range is finite,
    so any ``n > 0`` normalises; ``n == 1`` needs no special case.

    Parameters
    ----------
    obs : Space
    mu, sigma : Parameter
        Peak position and core width (``sigma > 0``).
    alpha : Parameter
        Where the tail starts, in units of sigma below the peak (``alpha > 0``).
    n : Parameter
        Power of the tail (``n > 0``).

    Raises
    ------
    ValueError
        If ``sigma``, ``alpha`` or ``n`` is not positive when the model is built (later
        values are not checked: a fit should give these Parameters positive limits).

    Examples
    --------
    >>> import zgrad
    >>> obs = zgrad.Space("x", limits=(-10.0, 5.0))
    >>> P = zgrad.Parameter
    >>> cb = zgrad.models.CrystalBall(obs, P("mu", 0.0), P("sigma", 1.0), P("alpha", 1.5), P("n", 3.0))
    >>> round(float(cb.integrate((-10.0, 5.0))), 12)
    1.0
    """

    def __init__(self, obs: Space, mu: Any, sigma: Any, alpha: Any, n: Any, name: str | None = None) -> None:
        super().__init__(obs, {"mu": mu, "sigma": sigma, "alpha": alpha, "n": n}, name=name)
        for role in ("sigma", "alpha", "n"):
            _require_positive(self, role)

    def _tails(self, params: dict[str, Any]) -> tuple[tuple[Any, Any], None]:
        return (params["alpha"], params["n"]), None


class DoubleCrystalBall(_CrystalBallShape):
    """Crystal Ball density with power-law tails on both sides of the Gaussian core, on the range.

    The low tail starts at ``t = -alphal`` with power ``nl``, the high tail at
    ``t = alphar`` with power ``nr`` (``t = (x - mu) / sigma``), each as in
    :class:`CrystalBall`.

    Parameters
    ----------
    obs : Space
    mu, sigma : Parameter
    alphal, nl : Parameter
        Start (in sigma, below the peak) and power of the low tail (both positive).
    alphar, nr : Parameter
        Start (in sigma, above the peak) and power of the high tail (both positive).

    Raises
    ------
    ValueError
        If ``sigma``, an ``alpha`` or an ``n`` is not positive when the model is built.

    Examples
    --------
    >>> import zgrad
    >>> obs = zgrad.Space("x", limits=(-8.0, 8.0))
    >>> P = zgrad.Parameter
    >>> dcb = zgrad.models.DoubleCrystalBall(obs, P("mu", 0.0), P("sigma", 1.0),
    ...                                      P("al", 1.0), P("nl", 2.0), P("ar", 2.0), P("nr", 1.0))
    >>> round(float(dcb.integrate((-8.0, 8.0))), 12)
    1.0
    >>> sorted(dcb.log_pdf_derivatives([0.0]))
    ['alphal', 'alphar', 'mu', 'nl', 'nr', 'sigma']
    """

    def __init__(
        self,
        obs: Space,
        mu: Any,
        sigma: Any,
        alphal: Any,
        nl: Any,
        alphar: Any,
        nr: Any,
        name: str | None = None,
    ) -> None:
        params = {"mu": mu, "sigma": sigma, "alphal": alphal, "nl": nl, "alphar": alphar, "nr": nr}
        super().__init__(obs, params, name=name)
        for role in ("sigma", "alphal", "nl", "alphar", "nr"):
            _require_positive(self, role)

    def _tails(self, params: dict[str, Any]) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
        return (params["alphal"], params["nl"]), (params["alphar"], params["nr"])


class Polynomial(BasePDF):
    """Chebyshev series ``1 + sum_k c_k T_k(y)``, with ``y`` the range mapped onto ``[-1, 1]``.

    The constant coefficient is fixed to 1 (the normalisation absorbs the scale). The
    density must stay positive on the range; that is the user's choice of coefficients.

    Parameters
    ----------
    obs : Space
    coeffs : sequence of Parameter
        ``c_1 ... c_k``; their roles are ``'c1'``, ``'c2'``, ... An empty sequence gives
        the uniform density.

    Examples
    --------
    >>> import zgrad
    >>> obs = zgrad.Space("x", limits=(0.0, 2.0))
    >>> poly = zgrad.models.Polynomial(obs, [zgrad.Parameter("c1", 0.5)])
    >>> float(poly.pdf([2.0])[0])  # (1 + 0.5 * 1) / 2
    0.75
    """

    def __init__(self, obs: Space, coeffs: Sequence[Any], name: str | None = None) -> None:
        if isinstance(coeffs, (str, bytes)) or not isinstance(coeffs, Sequence):
            raise TypeError(
                f"coeffs must be a sequence of Parameters; got {coeffs!r} ({type(coeffs).__name__})."
            )
        super().__init__(obs, {f"c{k + 1}": c for k, c in enumerate(coeffs)}, name=name)
        self._coeffs = list(coeffs)

    def _y(self, x: Any) -> Any:
        lower, upper = self._obs.limits
        return (2.0 * x - (lower + upper)) / (upper - lower)

    def _unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        y = self._y(x)
        previous, current = tf.ones_like(y), y
        total = tf.ones_like(y)
        for coeff in self._coeffs:
            total += coeff * current
            previous, current = current, 2.0 * y * current - previous
        return total

    def _integral(self, lower: Any, upper: Any) -> tf.Tensor:
        dtype = self._dtype()
        y_lo, y_hi = (self._y(tf.convert_to_tensor(v, dtype=dtype)) for v in (lower, upper))
        total = y_hi - y_lo  # the integral of T_0
        for j, (at_hi, at_lo) in enumerate(
            zip(
                _chebyshev_antiderivatives(y_hi, len(self._coeffs)),
                _chebyshev_antiderivatives(y_lo, len(self._coeffs)),
                strict=True,
            )
        ):
            total += self._coeffs[j] * (at_hi - at_lo)
        return 0.5 * self._obs.width * total

    def log_pdf_derivatives(self, x: Any) -> dict[str, np.ndarray | None]:
        """Return ``d log pdf(x) / d c_k`` for every coefficient, in closed form (NumPy).

        Examples
        --------
        >>> import zgrad
        >>> obs = zgrad.Space("x", limits=(-1.0, 1.0))
        >>> poly = zgrad.models.Polynomial(obs, [zgrad.Parameter("c1", 0.0)])
        >>> float(poly.log_pdf_derivatives([0.5])["c1"][0])  # T_1(0.5) / 1, T_1 integrates to 0
        0.5
        """
        x, values = _eager_inputs(self, x)
        k = len(self._coeffs)
        coeffs = np.array([1.0] + [values[f"c{j + 1}"] for j in range(k)])
        y = self._y(x)
        shape = np.polynomial.chebyshev.chebval(y, coeffs)
        integrals = _np_chebyshev_integrals(k, -1.0, 1.0)
        area = float(np.dot(coeffs, integrals))
        out: dict[str, np.ndarray | None] = {}
        for j in range(1, k + 1):
            basis = np.polynomial.chebyshev.chebval(y, np.eye(k + 1)[j])
            out[f"c{j}"] = basis / shape - integrals[j] / area
        return out


# --- TensorFlow helpers ---------------------------------------------------------------------------


def _expm1_ratio(z: tf.Tensor) -> tf.Tensor:
    """``expm1(z) / z`` (1 at z = 0), with an exact, finite derivative near and at zero."""
    small = tf.abs(z) < _SERIES_CUT
    safe = tf.where(small, tf.ones_like(z), z)  # the unselected branch must not produce NaN gradients
    series = 1.0 + z / 2.0 * (1.0 + z / 3.0 * (1.0 + z / 4.0 * (1.0 + z / 5.0 * (1.0 + z / 6.0))))
    return tf.where(small, series, tf.math.expm1(safe) / safe)


def _chebyshev_antiderivatives(y: tf.Tensor, k: int) -> list[tf.Tensor]:
    """Antiderivatives of ``T_1 .. T_k`` at ``y`` (tensors of any shape).

    ``int T_1 = y**2 / 2`` and ``int T_j = (T_{j+1} / (j + 1) - T_{j-1} / (j - 1)) / 2`` for ``j >= 2``.
    """
    basis = [tf.ones_like(y), y]
    while len(basis) < k + 2:
        basis.append(2.0 * y * basis[-1] - basis[-2])
    return [
        0.5 * y * y if j == 1 else 0.5 * (basis[j + 1] / (j + 1) - basis[j - 1] / (j - 1))
        for j in range(1, k + 1)
    ]


def _cb_log_shape(t: Any, left: tuple[Any, Any], right: tuple[Any, Any] | None) -> tf.Tensor:
    alpha, n = left
    # each tail is evaluated at t clipped into its own region, so the branch tf.where drops stays
    # finite (an unclipped log1p of a negative argument below -1 would poison the gradient)
    log_shape = tf.where(t < -alpha, _tail_log_shape(tf.minimum(t, -alpha), alpha, n), -0.5 * t * t)
    if right is not None:
        alpha_r, n_r = right
        log_shape = tf.where(t > alpha_r, _tail_log_shape(-tf.maximum(t, alpha_r), alpha_r, n_r), log_shape)
    return log_shape


def _tail_log_shape(t: Any, alpha: Any, n: Any) -> tf.Tensor:
    # log(A * (B - t)**-n) written around the junction, where it is continuous:
    # -alpha**2 / 2 - n * log(v) with v = 1 - alpha (t + alpha) / n >= 1 in the tail
    return -0.5 * alpha * alpha - n * tf.math.log1p(-alpha * (t + alpha) / n)


def _tail_area(t1: Any, t2: Any, alpha: Any, n: Any) -> tf.Tensor:
    """Integral of the low tail over ``[t1, t2]``, ``t1 <= t2 <= -alpha``; exact and smooth through n == 1."""
    # with v = 1 - alpha (t + alpha) / n the tail is exp(-alpha**2 / 2) * v**-n and dt = -(n / alpha) dv;
    # int_{v_lo}^{v_lo e^L} v**-n dv = v_lo**(1 - n) * L * expm1((1 - n) L) / ((1 - n) L)
    v_lo = 1.0 - alpha * (t2 + alpha) / n
    log_ratio = tf.math.log1p(alpha * (t2 - t1) / (n * v_lo))
    scale = tf.exp(-0.5 * alpha * alpha + (1.0 - n) * tf.math.log(v_lo))
    return n / alpha * scale * log_ratio * _expm1_ratio((1.0 - n) * log_ratio)


def _cb_area(t_lo: Any, t_hi: Any, left: tuple[Any, Any], right: tuple[Any, Any] | None) -> tf.Tensor:
    """Integral of the standard shape over ``[t_lo, t_hi]``: low tail, Gaussian core, optional high tail."""
    alpha, n = left
    area = _tail_area(tf.minimum(t_lo, -alpha), tf.minimum(t_hi, -alpha), alpha, n)
    core_lo, core_hi = tf.maximum(t_lo, -alpha), tf.maximum(t_hi, -alpha)
    if right is not None:
        alpha_r, n_r = right
        core_lo, core_hi = tf.minimum(core_lo, alpha_r), tf.minimum(core_hi, alpha_r)
        area += _tail_area(-tf.maximum(t_hi, alpha_r), -tf.maximum(t_lo, alpha_r), alpha_r, n_r)
    return area + _SQRT_HALF_PI * (tf.math.erf(core_hi / _SQRT2) - tf.math.erf(core_lo / _SQRT2))


# --- NumPy closed forms ---------------------------------------------------------------------------


def _require_positive(model: BasePDF, role: str) -> None:
    value = float(model.params[role].numpy())
    if not value > 0:
        raise ValueError(f"{type(model).__name__}: parameter {role!r} must be positive; got {value}.")


def _values(model: BasePDF) -> dict[str, float]:
    """Return the Parameters' current values by role, read once (for sampling)."""
    return {role: float(param.value()) for role, param in model.params.items()}


def _eager_inputs(model: BasePDF, x: Any) -> tuple[np.ndarray, dict[str, float]]:
    if _policy.in_trace():
        raise RuntimeError(
            f"{type(model).__name__}.log_pdf_derivatives works on NumPy values; call it eagerly."
        )
    return np.asarray(x, dtype=float), _values(model)
