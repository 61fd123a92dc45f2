"""Flattening call arguments into a hashable signature plus the tensors a trace takes as inputs.

The signature is the part of a graph-cache key that comes from the arguments:
tensors, NumPy arrays and scalars, and variables (Parameters) enter by dtype and
shape; every other leaf (Python numbers, strings, None, arbitrary hashable
objects) enters by value and is frozen into the trace. A tensor wrapped in
:class:`AnyLength` enters by dtype and the shape after its first axis: its length
is left unknown, so one trace serves data sets of every length.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

_TENSOR, _VARIABLE, _STATIC, _ANY_LENGTH = "tensor", "variable", "static", "any_length"


class AnyLength:
    """A tensor argument whose first axis may have any length without a new trace.

    Pass data as ``f(AnyLength(x))``: the trace sees a tensor of shape ``[None, ...]``
    and the function receives the tensor itself (also when it runs eagerly: a direct
    argument, or an entry of a plain tuple argument).

    Parameters
    ----------
    tensor : tensor or array
        At least one-dimensional.
    """

    __slots__ = ("tensor",)

    def __init__(self, tensor: Any) -> None:
        tensor = tf.convert_to_tensor(tensor)
        if tensor.shape.rank is None or tensor.shape.rank < 1:
            raise ValueError(f"AnyLength needs a tensor with at least one axis; got shape {tensor.shape}.")
        self.tensor = tensor

    def __repr__(self) -> str:
        return f"AnyLength({self.tensor.dtype.name}, shape={self.tensor.shape.as_list()})"


class Flat(NamedTuple):
    """Arguments taken apart: ``signature`` (hashable), ``dynamic`` (trace inputs), ``static`` leaves.

    ``relaxed`` holds the positions in ``dynamic`` of the :class:`AnyLength` tensors.
    """

    signature: Hashable
    dynamic: list[Any]
    static: list[Any]
    relaxed: tuple[int, ...] = ()


def flatten(args: tuple, kwargs: dict) -> Flat:
    """Split ``(args, kwargs)`` into a hashable signature, dynamic inputs and static leaves."""
    dynamic: list[Any] = []
    static: list[Any] = []
    relaxed: list[int] = []
    signature = (_walk(args, dynamic, static, relaxed), _walk(kwargs, dynamic, static, relaxed))
    return Flat(signature, dynamic, static, tuple(relaxed))


def unwrap(args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Replace :class:`AnyLength` arguments by their tensors (for an eager call), also inside tuples."""
    return tuple(_unwrap(a) for a in args), {k: _unwrap(v) for k, v in kwargs.items()}


def _unwrap(value: Any) -> Any:
    if isinstance(value, AnyLength):
        return value.tensor
    if type(value) is tuple:
        return tuple(_unwrap(v) for v in value)
    return value


def specs(flat: Flat) -> list[Any]:
    """Return the trace inputs with each :class:`AnyLength` tensor replaced by a spec of unknown length."""
    out = list(flat.dynamic)
    for i in flat.relaxed:
        shape = out[i].shape.as_list()
        out[i] = tf.TensorSpec([None, *shape[1:]], out[i].dtype)
    return out


def _walk(value: Any, dynamic: list, static: list, relaxed: list) -> Hashable:
    if isinstance(value, AnyLength):
        relaxed.append(len(dynamic))
        dynamic.append(value.tensor)
        return (_ANY_LENGTH, value.tensor.dtype.name, tuple(value.tensor.shape.as_list()[1:]))
    if isinstance(value, tf.Variable):
        # tf.function traces f(p, p) apart from f(p, q) (the variables alias): so must the key,
        # or one key would hide two traces
        alias = next((i for i, seen in enumerate(dynamic) if seen is value), None)
        dynamic.append(value)
        return (_VARIABLE, value.dtype.name, tuple(value.shape.as_list()), alias)
    if isinstance(value, tf.Tensor):
        dynamic.append(value)
        return (_TENSOR, value.dtype.name, tuple(value.shape.as_list()))
    if isinstance(value, (np.ndarray, np.generic)) and value.dtype != object:
        tensor = tf.convert_to_tensor(value)
        dynamic.append(tensor)
        return (_TENSOR, tensor.dtype.name, tuple(tensor.shape.as_list()))
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        return (type(value), tuple(_walk(v, dynamic, static, relaxed) for v in value))
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_walk(v, dynamic, static, relaxed) for v in value))
    if isinstance(value, Mapping):
        keys = tuple(value)
        children = tuple(_walk(value[k], dynamic, static, relaxed) for k in keys)
        # a defaultdict can only be rebuilt with its factory, which then belongs to the key
        factory = _hashable(value.default_factory) if isinstance(value, defaultdict) else None
        return (type(value), keys, children, factory)
    static.append(_hashable(value))
    if type(value) is float:
        # 0.0 == -0.0 and NaN != NaN: keying the bits keeps signed zeros apart and lets NaN hit its trace
        return (_STATIC, float, value.hex())
    # the type keeps 1, 1.0 and True apart (they are equal and hash alike)
    return (_STATIC, type(value), value)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        raise TypeError(
            f"z.function got an argument of type {type(value).__name__} that is neither a tensor, a "
            "NumPy array, a list/tuple/dict of those, nor hashable; non-tensor arguments are part of the "
            "graph-cache key by value, so they must be hashable."
        ) from None
    return value


def unflatten(signature: Hashable, dynamic: list[Any], static: list[Any]) -> tuple[tuple, dict]:
    """Rebuild ``(args, kwargs)`` from a signature and its leaves (the inverse of :func:`flatten`)."""
    dyn, stat = iter(dynamic), iter(static)
    args_sig, kwargs_sig = signature
    return _build(args_sig, dyn, stat), _build(kwargs_sig, dyn, stat)


def _build(sig: Any, dyn: Any, stat: Any) -> Any:
    tag = sig[0]
    if tag in (_TENSOR, _VARIABLE, _ANY_LENGTH):
        return next(dyn)
    if tag == _STATIC:
        return next(stat)
    if isinstance(tag, type) and issubclass(tag, Mapping):
        _, keys, children, factory = sig
        rebuilt = dict(zip(keys, [_build(c, dyn, stat) for c in children], strict=True))
        if issubclass(tag, defaultdict):
            return tag(factory, rebuilt)
        return rebuilt if tag is dict else tag(rebuilt)
    children = [_build(c, dyn, stat) for c in sig[1]]
    if issubclass(tag, tuple) and hasattr(tag, "_fields"):
        return tag(*children)
    return tag(children)
