"""The loss base: parameters, constraints, the strategy-driven derivatives, and sums of losses.

A loss is a zero-argument callable returning its value as a tensor, so every
gradient strategy can differentiate it. ``value()``, ``gradient()``,
``value_gradient()`` and ``hessian()`` read the gradient policy when they are
called (an explicit ``strategy=`` wins). The value is computed by
``z.function(wraps='loss')``; data is held in non-trainable variables so traces
refer to it instead of copying it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from zgrad import _convert, _policy
from zgrad.gradients import _api
from zgrad.gradients.result import GradientResult
from zgrad.losses import _kernel
from zgrad.typing import BridgesNumpy
from zgrad.z._function import function
from zgrad.z._signature import AnyLength
from zgrad.z._tape import tape_hessian, tape_value_gradient

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
    params, observation, uncertainty : optional, keyword only
        zfit's names for ``param``, ``observed`` and ``sigma``, accepted as aliases. Like
        zgrad's names, each takes one value or a sequence of exactly one (zfit's lists); one
        constraint constrains one Parameter: constrain several with one constraint each.

    Raises
    ------
    TypeError
        If ``param`` is not a Parameter, an argument is missing, or an argument is given
        under both its names.
    ValueError
        If ``observed`` is not finite or ``sigma`` not positive and finite, or a sequence of
        more than one Parameter, measurement or uncertainty is given.

    Examples
    --------
    >>> import zgrad
    >>> mu = zgrad.Parameter("mu", 1.0)
    >>> c = zgrad.losses.GaussianConstraint(mu, observed=0.0, sigma=2.0)
    >>> float(c.chi2())
    0.25
    >>> zfit_style = zgrad.losses.GaussianConstraint(params=[mu], observation=[0.0], uncertainty=[2.0])
    >>> float(zfit_style.chi2())
    0.25
    """

    def __init__(
        self,
        param: Any = None,
        observed: Any = None,
        sigma: Any = None,
        *,
        params: Any = None,
        observation: Any = None,
        uncertainty: Any = None,
    ) -> None:
        param = _one("param", param, "params", params)
        observed = _one("observed", observed, "observation", observation)
        sigma = _one("sigma", sigma, "uncertainty", uncertainty)
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

    def __reduce__(self) -> tuple:
        return type(self), (self.param, self.observed, self.sigma)

    def __repr__(self) -> str:
        return f"GaussianConstraint({self.param.name!r}, observed={self.observed}, sigma={self.sigma})"


def _one(name: str, value: Any, alias: str, alias_value: Any) -> Any:
    """Return the one value given as ``name`` or as zfit's ``alias``; unwrap a sequence of one."""
    if value is not None and alias_value is not None:
        raise TypeError(f"GaussianConstraint: give {name}= or zfit's {alias}=, not both.")
    value = alias_value if value is None else value
    if value is None:
        raise TypeError(f"GaussianConstraint: {name} (zfit: {alias}) is missing.")
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0):
        if len(value) != 1:
            raise ValueError(
                f"GaussianConstraint constrains one Parameter; got {len(value)} values for {name}. Build "
                "one constraint per Parameter: [GaussianConstraint(p, o, s) for p, o, s in "
                "zip(params, observation, uncertainty)] (correlated constraints are not supported)."
            )
        value = value[0]
    return value


def refuse_model_list(model: Any, loss: str, data: str) -> None:
    """Raise ``TypeError`` for zfit's ``model=[a, b], data=[x, y]``, pointing to a sum of losses."""
    if isinstance(model, (list, tuple)):
        raise TypeError(
            f"{loss} takes one model and its data; got a {type(model).__name__} of {len(model)} models. "
            f"For a simultaneous fit build one loss per model and add them: "
            f"{loss}(model_a, {data}_a) + {loss}(model_b, {data}_b)."
        )


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


def _bridges_numpy(obj: Any) -> bool:
    """Tell whether a model or loss passes values through ``z.py_function`` (False if it does not say)."""
    return isinstance(obj, BridgesNumpy) and bool(obj.uses_py_function)


class BaseLoss:
    """Base class of zgrad's losses.

    Subclasses implement ``_loss_tensor()`` (the loss value as a tensor, constraints
    excluded) and ``_own_params()`` (the Parameters it reads); everything else is here.

    Parameters
    ----------
    errordef : float
        0.5 for negative log-likelihoods, 1 for chi2-type losses.
    constraints : GaussianConstraint or sequence of them, optional
    """

    def __init__(self, errordef: float, constraints: Sequence[GaussianConstraint] | None = None) -> None:
        errordef = float(errordef)
        if not (np.isfinite(errordef) and errordef > 0):
            raise ValueError(f"errordef must be positive and finite; got {errordef}.")
        if isinstance(constraints, GaussianConstraint):  # zfit takes a single constraint too
            constraints = [constraints]
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
        if any(_bridges_numpy(loss) for loss in getattr(self, "_losses", ())):
            return True
        return _bridges_numpy(model)

    # --- value --------------------------------------------------------------------------------
    # A loss on a model may delegate its graphs to a kernel shared by every loss of its kind on
    # that model (``zgrad.losses._kernel``): it sets ``_kernel`` and implements ``_kernel_data()``
    # and, if it chunks, ``_kernel_chunk()``. Other losses trace per loss object.

    _kernel: Any = None

    def _loss_tensor(self) -> tf.Tensor:
        raise NotImplementedError

    def _kernel_data(self) -> tuple:
        raise NotImplementedError(f"{type(self).__name__} has a kernel but no _kernel_data().")

    def _kernel_chunk(self, order: int, params: tuple = ()) -> int | None:
        return None

    def _kernel_args(self, order: int, params: tuple = ()) -> tuple[tuple, int | None]:
        data = tuple(None if t is None else AnyLength(t) for t in self._kernel_data())
        return data, self._kernel_chunk(order, tuple(params))

    def _value_tensor(self) -> tf.Tensor:
        if self._kernel is not None:  # inside another loss's trace: the kernel's Python, inlined
            return self._kernel.tensor(self._kernel.events(self._kernel_data(), self._kernel_chunk(0)))
        value = self._loss_tensor()
        for c in self._constraints:
            value = value + tf.cast(self._errordef * c.chi2(), value.dtype)
        return value

    def _value_tensor_dtype(self) -> tf.DType:
        params = self.get_params(None)
        return params[0].dtype if params else tf.float64

    def __call__(self) -> tf.Tensor:
        """Return the loss value as a tensor (what gradient strategies differentiate)."""
        if self._kernel is not None:
            return self._kernel.value(*self._kernel_args(0))
        return self._traced_value()

    # --- the protocol of zgrad's strategies and minimizers --------------------------------------
    # ``identities`` (``p.ref()`` of each Parameter) only joins the graph-cache key.

    def zgrad_values(self, params: tuple, identities: tuple, points: Any) -> tf.Tensor:
        """Return the loss at each row of ``points`` (values of ``params``) in one graph call.

        Numerical strategies use it to pay the per-call cost once for all their points. The
        Parameters are set inside the graph, one point after the other, and restored at the end.
        """
        if self._kernel is not None:
            return self._kernel.values(params, identities, points, *self._kernel_args(0))
        return self._traced_values(params, identities, points)

    def zgrad_value_gradient(self, params: tuple, identities: tuple) -> tuple[tf.Tensor, tf.Tensor]:
        """Return value and gradient by automatic differentiation (what ``'autodiff'`` calls).

        Unbinned NLLs take one tape per chunk of events, so memory stays bounded by the chunk.
        """
        if self._kernel is not None:
            return self._kernel.value_gradient(params, identities, *self._kernel_args(1, params))
        return self._traced_value_gradient(params, identities)

    def zgrad_hessian(self, params: tuple, identities: tuple) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Return value, gradient and the exact Hessian (what ``'autodiff'`` calls for a Hessian).

        Unbinned NLLs of Gauss, Exponential and their Sums use closed-form derivatives
        (``zgrad.losses._jet_derivatives``); others nested tapes, per chunk of events where they chunk.
        """
        if self._kernel is not None:
            return self._kernel.value_gradient_hessian(params, identities, *self._kernel_args(2, params))
        return self._traced_hessian(params, identities)

    def zgrad_at(self, params: tuple, identities: tuple, point: Any, order: int) -> Any:
        """Set ``params`` to ``point`` and return the value and derivatives up to ``order``, in one call.

        ``order`` 0 gives the value, 1 ``(value, gradient)``, 2 ``(value, gradient, Hessian)``,
        the numbers :meth:`zgrad_value_gradient` and :meth:`zgrad_hessian` give. The Parameters
        are assigned inside the graph (no limit check) and keep ``point``'s values afterwards.
        Minimizer adapters call it for every evaluation (and for derivatives when they come
        from the ``'autodiff'`` strategy): one graph call each.
        """
        if order not in (0, 1, 2) or isinstance(order, bool):
            raise ValueError(f"order must be 0, 1 or 2; got {order!r}.")
        kernel = self._kernel
        if kernel is None:
            traced = (self._traced_value_at, self._traced_value_gradient_at, self._traced_hessian_at)[order]
            return traced(params, identities, point)
        method = (kernel.value_at, kernel.value_gradient_at, kernel.value_gradient_hessian_at)[order]
        return method(params, identities, point, *self._kernel_args(order, params))

    def zgrad_at_function(self, params: tuple, identities: tuple, order: int) -> Callable | None:
        """Return ``f(point)`` computing what :meth:`zgrad_at` computes, bound to its compiled graph.

        For a minimizer's loop: the graph is traced (or found) now, and each call of ``f`` passes
        a new float64 ``point`` straight to it, with none of the per-call argument handling.
        The policy in force now decides; None when it runs the loss eagerly, or for losses
        without a shared kernel (then use :meth:`zgrad_at`).
        """
        kernel = self._kernel
        if kernel is None or order not in (0, 1, 2) or isinstance(order, bool):
            return None
        method = (kernel.value_at, kernel.value_gradient_at, kernel.value_gradient_hessian_at)[order]
        point = tf.zeros([len(params)], tf.float64)
        prepared = method.prepare(params, identities, point, *self._kernel_args(order, params))
        if prepared is None:
            return None
        function, inputs = prepared
        position = len(params)  # flat inputs: the Parameters, then the point, then the data

        def at(point: Any) -> Any:
            call_inputs = list(inputs)
            call_inputs[position] = tf.constant(point, tf.float64)
            return function(*call_inputs)

        return at

    # --- one set of traces per loss object (losses without a kernel) ---------------------------

    @function(wraps="loss")
    def _traced_value(self) -> tf.Tensor:
        return self._value_tensor()

    @function(wraps="loss")
    def _traced_values(self, params: tuple, identities: tuple, points: Any) -> tf.Tensor:
        return _kernel.values_at_points(self._value_tensor, params, points, self._value_tensor_dtype())

    @function(wraps="gradient")
    def _traced_value_gradient(self, params: tuple, identities: tuple) -> tuple:
        return tape_value_gradient(self._value_tensor, tuple(params), self)

    @function(wraps="hessian")
    def _traced_hessian(self, params: tuple, identities: tuple) -> tuple:
        return tape_hessian(self._value_tensor, tuple(params), self)

    @function(wraps="loss")
    def _traced_value_at(self, params: tuple, identities: tuple, point: Any) -> tf.Tensor:
        _kernel.assign(params, point)
        return self._value_tensor()

    @function(wraps="gradient")
    def _traced_value_gradient_at(self, params: tuple, identities: tuple, point: Any) -> tuple:
        _kernel.assign(params, point)
        return tape_value_gradient(self._value_tensor, tuple(params), self)

    @function(wraps="hessian")
    def _traced_hessian_at(self, params: tuple, identities: tuple, point: Any) -> tuple:
        _kernel.assign(params, point)
        return tape_hessian(self._value_tensor, tuple(params), self)

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

    def __reduce__(self) -> tuple:
        # rebuilt from the summed losses, each pickled its own way
        return type(self), (list(self._losses),)

    def _own_params(self) -> list[Any]:
        return [p for loss in self._losses for p in loss.get_params(None)]

    def _loss_tensor(self) -> tf.Tensor:
        total = self._losses[0]._value_tensor()
        for loss in self._losses[1:]:
            total = total + tf.cast(loss._value_tensor(), total.dtype)
        return total
