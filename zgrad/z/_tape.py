"""Gradients and Hessians by ``tf.GradientTape``: the helpers the strategies and the losses share.

They belong to the graph layer, below both: the ``'autodiff'`` strategy
(:mod:`zgrad.gradients.autodiff`) and the losses' traced kernels (:mod:`zgrad.losses._kernel`)
call them inside their own ``z.function`` traces, so no loss imports a strategy's module.
Every helper raises :class:`~zgrad.errors.GradientError` naming each parameter whose
gradient is None, never returning a silent zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from zgrad.errors import GradientError

__all__ = ["checked_gradients", "tape_hessian", "tape_value_gradient"]


def _param_name(param: tf.Variable) -> str:
    return getattr(param, "name", repr(param))


def checked_gradients(grads: list, params: tuple, func: Callable) -> tf.Tensor:
    """Stack a tape's per-parameter gradients densely; raise naming every parameter whose gradient is None."""
    missing = [_param_name(p) for p, g in zip(params, grads, strict=True) if g is None]
    if missing:
        raise GradientError(
            f"The gradient of {getattr(func, '__qualname__', func)!r} w.r.t. {missing} is None: the function "
            "does not depend on these parameters, or only through an operation without a gradient "
            "(e.g. tf.numpy_function or a cast to an integer). Remove them from params, or bridge NumPy code "
            "with z.py_function, which registers a gradient."
        )
    dense = [tf.reshape(tf.convert_to_tensor(g), []) for g in grads]
    dtype = dense[0].dtype
    return tf.stack([tf.cast(g, dtype) for g in dense])


def tape_value_gradient(fn: Callable[[], tf.Tensor], params: tuple, owner: Any) -> tuple:
    """Return ``fn()`` and its gradient w.r.t. ``params`` by one tape; ``owner`` names it in errors."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(params)
        value = fn()
    return value, checked_gradients(tape.gradient(value, list(params)), params, owner)


def tape_hessian(
    fn: Callable[[], Any], params: tuple, owner: Any, *, unconnected_is_zero: bool = False
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Return value, gradient and Hessian of ``fn()`` w.r.t. ``params`` with nested tapes.

    ``owner`` names the function in errors. With ``unconnected_is_zero`` a parameter that
    ``fn`` does not depend on gets zeros (for a part of a loss, e.g. its constraint terms);
    otherwise it raises :class:`~zgrad.errors.GradientError`.
    """
    with tf.GradientTape(persistent=True, watch_accessed_variables=False) as outer:
        outer.watch(params)
        with tf.GradientTape(watch_accessed_variables=False) as inner:
            inner.watch(params)
            value = fn()
        if unconnected_is_zero:
            grads = inner.gradient(value, list(params), unconnected_gradients=tf.UnconnectedGradients.ZERO)
        else:
            grads = inner.gradient(value, list(params))
        grad = checked_gradients(grads, params, owner)
    # The Jacobian of the gradient in a while loop (pfor off): the second backward pass is traced
    # once instead of once per row, which cut the first Hessian of the reference fit from ~1.7 s
    # to ~0.7 s, for ~40 % more run time per Hessian; pfor itself cannot pass through host
    # callbacks such as z.py_function. An unconnected entry means the gradient component does not
    # depend on that parameter (the first derivative exists, checked above): a true zero.
    columns = outer.jacobian(
        grad, list(params), unconnected_gradients=tf.UnconnectedGradients.ZERO, experimental_use_pfor=False
    )
    del outer
    hessian = tf.stack([tf.cast(tf.reshape(c, [-1]), grad.dtype) for c in columns], axis=1)
    return value, grad, hessian
