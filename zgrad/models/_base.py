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

import inspect
import math
import threading
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

    def __new__(cls, *args: Any, **kwargs: Any) -> BasePDF:
        # zfit's spellings fail here with a message naming zgrad's, before Python's own binding error
        if "extended" in kwargs:
            raise TypeError(
                f"{cls.__name__} takes no extended=: an extended model in zgrad is a Sum with yields, "
                f"e.g. zgrad.models.Sum([{cls.__name__}(...)], yields=[n]) (also for a single pdf)."
            )
        if args and "obs" in kwargs and _init_arguments(cls)[:1] == ["obs"]:
            raise TypeError(
                f"{cls.__name__}: zgrad models take the observable first, {_usage(cls)}; got "
                f"{len(args)} positional argument(s) before obs=. Put obs first or name every argument."
            )
        return super().__new__(cls)

    def __init__(self, obs: Space, params: Mapping[str, Any], name: str | None = None) -> None:
        if not isinstance(obs, Space):
            raise TypeError(
                f"obs must be a zgrad.Space; got {obs!r} ({type(obs).__name__}). zgrad models take the "
                f"observable first: {_usage(type(self))}."
            )
        checked = {}
        for role, param in params.items():
            if not isinstance(param, tf.Variable):
                raise TypeError(
                    f"{type(self).__name__}: parameter {role!r} must be a zgrad.Parameter "
                    "(or a tf.Variable); "
                    f"got {param!r} ({type(param).__name__}). For a constant, pass a fixed Parameter: "
                    f"zgrad.Parameter({role!r}, value, floating=False)."
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

    def __getattr__(self, name: str) -> Any:
        # only reached for names the class does not have: point zfit's to zgrad's
        if name in ("create_extended", "set_yield"):
            raise AttributeError(
                f"zgrad models have no {name}() (a zfit name); an extended model is a Sum with yields: "
                f"zgrad.models.Sum([model], yields=[n])."
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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
        """Draw ``n`` events from the normalised density at the Parameters' current values.

        Shapes with a closed-form quantile (:class:`~zgrad.models.Gauss`,
        :class:`~zgrad.models.Exponential`) are drawn by inverse CDF, a
        :class:`~zgrad.models.Sum` component by component; every other shape by
        vectorised accept-reject (the density evaluated by a kernel traced as kind
        ``'sample'``, once per power-of-two batch size). The random numbers come from a
        NumPy ``Generator`` (Philox): with ``seed``, seeded from
        ``numpy.random.SeedSequence(seed)``; without, seeded from the state of zgrad's
        generator (:func:`zgrad.z.random.generator`), which each such call advances by
        one step, so that :func:`zgrad.z.random.set_seed` makes unseeded samples
        reproducible too.

        Parameters
        ----------
        n : int
            Number of events (non-negative).
        seed : int, optional
            A non-negative int: makes the sample reproducible without touching zgrad's
            generator; different seeds give independent streams.

        Returns
        -------
        ndarray, shape (n,)
            In the model's dtype.

        Raises
        ------
        ValueError
            If ``n`` or ``seed`` is not a non-negative int.
        RuntimeError
            If called inside a traced function.

        Examples
        --------
        >>> import zgrad
        >>> obs = zgrad.Space("x", limits=(-5.0, 5.0))
        >>> g = zgrad.models.Gauss(obs=obs, mu=zgrad.Parameter("mu", 0.0), sigma=zgrad.Parameter("s", 1.0))
        >>> x = g.sample(1000, seed=1)
        >>> x.shape, bool((x == g.sample(1000, seed=1)).all())
        ((1000,), True)
        """
        if not _is_count(n):
            raise ValueError(f"n must be a non-negative int; got {n!r}.")
        if seed is not None and not _is_count(seed):
            raise ValueError(f"seed must be None or a non-negative int; got {seed!r}.")
        if _policy.in_trace():
            raise RuntimeError(
                "sample() draws in a Python loop; call it eagerly, not inside a traced function."
            )
        rng = _numpy_generator(seed)
        return self._draw(int(n), rng).astype(self._dtype().as_numpy_dtype, copy=False)

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Return ``n`` events drawn with ``rng`` (the hook of :meth:`sample`; here accept-reject)."""
        chunks: list[np.ndarray] = []
        have = 0
        while have < n:
            # the kernel's uniforms come from a stateless Philox keyed by words of rng: one trace
            # for every n, and the same events for the same rng
            seed = tf.constant(rng.integers(0, 2**63 - 1, size=2, dtype=np.int64))
            accepted, bound = self._accept_reject(tf.constant(n - have, tf.int64), seed)
            if not 0.0 < float(bound) < math.inf:
                raise ValueError(
                    f"{self.name}: cannot sample: the density's maximum on the range is {float(bound)} "
                    "at the current parameter values; it must be positive and finite."
                )
            chunks.append(accepted.numpy())
            have += chunks[-1].size
        return np.concatenate(chunks)[:n] if chunks else np.empty(0, self._dtype().as_numpy_dtype)

    @function(wraps="sample")
    def _accept_reject(self, n: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        dtype = self._dtype()
        lower, upper = self._obs.lower, self._obs.upper
        grid = tf.cast(tf.linspace(lower, upper, _GRID_POINTS), dtype)
        # the envelope: the density's maximum on a grid, with a margin for peaks between its points
        bound = 1.1 * tf.reduce_max(self.pdf(grid))
        # a normalised density under a box of height bound keeps 1 / (bound * width) of the points:
        # enough pairs for n events plus four standard deviations of the count, most of the time
        expected = tf.cast(n, tf.float64) * tf.cast(bound, tf.float64) * (upper - lower)
        valid = tf.math.is_finite(expected) & (expected > 0.0)
        wanted = tf.where(valid, 1.05 * expected + 4.0 * tf.sqrt(expected) + 16.0, 0.0)
        batch = tf.cast(tf.minimum(wanted, float(_MAX_BATCH)), tf.int32)
        u = tf.random.stateless_uniform(tf.stack([2, batch]), seed=seed, dtype=dtype, alg="philox")
        x = lower + (upper - lower) * u[0]
        keep = u[1] * bound < self.pdf(x)
        return tf.boolean_mask(x, keep), bound

    def __repr__(self) -> str:
        params = ", ".join(f"{role}={p.name!r}" for role, p in self._params.items())
        return f"<zgrad.models.{type(self).__name__} obs={self._obs.name!r} {params}>"


# accept-reject: the envelope's grid, and the most uniform pairs one kernel call draws
_GRID_POINTS = 2001
_MAX_BATCH = 1 << 22
# a read of zgrad's generator state and its advance happen together
_state_lock = threading.Lock()


def _init_arguments(cls: type) -> list[str]:
    """Return the names of ``cls.__init__``'s arguments after ``self``, ``name`` left out."""
    names = list(inspect.signature(cls.__init__).parameters)[1:]
    return [n for n in names if n != "name"]


def _usage(cls: type) -> str:
    """Return how to call ``cls``, e.g. ``Exponential(obs, lam)``."""
    return f"{cls.__name__}({', '.join(_init_arguments(cls))})"


def _is_count(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= 0


def _numpy_generator(seed: int | None) -> np.random.Generator:
    """Return the NumPy generator of one ``sample`` call.

    With a seed: Philox seeded through ``SeedSequence(seed)`` (which scrambles the seed, so
    consecutive seeds give independent streams). Without: the words of zgrad's generator state
    seed the SeedSequence, and the generator skips one step, so the next call draws differently
    and ``z.random.set_seed`` reproduces the sequence of calls.
    """
    if seed is not None:
        return np.random.Generator(np.random.Philox(np.random.SeedSequence(int(seed))))
    generator = zrandom.generator()
    with _state_lock:
        state = generator.state.value().numpy()
        generator.skip(1)
    entropy = [int(word) for word in state.astype(np.int64).view(np.uint64)]
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(entropy)))


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
