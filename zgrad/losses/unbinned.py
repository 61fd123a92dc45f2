"""Unbinned negative log-likelihoods, evaluated in chunks of ``zgrad.run.chunksize`` events.

Every loss of one kind on one model shares one set of traces (``zgrad.losses._kernel``):
the events and weights are arguments of unknown length, so a new loss with new data of
any length (a toy, a bootstrap sample) reuses the value, gradient and Hessian graphs.

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

from zgrad.losses import _data, _jet_derivatives, _kernel
from zgrad.losses._base import BaseLoss, GaussianConstraint, refuse_model_list

__all__ = ["ExtendedUnbinnedNLL", "UnbinnedNLL"]

#: Largest number of events one Hessian chunk holds: bounds the memory of nested tapes
#: (about 5 x 8 bytes x events x parameters) whatever ``zgrad.run.chunksize`` says.
HESSIAN_CHUNK = 2**16
#: The same bound for the tape of value and gradient (one backward pass keeps fewer intermediates).
GRADIENT_CHUNK = 2**18


def _check_model(model: Any, extended: bool) -> None:
    refuse_model_list(model, "ExtendedUnbinnedNLL" if extended else "UnbinnedNLL", "data")
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
        self.get_params(None)  # two Parameters with one name fail here, at construction
        # every loss of this kind on this model shares the kernel's traces, whatever its data
        self._kernel = _kernel.kernel_for(
            _kernel.UnbinnedKernel, model, self._constraints, extended=self._extended
        )

    def __reduce__(self) -> tuple:
        # rebuilt from the model, the events and weights as NumPy arrays and the constraints
        weights = None if self._w is None else self._w.numpy()
        return (type(self), (self._model, self._x.numpy(), weights, self._constraints))

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

    # --- the model's shared kernel, called with this loss's events ---------------------------

    def _kernel_data(self) -> tuple:
        return self._x, self._w

    def _kernel_chunk(self, order: int, params: tuple = ()) -> int | None:
        """Events per chunk: ``zgrad.run.chunksize``, capped for tapes; None for one chunk.

        Gradient tapes take at most ``GRADIENT_CHUNK`` events at once, closed-form Hessians
        too, nested-tape Hessians ``HESSIAN_CHUNK``: that changes only the order of a sum and
        bounds the memory of a fit with exact Hessians near that of a value call.
        """
        limit = None
        if order == 1 or (order == 2 and _jet_derivatives.supported(self._model, params)):
            limit = GRADIENT_CHUNK
        elif order == 2:
            limit = HESSIAN_CHUNK
        size = _data.chunk_bounds(self._n)
        if limit is not None and self._n > limit:
            size = limit if size is None else min(size, limit)
        return size


class ExtendedUnbinnedNLL(UnbinnedNLL):
    """Extended NLL ``nu - sum_w log nu - sum_i w_i log pdf(x_i)``, with ``nu`` the model's expected events.

    Parameters are those of :class:`UnbinnedNLL`; the model must be extended
    (e.g. ``zgrad.models.Sum([...], yields=[...])``).
    """

    _extended = True
