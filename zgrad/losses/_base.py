"""The loss base: parameters, constraints, the strategy-driven derivatives, and sums of losses.

A loss is a zero-argument callable returning its value as a tensor, so every
gradient strategy can differentiate it. ``value()``, ``gradient()``,
``value_gradient()`` and ``hessian()`` read the gradient policy when they are
called (an explicit ``strategy=`` wins). The value is computed by
``z.function(wraps='loss')``; data is held in non-trainable variables so traces
refer to it instead of copying it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from zgrad import _convert, _policy
from zgrad.gradients import _api
from zgrad.gradients.result import GradientResult
from zgrad.z._function import function

__all__ = ["BaseLoss", "GaussianConstraint", "SumLoss"]


class GaussianConstraint:
    """A Gaussian constraint on a Parameter: adds ``((p - observed) / sigma)**2`` in chi2 units.

    A loss adds ``errordef * chi2()``: ``0.5 * ((p - observed) / sigma)**2`` to a negative
    log-likelihood, the full chi2 term to a chi2 loss, so one sigma of the constraint always
    moves the loss by ``errordef``.

    Parameters
    ----------
    param : Parameter
    observed : float
        The external measurement.
    sigma : float
        Its uncertainty (> 0).

    Examples
    --------
    >>> import zgrad
    >>> mu = zgrad.Parameter("mu", 1.0)
    >>> c = zgrad.losses.GaussianConstraint(mu, observed=0.0, sigma=2.0)
    >>> float(c.chi2())
    0.25
    """

    def __init__(self, param: Any, observed: float, sigma: float) -> None:
        if not isinstance(param, tf.Variable):
            raise TypeError(f"param must be a Parameter; got {param!r} ({type(param).__name__}).")
        observed, sigma = float(observed), float(sigma)
        if not np.isfinite(observed) or not (np.isfinite(sigma) and sigma > 0):
            raise ValueError(
                f"observed must be finite and sigma positive and finite; got {observed}, {sigma}."
            )
        self.param = param
        self.observed = observed
        self.sigma = sigma

    def chi2(self) -> tf.Tensor:
        """Return ``((param - observed) / sigma)**2``."""
        z = (self.param - tf.constant(self.observed, self.param.dtype)) / tf.constant(
            self.sigma, self.param.dtype
        )
        return z * z

    def __repr__(self) -> str:
        return f"GaussianConstraint({self.param.name!r}, observed={self.observed}, sigma={self.sigma})"


def check_unique_names(params: Sequence[Any], where: str) -> list[Any]:
    """Return the distinct Parameters (by identity, first-seen order); raise on two with one name."""
    out: list[Any] = []
    by_name: dict[str, Any] = {}
    for p in params:
        if any(p is q for q in out):
            continue
        other = by_name.get(p.name)
        if other is not None:
            raise ValueError(
                f"{where} holds two different Parameters named {p.name!r}; a loss identifies parameters by "
                "name, so give them distinct names or use the same Parameter object."
            )
        by_name[p.name] = p
        out.append(p)
    return out


class BaseLoss:
    """Base class of zgrad's losses.

    Subclasses implement ``_loss_tensor()`` (the loss value as a tensor, constraints
    excluded) and ``_own_params()`` (the Parameters it reads); everything else is here.

    Parameters
    ----------
    errordef : float
        0.5 for negative log-likelihoods, 1 for chi2-type losses.
    constraints : sequence of GaussianConstraint, optional
    """

    def __init__(self, errordef: float, constraints: Sequence[GaussianConstraint] | None = None) -> None:
        errordef = float(errordef)
        if not (np.isfinite(errordef) and errordef > 0):
            raise ValueError(f"errordef must be positive and finite; got {errordef}.")
        constraints = list(constraints or [])
        for c in constraints:
            if not isinstance(c, GaussianConstraint):
                raise TypeError(f"constraints must be GaussianConstraint objects; got {c!r}.")
        self._errordef = errordef
        self._constraints = constraints

    # --- parameters ---------------------------------------------------------------------------

    @property
    def errordef(self) -> float:
        """The change of the loss that defines one standard deviation (0.5 for NLL, 1 for chi2)."""
        return self._errordef

    @property
    def constraints(self) -> list[GaussianConstraint]:
        """The Gaussian constraints, as a new list."""
        return list(self._constraints)

    def _own_params(self) -> list[Any]:
        raise NotImplementedError

    def get_params(self, floating: bool | None = True) -> list[Any]:
        """Return the distinct Parameters in a fixed order (floating only by default; None: all)."""
        all_params = check_unique_names(
            [*self._own_params(), *(c.param for c in self._constraints)], type(self).__name__
        )
        if floating is None:
            return all_params
        return [p for p in all_params if getattr(p, "floating", True) == floating]

    @property
    def params(self) -> list[Any]:
        """The floating Parameters, in a fixed order (fixed ones excluded)."""
        return self.get_params(floating=True)

    @property
    def uses_py_function(self) -> bool:
        """Whether the loss passes values through ``z.py_function`` (a model's, or a summed loss's)."""
        model = getattr(self, "_model", None)
        if any(getattr(loss, "uses_py_function", False) for loss in getattr(self, "_losses", ())):
            return True
        return bool(getattr(model, "uses_py_function", False))

    # --- value --------------------------------------------------------------------------------

    def _loss_tensor(self) -> tf.Tensor:
        raise NotImplementedError

    def _value_tensor(self) -> tf.Tensor:
        value = self._loss_tensor()
        for c in self._constraints:
            value = value + tf.cast(self._errordef * c.chi2(), value.dtype)
        return value

    @function(wraps="loss")
    def _traced_value(self) -> tf.Tensor:
        return self._value_tensor()

    @function(wraps="loss")
    def zgrad_values(self, params: tuple, identities: tuple, points: tf.Tensor) -> tf.Tensor:
        """Return the loss at each row of ``points`` (values of ``params``) in one graph call.

        Numerical strategies use it to pay the per-call cost once for all their points. The
        Parameters are set inside the graph, one point after the other, and restored at the
        end. ``identities`` (``p.ref()`` of each Parameter) only joins the graph-cache key.
        """
        params = tuple(params)
        originals = [tf.identity(p) for p in params]
        dtype = self._value_tensor_dtype()
        count = tf.shape(points)[0]

        def body(i: tf.Tensor, previous: tf.Tensor, values: tf.TensorArray) -> tuple:
            # ordered after the previous point's value: one point at a time
            with tf.control_dependencies([previous]):
                assigned = [p.assign(tf.cast(points[i, j], p.dtype)) for j, p in enumerate(params)]
            with tf.control_dependencies(assigned):
                value = tf.cast(self._value_tensor(), dtype)
            return i + 1, value, values.write(i, value)

        start = (tf.constant(0), tf.zeros([], dtype), tf.TensorArray(dtype, size=count))
        _, last, values = tf.while_loop(lambda i, *_: i < count, body, start, parallel_iterations=1)
        with tf.control_dependencies([last]):
            restored = [p.assign(o) for p, o in zip(params, originals, strict=True)]
        with tf.control_dependencies(restored):
            return tf.identity(values.stack())

    def _value_tensor_dtype(self) -> tf.DType:
        params = self.get_params(None)
        return params[0].dtype if params else tf.float64

    def __call__(self) -> tf.Tensor:
        """Return the loss value as a tensor (what gradient strategies differentiate)."""
        return self._traced_value()

    def value(self) -> Any:
        """Return the loss value: a Python float eagerly, a tensor inside a trace."""
        value = self()
        return value if _policy.in_trace() else float(_convert.to_numpy(value))

    # --- derivatives --------------------------------------------------------------------------

    def derivatives(
        self, params: Sequence[Any] | None = None, *, strategy: Any = None, hessian: bool = False
    ) -> GradientResult:
        """Return the full :class:`~zgrad.gradients.GradientResult` (see :func:`zgrad.derivatives`)."""
        return _api.derivatives(self, self._select(params), strategy=strategy, hessian=hessian)

    def gradient(self, params: Sequence[Any] | None = None, *, strategy: Any = None) -> Any:
        """Return the gradient w.r.t. ``params`` (default: :attr:`params`), by the active strategy."""
        return self.derivatives(params, strategy=strategy).gradient

    def value_gradient(self, params: Sequence[Any] | None = None, *, strategy: Any = None) -> tuple[Any, Any]:
        """Return ``(value, gradient)`` w.r.t. ``params`` (default: :attr:`params`)."""
        result = self.derivatives(params, strategy=strategy)
        return result.value, result.gradient

    def hessian(self, params: Sequence[Any] | None = None, *, strategy: Any = None) -> Any:
        """Return the Hessian w.r.t. ``params`` (default: :attr:`params`), exactly symmetric."""
        return self.derivatives(params, strategy=strategy, hessian=True).hessian

    def _select(self, params: Sequence[Any] | None) -> list[Any]:
        if params is None:
            selected = self.params
            if not selected:
                raise ValueError(f"{type(self).__name__} has no floating Parameters to differentiate.")
            return selected
        if isinstance(params, tf.Variable):
            params = [params]
        return list(params)

    # --- combination --------------------------------------------------------------------------

    def __add__(self, other: Any) -> SumLoss:
        if not isinstance(other, BaseLoss):
            return NotImplemented
        return SumLoss([self, other])

    def __repr__(self) -> str:
        return f"<zgrad.losses.{type(self).__name__} params={[p.name for p in self.params]}>"


class SumLoss(BaseLoss):
    """The sum of losses with one ``errordef`` (what ``loss1 + loss2`` gives).

    Parameters
    ----------
    losses : sequence of BaseLoss
        Two or more losses with equal ``errordef``; sums are flattened.
    """

    def __init__(self, losses: Sequence[BaseLoss]) -> None:
        flat: list[BaseLoss] = []
        for loss in losses:
            if not isinstance(loss, BaseLoss):
                raise TypeError(f"SumLoss takes zgrad losses; got {loss!r} ({type(loss).__name__}).")
            flat.extend(loss._losses if isinstance(loss, SumLoss) else [loss])
        errordefs = {loss.errordef for loss in flat}
        if len(errordefs) != 1:
            raise ValueError(
                f"Cannot add losses with different errordef {sorted(errordefs)}: their sum has no single "
                "errordef. Scale one of them (e.g. a chi2 by 0.5 via SimpleLoss) first."
            )
        super().__init__(errordefs.pop())
        self._losses = flat
        self.get_params(None)  # raises now if two different Parameters share a name

    @property
    def losses(self) -> list[BaseLoss]:
        """The summed losses, as a new list."""
        return list(self._losses)

    def _own_params(self) -> list[Any]:
        return [p for loss in self._losses for p in loss.get_params(None)]

    def _loss_tensor(self) -> tf.Tensor:
        total = self._losses[0]._value_tensor()
        for loss in self._losses[1:]:
            total = total + tf.cast(loss._value_tensor(), total.dtype)
        return total
