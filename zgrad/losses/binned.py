"""Binned and least-squares losses, and a loss made from any callable."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Sequence
from numbers import Real
from typing import Any

import numpy as np
import tensorflow as tf

from zgrad.gradients._api import check_scalar_output
from zgrad.losses import _data, _kernel
from zgrad.losses._base import BaseLoss, GaussianConstraint, check_unique_names, refuse_model_list

__all__ = ["BinnedNLL", "Chi2", "SimpleLoss"]


class BinnedNLL(BaseLoss):
    """Poisson negative log-likelihood of a histogram (errordef 0.5), in the saturated form.

    The value is ``sum_i w_i [mu_i - n_i + n_i log(n_i / mu_i)]``, which is zero for a
    perfect prediction and behaves like ``chi2 / 2`` near the minimum. The expectation is
    ``mu_i = nu * P_i`` with ``P_i`` the model's probability in bin ``i`` (normalised to the
    range the edges cover) and ``nu`` the model's expected events if it is extended, else
    the total count.

    Parameters
    ----------
    model : zgrad model
    counts : 1-D array, length k
        Non-negative counts per bin.
    edges : 1-D array, length k + 1
        Increasing bin edges inside the observable's range.
    weights : 1-D array, optional
        Per-bin weights of the log-likelihood terms (errors as for weighted unbinned fits).
    constraints : sequence of GaussianConstraint, optional

    Examples
    --------
    >>> import numpy as np, zgrad
    >>> obs = zgrad.Space("x", limits=(-5.0, 5.0))
    >>> model = zgrad.models.Gauss(obs, zgrad.Parameter("mu", 0.0), zgrad.Parameter("sigma", 1.0))
    >>> loss = zgrad.losses.BinnedNLL(model, counts=[10, 30, 10], edges=[-3.0, -1.0, 1.0, 3.0])
    >>> loss.errordef
    0.5
    """

    def __init__(
        self,
        model: Any,
        counts: Any,
        edges: Any,
        weights: Any = None,
        constraints: Sequence[GaussianConstraint] | None = None,
    ) -> None:
        super().__init__(0.5, constraints)
        refuse_model_list(model, "BinnedNLL", "counts")
        counts = _data.as_1d("counts", counts)
        edges = _data.as_1d("edges", edges)
        if (counts < 0).any():
            raise ValueError(f"counts must be non-negative; got {counts[counts < 0][:3]} among them.")
        if edges.size != counts.size + 1:
            raise ValueError(
                f"edges must have one entry more than counts; got {edges.size} and {counts.size}."
            )
        if not (np.diff(edges) > 0).all():
            raise ValueError("edges must be strictly increasing.")
        _data.check_inside(edges, model.obs)
        weights = _data.check_weights(weights, counts.size)
        self._model = model
        dtype = model._dtype()
        self._counts = tf.constant(counts, dtype)
        self._edges = tf.constant(edges, dtype)
        self._w = None if weights is None else tf.constant(weights, dtype)
        self.get_params(None)
        self._init_args = (model, counts, edges, weights, self._constraints)
        # every binned loss on this model shares the kernel's traces, whatever its histogram
        self._kernel = _kernel.kernel_for(_kernel.BinnedKernel, model, self._constraints)

    def __reduce__(self) -> tuple:
        # rebuilt from the constructor's arguments (data as NumPy arrays), not from TensorFlow objects
        return type(self), self._init_args

    def _own_params(self) -> list[Any]:
        return self._model.get_params(None)

    def _kernel_data(self) -> tuple:
        return self._counts, self._edges, self._w


class Chi2(BaseLoss):
    """Least squares ``sum_i w_i ((y_i - f(x_i)) / yerr_i)**2`` (errordef 1).

    Parameters
    ----------
    model : zgrad model or callable
        A zgrad model (``f = model.pdf``, times its expected events when extended), or a
        callable ``f(x)`` returning a tensor; then ``params`` must name the Parameters it reads.
    x, y, yerr : 1-D arrays of one length
        ``yerr > 0``.
    params : sequence of Parameter, optional
        Required when ``model`` is a plain callable.
    weights : 1-D array, optional
    constraints : sequence of GaussianConstraint, optional

    Examples
    --------
    >>> import numpy as np, zgrad
    >>> a = zgrad.Parameter("a", 1.0)
    >>> x = np.array([0.0, 1.0, 2.0])
    >>> loss = zgrad.losses.Chi2(lambda x: a * x, x, 2 * x, np.ones(3), params=[a])
    >>> float(loss.value())
    5.0
    """

    def __init__(
        self,
        model: Any,
        x: Any,
        y: Any,
        yerr: Any,
        params: Sequence[Any] | None = None,
        weights: Any = None,
        constraints: Sequence[GaussianConstraint] | None = None,
    ) -> None:
        super().__init__(1.0, constraints)
        x, y, yerr = _data.as_1d("x", x), _data.as_1d("y", y), _data.as_1d("yerr", yerr)
        if not x.size == y.size == yerr.size:
            raise ValueError(f"x, y and yerr must have one length; got {x.size}, {y.size}, {yerr.size}.")
        if (yerr <= 0).any():
            raise ValueError("yerr must be positive everywhere.")
        weights = _data.check_weights(weights, x.size)
        if hasattr(model, "pdf") and hasattr(model, "get_params"):
            _data.check_inside(x, model.obs)
            self._predict: Callable | None = None  # the kernel predicts
            self._params_given = None
            dtype = model._dtype()
        elif callable(model):
            if params is None:
                raise ValueError(
                    "Chi2 with a plain callable needs params=[...] naming the Parameters it reads."
                )
            self._params_given = list(params)
            self._predict = model
            dtype = self._params_given[0].dtype if self._params_given else tf.float64
        else:
            raise TypeError(f"model must be a zgrad model or a callable of x; got {model!r}.")
        self._model = model
        self._x, self._y = tf.constant(x, dtype), tf.constant(y, dtype)
        self._yerr = tf.constant(yerr, dtype)
        self._w = None if weights is None else tf.constant(weights, dtype)
        self.get_params(None)
        self._init_args = (model, x, y, yerr, self._params_given, weights, self._constraints)
        if self._params_given is None:  # a model: every Chi2 on it shares the kernel's traces
            self._kernel = _kernel.kernel_for(_kernel.Chi2Kernel, model, self._constraints)

    def __reduce__(self) -> tuple:
        if self._params_given is not None:
            _check_portable(self._model, self._params_given, "Chi2", "model")
        return type(self), self._init_args

    def _own_params(self) -> list[Any]:
        return self._params_given if self._params_given is not None else self._model.get_params(None)

    def _kernel_data(self) -> tuple:
        return self._x, self._y, self._yerr, self._w

    def _loss_tensor(self) -> tf.Tensor:
        pred = tf.cast(self._predict(self._x), self._y.dtype)
        r = (self._y - pred) / self._yerr
        return tf.reduce_sum(r * r if self._w is None else self._w * r * r)


class SimpleLoss(BaseLoss):
    """Any zero-argument callable as a loss.

    Parameters
    ----------
    func : callable
        Returns the loss value (a scalar tensor) from the Parameters it reads. Anything else
        (None, a string, a vector) raises an error naming ``func`` when the loss is evaluated.
    params : sequence of Parameter
        The Parameters ``func`` reads.
    errordef : float
        0.5 for a negative log-likelihood, 1 for a chi2: a positive real number (a string such as
        ``"1"`` is refused with a TypeError).
    constraints : sequence of GaussianConstraint, optional

    Examples
    --------
    >>> import zgrad
    >>> x = zgrad.Parameter("x", 3.0)
    >>> loss = zgrad.losses.SimpleLoss(lambda: (x - 1.0) ** 2, [x], errordef=1.0)
    >>> float(loss.value()), loss.gradient().tolist()
    (4.0, [4.0])
    """

    def __init__(
        self,
        func: Callable[[], Any],
        params: Sequence[Any],
        errordef: float,
        constraints: Sequence[GaussianConstraint] | None = None,
    ) -> None:
        if isinstance(errordef, bool) or not isinstance(errordef, (Real, np.floating, np.integer)):
            raise TypeError(
                f"errordef must be a positive real number (0.5 for a negative log-likelihood, 1 for a "
                f"chi2); got {errordef!r} ({type(errordef).__name__})."
            )
        super().__init__(errordef, constraints)
        if not callable(func):
            raise TypeError(f"func must be a zero-argument callable; got {func!r} ({type(func).__name__}).")
        if isinstance(params, tf.Variable):
            params = [params]
        params = list(params)
        for p in params:
            if not isinstance(p, tf.Variable):
                raise TypeError(f"params must hold Parameters; got {p!r} ({type(p).__name__}).")
        self._func = func
        self._params_given = check_unique_names(params, "SimpleLoss")

    def __reduce__(self) -> tuple:
        _check_portable(self._func, self._params_given, "SimpleLoss", "func")
        return type(self), (self._func, self._params_given, self._errordef, self._constraints)

    def _own_params(self) -> list[Any]:
        return list(self._params_given)

    def _loss_tensor(self) -> tf.Tensor:
        # checked before TensorFlow converts it: None, a string or a vector get a message naming func
        return tf.convert_to_tensor(check_scalar_output(self._func(), self._func))


def _check_portable(func: Any, params: Sequence[Any], loss: str, role: str) -> None:
    """Raise ``TypeError`` if pickling or deep-copying ``func`` would fail or cut it off its Parameters.

    A plain function reaches its Parameters through a closure (which pickle cannot store) or
    module globals (which pickle does not carry: a copy of the loss would hold new Parameters
    that the function never reads). ``functools.partial`` of a module-level function, or a
    callable object holding its Parameters, carries them along.
    """
    inner = func.func if isinstance(func, functools.partial) else func
    if not isinstance(inner, types.FunctionType):
        return
    name = f"{inner.__module__}.{inner.__qualname__}"
    local = "<lambda>" in inner.__qualname__ or "<locals>" in inner.__qualname__
    remedy = (
        "define a module-level function that takes the Parameters it reads as arguments and pass "
        f"functools.partial(function, *params) as {role}"
    )
    if local:
        raise TypeError(
            f"{loss} cannot be pickled or deep-copied: its {role} {name} is a lambda or a function "
            "defined inside another function, which pickle cannot find again (and a deep copy would "
            f"share it, still reading the original Parameters); {remedy}."
        )
    if not isinstance(func, functools.partial) and params:
        raise TypeError(
            f"{loss} cannot be pickled or deep-copied: its {role} {name} is a plain function that reads "
            "its Parameters from module globals, and a copy of the loss would hold new Parameters "
            f"that the function never reads; {remedy}."
        )
