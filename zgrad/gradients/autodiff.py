"""The ``'autodiff'`` strategy: TensorFlow's ``GradientTape``, exact to floating-point rounding.

The gradient and the Hessian run through ``z.function(wraps='gradient')`` and
``z.function(wraps='hessian')``, so the graph policy decides whether they are
traced. A parameter the function does not depend on (the tape returns None) is
an error naming that parameter, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from zgrad import _convert, _policy
from zgrad.gradients.result import GradientResult, symmetrize
from zgrad.typing import ExactHessian, FusedValueGradient
from zgrad.z._function import function
from zgrad.z._tape import tape_hessian, tape_value_gradient

# tape_hessian is re-exported: tests and older callers import it from here
__all__ = ["AutodiffStrategy", "tape_hessian"]


class AutodiffStrategy:
    """Differentiate with TensorFlow's ``GradientTape``; the Hessian with nested tapes.

    Results are exact up to floating-point rounding, so ``error`` is None. One
    evaluation of the function (forward and backward pass) is counted per call.

    Examples
    --------
    >>> import zgrad
    >>> x = zgrad.Parameter("x", 3.0)
    >>> r = zgrad.gradients.get("autodiff").value_gradient(lambda: x**3, [x])
    >>> float(r.value), r.gradient.tolist()
    (27.0, [27.0])
    """

    name = "autodiff"
    is_autograd = True
    provides_gradient = True

    def value_gradient(self, func: Callable[[], Any], params: Sequence[tf.Variable]) -> GradientResult:
        """Return value and gradient of ``func`` w.r.t. ``params`` as a :class:`GradientResult`."""
        params = tuple(params)
        # A loss over large data may offer a memory-bounded evaluation (one tape per chunk of data).
        if isinstance(func, FusedValueGradient):
            value, grad = func.zgrad_value_gradient(params, _identities(params))
        else:
            value, grad = _value_gradient(func, params, _identities(params))
        return self._result(value, grad, None, params)

    def hessian(self, func: Callable[[], Any], params: Sequence[tf.Variable]) -> GradientResult:
        """Return value, gradient and the exactly symmetric Hessian of ``func`` w.r.t. ``params``."""
        params = tuple(params)
        # A loss over large data may offer a memory-bounded Hessian (nested tapes per chunk of data).
        if isinstance(func, ExactHessian):
            value, grad, hess = func.zgrad_hessian(params, _identities(params))
        else:
            value, grad, hess = _value_gradient_hessian(func, params, _identities(params))
        return self._result(value, grad, hess, params)

    def _result(self, value: Any, grad: Any, hess: Any, params: tuple) -> GradientResult:
        if not _policy.in_trace():
            value, grad, hess = _convert.to_numpy((value, grad, hess))
        return GradientResult(
            value=value,
            gradient=grad,
            hessian=None if hess is None else symmetrize(hess),
            n_evals=1,
            strategy=self.name,
            params=tuple(p.name for p in params),
        )

    def __repr__(self) -> str:
        return "<zgrad strategy 'autodiff'>"


def _identities(params: tuple) -> tuple:
    # The graph cache keys variables by dtype and shape only, but ``func`` reads the Parameters through
    # its closure, so a trace is valid only for the very Parameters (and order) it was traced with:
    # their identities join the key as static values, or gradient(f, [y, x]) would reuse the trace
    # of gradient(f, [x, y]) and silently return wrong numbers.
    return tuple(p.ref() for p in params)


@function(wraps="gradient")
def _value_gradient(func: Callable[[], Any], params: tuple, identities: tuple) -> tuple[tf.Tensor, tf.Tensor]:
    return tape_value_gradient(func, params, func)


@function(wraps="hessian")
def _value_gradient_hessian(
    func: Callable[[], Any], params: tuple, identities: tuple
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    return tape_hessian(func, params, func)
