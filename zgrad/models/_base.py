"""The model base: an observable, named Parameters, and normalised ``pdf``/``integrate``/``sample``.

A subclass supplies three hooks, all in TensorFlow:

- ``_unnormalized_pdf(x)``: the shape on the observable, up to a constant;
- ``_integral(lower, upper)``: the analytic integral of that shape over ``[lower, upper]``;
- optionally ``_log_unnormalized_pdf(x)`` when a direct log form is more accurate.

``pdf`` and ``integrate`` run as kind ``'model'`` (eager under ``graph='auto'`` when
called directly, inlined when a traced loss calls them); ``sample`` runs its kernel as
kind ``'sample'``. Models combine by composition (:class:`zgrad.models.Sum`), not by
deeper inheritance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from zgrad import _policy
from zgrad.space import Space
from zgrad.z import random as zrandom
from zgrad.z._function import function

__all__ = ["BasePDF"]


class BasePDF:
    """Base class of zgrad's PDFs: normalised over the observable's range.

    Parameters
    ----------
    obs : Space
        The observable and its range (the normalisation range).
    params : mapping of str to Parameter
        The model's parameters by role (e.g. ``{'mu': mu, 'sigma': sigma}``).
    name : str, optional
        A label for reports; defaults to the class name.
    """

    def __init__(self, obs: Space, params: Mapping[str, Any], name: str | None = None) -> None:
        if not isinstance(obs, Space):
            raise TypeError(f"obs must be a zgrad.Space; got {obs!r} ({type(obs).__name__}).")
        checked = {}
        for role, param in params.items():
            if not isinstance(param, tf.Variable):
                raise TypeError(
                    f"{type(self).__name__}: parameter {role!r} must be a zgrad.Parameter "
                    "(or a tf.Variable); "
                    f"got {param!r} ({type(param).__name__})."
                )
            checked[role] = param
        self._obs = obs
        self._params = checked
        self._name = name if name is not None else type(self).__name__

    # --- description --------------------------------------------------------------------------

    @property
    def obs(self) -> Space:
        """The observable."""
        return self._obs

    @property
    def name(self) -> str:
        """A label for reports."""
        return self._name

    @property
    def params(self) -> dict[str, Any]:
        """The parameters by role, as a new dict."""
        return dict(self._params)

    def get_params(self, floating: bool | None = True) -> list[Any]:
        """Return the distinct Parameters this model depends on, in a fixed order.

        Parameters
        ----------
        floating : bool or None, default True
            True: only floating ones; False: only fixed ones; None: all.
        """
        out: list[Any] = []
        for param in self._all_params():
            if any(param is seen for seen in out):
                continue
            if floating is None or getattr(param, "floating", True) == floating:
                out.append(param)
        return out

    def _all_params(self) -> list[Any]:
        return list(self._params.values())

    @property
    def uses_py_function(self) -> bool:
        """Whether values pass through ``z.py_function`` (their gradients are then not exact)."""
        return False

    @property
    def is_extended(self) -> bool:
        """Whether the model carries a yield (expected number of events)."""
        return False

    # --- hooks --------------------------------------------------------------------------------

    def _unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _unnormalized_pdf(x).")

    def _integral(self, lower: Any, upper: Any) -> tf.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement _integral(lower, upper).")

    def _log_unnormalized_pdf(self, x: tf.Tensor) -> tf.Tensor:
        return tf.math.log(self._unnormalized_pdf(x))

    def _normalization(self) -> tf.Tensor:
        return self._integral(self._obs.lower, self._obs.upper)

    def _convert_x(self, x: Any) -> tf.Tensor:
        dtype = self._dtype()
        x = tf.convert_to_tensor(x)
        return tf.cast(x, dtype) if x.dtype != dtype else x

    def _dtype(self) -> tf.DType:
        params = self._all_params()
        return params[0].dtype if params else tf.float64

    # --- public evaluation --------------------------------------------------------------------

    @function(wraps="model")
    def pdf(self, x: Any) -> tf.Tensor:
        """Return the normalised density at ``x`` (values outside the range are not masked).

        Examples
        --------
        >>> import zgrad
        >>> obs = zgrad.Space("x", limits=(-5.0, 5.0))
        >>> g = zgrad.models.Gauss(obs=obs, mu=zgrad.Parameter("mu", 0.0), sigma=zgrad.Parameter("s", 1.0))
        >>> round(float(g.pdf([0.0])[0]), 4)
        0.3989
        """
        x = self._convert_x(x)
        return self._unnormalized_pdf(x) / self._normalization()

    @function(wraps="model")
    def log_pdf(self, x: Any) -> tf.Tensor:
        """Return the log of the normalised density at ``x``."""
        x = self._convert_x(x)
        return self._log_unnormalized_pdf(x) - tf.math.log(self._normalization())

    @function(wraps="model")
    def log_unnormalized_pdf(self, x: Any) -> tf.Tensor:
        """Return the log of the shape at ``x`` before normalisation (``log_pdf + log_normalization``).

        Losses sum it over events and subtract the normalisation once, instead of once per event.
        """
        return self._log_unnormalized_pdf(self._convert_x(x))

    @function(wraps="model")
    def log_normalization(self) -> tf.Tensor:
        """Return the log of the shape's integral over the observable's range."""
        return tf.math.log(self._normalization())

    @function(wraps="model")
    def integrate(self, limits: tuple[float, float]) -> tf.Tensor:
        """Return the probability in ``limits = (lower, upper)``, a sub-range of the observable.

        Examples
        --------
        >>> import zgrad
        >>> obs = zgrad.Space("x", limits=(-5.0, 5.0))
        >>> g = zgrad.models.Gauss(obs=obs, mu=zgrad.Parameter("mu", 0.0), sigma=zgrad.Parameter("s", 1.0))
        >>> round(float(g.integrate((-1.0, 1.0))), 4)
        0.6827
        """
        lower, upper = _checked_limits(limits, self._obs)
        return self._integral(lower, upper) / self._normalization()

    @function(wraps="model")
    def bin_probabilities(self, edges: Any) -> tf.Tensor:
        """Return the probability in each bin between consecutive ``edges`` (inside the range)."""
        edges = self._convert_x(edges)
        return self._integral(edges[:-1], edges[1:]) / self._normalization()

    # --- sampling -----------------------------------------------------------------------------

    def sample(self, n: int, *, seed: int | None = None) -> np.ndarray:
        """Draw ``n`` events from the normalised density by accept-reject (kernel traced as ``'sample'``).

        Parameters
        ----------
        n : int
            Number of events.
        seed : int, optional
            Makes the sample reproducible without touching zgrad's global generator.

        Returns
        -------
        ndarray, shape (n,)
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative int; got {n!r}.")
        if _policy.in_trace():
            raise RuntimeError(
                "sample() draws in a Python loop; call it eagerly, not inside a traced function."
            )
        n = int(n)
        generator = _seeded_generator(seed) if seed is not None else None
        grid = np.linspace(self._obs.lower, self._obs.upper, 2001)
        # a tensor, so that each new bound does not trace the kernel anew
        bound = tf.constant(1.1 * float(np.max(self.pdf(grid))), dtype=self._dtype())
        chunks: list[np.ndarray] = []
        have = 0
        # a power of two: samples of nearby sizes share one trace of the kernel
        batch = 1 << max(2 * n, 1024).bit_length()
        while have < n:
            u = _uniform(generator, (2, batch), self._dtype())
            accepted = self._accept_reject(u, bound).numpy()
            chunks.append(accepted)
            have += accepted.size
        return np.concatenate(chunks)[:n] if chunks else np.empty(0)

    @function(wraps="sample")
    def _accept_reject(self, u: tf.Tensor, bound: tf.Tensor) -> tf.Tensor:
        lower, upper = self._obs.lower, self._obs.upper
        x = lower + (upper - lower) * u[0]
        keep = u[1] * bound < self.pdf(x)
        return tf.boolean_mask(x, keep)

    def __repr__(self) -> str:
        params = ", ".join(f"{role}={p.name!r}" for role, p in self._params.items())
        return f"<zgrad.models.{type(self).__name__} obs={self._obs.name!r} {params}>"


def _seeded_generator(seed: int) -> tf.random.Generator:
    # Generator.from_seed(k + 1) yields the stream of from_seed(k) shifted by one block, so
    # consecutive seeds would give nearly identical samples: scramble the seed first
    key, counter = np.random.SeedSequence(int(seed)).generate_state(2, dtype=np.uint64)
    return tf.random.Generator.from_key_counter(
        key=int(key) >> 1, counter=[int(counter) >> 1, 0], alg=tf.random.Algorithm.PHILOX
    )


def _uniform(generator: tf.random.Generator | None, shape: tuple, dtype: tf.DType) -> tf.Tensor:
    if generator is None:
        return zrandom.uniform(shape, dtype=dtype)
    return generator.uniform(shape, dtype=dtype)


def _checked_limits(limits: Any, obs: Space) -> tuple[float, float]:
    try:
        lower, upper = (float(v) for v in limits)
    except (TypeError, ValueError):
        raise TypeError(f"limits must be a pair of numbers (lower, upper); got {limits!r}.") from None
    if not (obs.lower <= lower < upper <= obs.upper):
        raise ValueError(
            f"limits {limits!r} must be an increasing sub-range of the observable's {obs.limits}."
        )
    return lower, upper
