"""Template shapes from SciPy: a cubic spline through histogram heights, and a Gaussian KDE.

Their values come from SciPy through ``z.py_function``, so they work eagerly, inside
traced losses, and with every gradient strategy. ``shift`` and ``scale`` (optional
Parameters) move and stretch the template: ``pdf(x) ∝ template((x - shift) / scale)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.interpolate
import scipy.stats
import tensorflow as tf

from zgrad.models._base import BasePDF
from zgrad.space import Space
from zgrad.z._bridge import py_function

__all__ = ["KDEShape", "SplineShape"]


def _as_dtype(value: Any, dtype: tf.DType) -> tf.Tensor:
    # tf.cast(-1.7, tf.float64) goes through a float32 tensor and gives -1.70000005: Python numbers
    # are converted in the target dtype directly, tensors cast
    return tf.cast(tf.convert_to_tensor(value, dtype_hint=dtype), dtype)


class _TemplateShape(BasePDF):
    """Shared handling of ``shift`` and ``scale`` (Parameters, or fixed at 0 and 1 when None)."""

    def __init__(self, obs: Space, shift: Any, scale: Any, name: str | None) -> None:
        params = {role: p for role, p in (("shift", shift), ("scale", scale)) if p is not None}
        super().__init__(obs, params, name=name)

    @property
    def uses_py_function(self) -> bool:
        """True: template values come from SciPy through ``z.py_function``."""
        return True

    def _shift_scale(self) -> tuple[tf.Tensor, tf.Tensor]:
        dtype = self._dtype()
        shift = self._params.get("shift")
        scale = self._params.get("scale")
        shift = tf.constant(0.0, dtype) if shift is None else tf.convert_to_tensor(shift)
        scale = tf.constant(1.0, dtype) if scale is None else tf.convert_to_tensor(scale)
        return shift, scale


class SplineShape(_TemplateShape):
    """A shape interpolated through knots with SciPy's monotone cubic spline (``PchipInterpolator``).

    PCHIP is a piecewise cubic that does not overshoot, so non-negative heights give a
    non-negative density. Outside the knots the density is 0.

    Parameters
    ----------
    obs : Space
    x, y : 1-D arrays
        Knots (strictly increasing, e.g. bin centres) and non-negative heights.
    shift, scale : Parameter, optional
        ``pdf(t) ∝ spline((t - shift) / scale)``.

    Examples
    --------
    >>> import numpy as np, zgrad
    >>> obs = zgrad.Space("x", limits=(-3.0, 3.0))
    >>> knots = np.linspace(-3, 3, 13)
    >>> shift = zgrad.Parameter("d", 0.0)
    >>> shape = zgrad.models.SplineShape(obs, x=knots, y=np.exp(-0.5 * knots**2), shift=shift)
    >>> round(float(shape.integrate((-3.0, 3.0))), 10)
    1.0
    """

    def __init__(
        self, obs: Space, x: Any, y: Any, shift: Any = None, scale: Any = None, name: str | None = None
    ) -> None:
        super().__init__(obs, shift, scale, name)
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if x.ndim != 1 or x.shape != y.shape or x.size < 2:
            raise ValueError(f"x and y must be 1-D of one length >= 2; got shapes {x.shape} and {y.shape}.")
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("x and y must be finite.")
        if not (np.diff(x) > 0).all():
            raise ValueError("x (the knots) must be strictly increasing.")
        if (y < 0).any():
            raise ValueError("y (the heights) must be non-negative: a density cannot be negative.")
        self._spline = scipy.interpolate.PchipInterpolator(x, y, extrapolate=False)
        self._slope = self._spline.derivative()
        self._antiderivative = self._spline.antiderivative()
        self._knots = (float(x[0]), float(x[-1]))

    def _values(self, t: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> np.ndarray:
        return np.nan_to_num(self._spline((t - shift) / scale), nan=0.0)

    def _jacobians(self, t: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> tuple:
        u = (t - shift) / scale
        slope = np.nan_to_num(self._slope(u), nan=0.0)
        return slope / scale, -slope / scale, -slope * u / scale

    def _unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        shift, scale = self._shift_scale()
        return py_function(
            self._values,
            [x, shift, scale],
            x.dtype,
            gradient=self._jacobians,
            elementwise=True,
            name="spline_shape",
        )

    def _primitive(self, bound: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> np.ndarray:
        u = np.clip((bound - shift) / scale, *self._knots)
        return np.asarray(scale * self._antiderivative(u), dtype=np.float64)

    def _integral(self, lower: Any, upper: Any) -> tf.Tensor:
        shift, scale = self._shift_scale()
        dtype = shift.dtype
        lower, upper = _as_dtype(lower, dtype), _as_dtype(upper, dtype)
        return py_function(
            self._primitive, [upper, shift, scale], dtype, elementwise=True, name="spline_integral"
        ) - py_function(
            self._primitive, [lower, shift, scale], dtype, elementwise=True, name="spline_integral"
        )


class KDEShape(_TemplateShape):
    """A Gaussian kernel density estimate (``scipy.stats.gaussian_kde``) of a sample, as a shape.

    Parameters
    ----------
    obs : Space
    data : 1-D array
        The sample the density is estimated from.
    bandwidth : str, float or None
        ``bw_method`` of ``gaussian_kde`` (None: Scott's rule).
    shift, scale : Parameter, optional
        ``pdf(t) ∝ kde((t - shift) / scale)``.

    Examples
    --------
    >>> import numpy as np, zgrad
    >>> obs = zgrad.Space("x", limits=(-4.0, 4.0))
    >>> sample = np.random.default_rng(1).normal(size=500)
    >>> kde = zgrad.models.KDEShape(obs, data=sample)
    >>> round(float(kde.integrate((-4.0, 4.0))), 10)
    1.0
    """

    def __init__(
        self,
        obs: Space,
        data: Any,
        bandwidth: Any = None,
        shift: Any = None,
        scale: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__(obs, shift, scale, name)
        data = np.asarray(data, dtype=float)
        if data.ndim != 1 or data.size < 2 or not np.isfinite(data).all():
            raise ValueError(
                f"data must be a finite 1-D sample of at least 2 values; got shape {data.shape}."
            )
        self._kde = scipy.stats.gaussian_kde(data, bw_method=bandwidth)

    def _values(self, t: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> np.ndarray:
        u = (np.asarray(t) - shift) / scale
        return self._kde.evaluate(u.reshape(1, -1)).reshape(u.shape)

    def _unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        shift, scale = self._shift_scale()
        return py_function(self._values, [x, shift, scale], x.dtype, elementwise=True, name="kde_shape")

    def _box(self, lower: np.ndarray, upper: np.ndarray, shift: np.ndarray, scale: np.ndarray) -> np.ndarray:
        lo = np.atleast_1d((lower - shift) / scale)
        hi = np.atleast_1d((upper - shift) / scale)
        boxes = np.array(
            [self._kde.integrate_box_1d(a, b) for a, b in zip(lo.ravel(), hi.ravel(), strict=True)]
        )
        return (scale * boxes).reshape(np.shape(lower))

    def _integral(self, lower: Any, upper: Any) -> tf.Tensor:
        shift, scale = self._shift_scale()
        dtype = shift.dtype
        return py_function(
            self._box,
            [_as_dtype(lower, dtype), _as_dtype(upper, dtype), shift, scale],
            dtype,
            elementwise=True,
            name="kde_integral",
        )
