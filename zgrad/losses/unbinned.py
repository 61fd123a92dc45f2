"""Unbinned negative log-likelihoods, evaluated in chunks of ``zgrad.run.chunksize`` events.

With chunking on, the value is accumulated chunk by chunk in a ``tf.while_loop``, and
so are the automatic-differentiation gradient (one tape per chunk) and Hessian (nested
tapes per chunk), so memory is bounded by the chunk size instead of the data size. The
tapes are chunked even when chunking is off (at most ``GRADIENT_CHUNK`` and
``HESSIAN_CHUNK`` events): that changes only the order of a sum, and keeps the memory
of a fit with exact Hessians close to that of a value call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from zgrad.gradients.autodiff import checked_gradients, tape_hessian
from zgrad.losses import _data, _jets
from zgrad.losses._base import BaseLoss, GaussianConstraint
from zgrad.z._function import function

__all__ = ["ExtendedUnbinnedNLL", "UnbinnedNLL"]

#: Largest number of events one Hessian chunk holds: bounds the memory of nested tapes
#: (about 5 x 8 bytes x events x parameters) whatever ``zgrad.run.chunksize`` says.
HESSIAN_CHUNK = 2**16
#: The same bound for the tape of value and gradient (one backward pass keeps fewer intermediates).
GRADIENT_CHUNK = 2**18


def _check_model(model: Any, extended: bool) -> None:
    for attr in ("log_unnormalized_pdf", "log_normalization", "obs", "get_params"):
        if not hasattr(model, attr):
            raise TypeError(f"model must be a zgrad model (it lacks {attr!r}); got {model!r}.")
    if extended and not getattr(model, "is_extended", False):
        raise ValueError(
            f"ExtendedUnbinnedNLL needs an extended model (with yields, e.g. models.Sum(..., yields=[...])); "
            f"{model!r} is not extended. Use UnbinnedNLL for a shape-only fit."
        )


class UnbinnedNLL(BaseLoss):
    """Negative log-likelihood ``-sum_i w_i log pdf(x_i)`` of unbinned data (errordef 0.5).

    Parameters
    ----------
    model : zgrad model
    data : 1-D array
        Events; all must lie inside the model's observable range.
    weights : 1-D array, optional
        Per-event weights. The Hesse errors of a weighted fit are those of the weighted
        likelihood, without a sum-of-weights-squared correction: they are correct only for
        unit weights; correct them yourself (e.g. with the asymptotic formula) when the
        weights are not 1.
    constraints : sequence of GaussianConstraint, optional

    Examples
    --------
    >>> import numpy as np, zgrad
    >>> obs = zgrad.Space("x", limits=(-5.0, 5.0))
    >>> mu, sigma = zgrad.Parameter("mu", 0.0), zgrad.Parameter("sigma", 1.0, lower=0.1)
    >>> loss = zgrad.losses.UnbinnedNLL(zgrad.models.Gauss(obs, mu, sigma), np.array([-0.5, 0.1, 0.7]))
    >>> [p.name for p in loss.params], loss.errordef
    (['mu', 'sigma'], 0.5)
    """

    _extended = False

    def __init__(
        self,
        model: Any,
        data: Any,
        weights: Any = None,
        constraints: Sequence[GaussianConstraint] | None = None,
    ) -> None:
        super().__init__(0.5, constraints)
        _check_model(model, self._extended)
        values = _data.as_1d("data", getattr(data, "values", data))
        _data.check_inside(values, model.obs)
        weights = _data.check_weights(weights, values.size)
        self._model = model
        self._n = values.size
        dtype = model._dtype()
        self._x = _data.store(values, dtype, "data")
        self._w = _data.store(weights, dtype, "weights")
        self._sum_w = float(values.size if weights is None else weights.sum())
        self.get_params(None)  # two Parameters with one name fail here, at construction

    @property
    def model(self) -> Any:
        """The model."""
        return self._model

    @property
    def n_events(self) -> int:
        """Number of events."""
        return self._n

    def _own_params(self) -> list[Any]:
        return self._model.get_params(None)

    def _chunk_term(self, x: tf.Tensor, w: tf.Tensor | None) -> tf.Tensor:
        # -sum w log pdf = -sum w log(shape) + sum_w log(normalisation): the normalisation is
        # subtracted once in the global term, not once per event
        log_shape = self._model.log_unnormalized_pdf(x)
        return -tf.reduce_sum(log_shape if w is None else w * log_shape)

    def _global_term(self, dtype: tf.DType) -> tf.Tensor:
        return tf.constant(self._sum_w, dtype) * tf.cast(self._model.log_normalization(), dtype)

    def _loss_tensor(self) -> tf.Tensor:
        return self._over_chunks(lambda x, w: self._chunk_term(x, w)) + self._global_term(self._x.dtype)

    def _over_chunks(self, term: Any, init: Any = None, *, limit: int | None = None) -> Any:
        """Sum ``term(x, w)`` over chunks of the data (one call when chunking is off).

        ``limit`` caps the chunk size below ``zgrad.run.chunksize`` (used by the Hessian).
        """
        size = _data.chunk_bounds(self._n)
        if limit is not None and self._n > limit:
            size = limit if size is None else min(size, limit)
        if size is None:
            return term(
                tf.convert_to_tensor(self._x), None if self._w is None else tf.convert_to_tensor(self._w)
            )
        n, n_chunks = self._n, -(-self._n // size)

        def body(i: tf.Tensor, acc: Any) -> tuple:
            start = i * size
            length = tf.minimum(size, n - start)
            x = tf.slice(self._x, [start], [length])
            w = None if self._w is None else tf.slice(self._w, [start], [length])
            return i + 1, tf.nest.map_structure(tf.add, acc, term(x, w))

        start_acc = init if init is not None else tf.zeros([], self._x.dtype)
        _, total = tf.while_loop(lambda i, _: i < n_chunks, body, (tf.constant(0), start_acc))
        return total

    @function(wraps="gradient")
    def zgrad_value_gradient(self, params: tuple, identities: tuple) -> tuple[tf.Tensor, tf.Tensor]:
        """Value and gradient by autodiff, one tape per chunk of at most ``GRADIENT_CHUNK`` events.

        Memory is bounded by the chunk size (``zgrad.run.chunksize``, or ``GRADIENT_CHUNK``
        when chunking is off). The ``'autodiff'`` strategy uses this hook when a loss offers
        it. (The closed-form sums of :meth:`zgrad_hessian` were measured slower than one tape
        for a gradient alone: 14.7 against 11.8 ms at 10^6 events.) ``identities``
        (``p.ref()`` of each Parameter) only joins the graph-cache key: the model reads its
        Parameters directly, so a trace is valid only for the Parameters it was made with.
        """
        params = tuple(params)

        def term(x: tf.Tensor, w: tf.Tensor | None) -> tuple:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(params)
                value = self._chunk_term(x, w)
            return value, checked_gradients(tape.gradient(value, list(params)), params, self)

        dtype = self._x.dtype
        init = (tf.zeros([], dtype), tf.zeros([len(params)], params[0].dtype))
        chunk_value, chunk_grad = self._over_chunks(term, init, limit=GRADIENT_CHUNK)
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(params)
            rest = self._value_tensor_without_data()
        rest_grad = tape.gradient(rest, list(params), unconnected_gradients=tf.UnconnectedGradients.ZERO)
        rest_grad = tf.stack([tf.cast(tf.reshape(g, []), chunk_grad.dtype) for g in rest_grad])
        return chunk_value + rest, chunk_grad + rest_grad

    @function(wraps="hessian")
    def zgrad_hessian(self, params: tuple, identities: tuple) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Value, gradient and Hessian, exact: in closed form or by nested tapes per chunk.

        In closed form where every component of the model has a closed-form log-shape jet
        (Gauss, Exponential and Sums of them; ``zgrad.losses._jets``, chunks of
        ``GRADIENT_CHUNK``); otherwise nested tapes per chunk of at most ``HESSIAN_CHUNK``
        events. Nested tapes keep every intermediate of the forward and first backward pass
        alive; over all events at once that costs several times the data's memory. Chunks
        bound it, even when ``zgrad.run.chunksize`` is None. ``identities`` only joins the
        graph-cache key.
        """
        params = tuple(params)
        if _jets.supported(self._model, params):
            # the analytic models' closed-form derivatives: no tape over the data
            return _jets.value_gradient_hessian(self, params, GRADIENT_CHUNK)
        n = len(params)
        dtype = params[0].dtype

        def term(x: tf.Tensor, w: tf.Tensor | None) -> tuple:
            return tape_hessian(lambda: self._chunk_term(x, w), params, self)

        init = (tf.zeros([], self._x.dtype), tf.zeros([n], dtype), tf.zeros([n, n], dtype))
        value, grad, hess = self._over_chunks(term, init, limit=HESSIAN_CHUNK)
        rest = tape_hessian(self._value_tensor_without_data, params, self, unconnected_is_zero=True)
        return value + rest[0], grad + tf.cast(rest[1], grad.dtype), hess + tf.cast(rest[2], hess.dtype)

    def _value_tensor_without_data(self) -> tf.Tensor:
        value = self._global_term(self._x.dtype)
        for c in self._constraints:
            value = value + tf.cast(self._errordef * c.chi2(), value.dtype)
        return value


class ExtendedUnbinnedNLL(UnbinnedNLL):
    """Extended NLL ``nu - sum_w log nu - sum_i w_i log pdf(x_i)``, with ``nu`` the model's expected events.

    Parameters are those of :class:`UnbinnedNLL`; the model must be extended
    (e.g. ``zgrad.models.Sum([...], yields=[...])``).
    """

    _extended = True

    def _global_term(self, dtype: tf.DType) -> tf.Tensor:
        nu = tf.cast(self._model.expected_events(), dtype)
        # sum_w log(norm) from the shape, sum_w log(nu) from the extended term: for a Sum with
        # yields the normalisation is nu and the two cancel exactly
        log_norm = tf.cast(self._model.log_normalization(), dtype)
        return nu + tf.constant(self._sum_w, dtype) * (log_norm - tf.math.log(nu))
