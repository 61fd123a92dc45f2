"""Flattening call arguments into a hashable signature plus the tensors a trace takes as inputs.

The signature is the part of a graph-cache key that comes from the arguments:
tensors, NumPy arrays and scalars, and variables (Parameters) enter by dtype and
shape; every other leaf (Python numbers, strings, None, arbitrary hashable
objects) enters by value and is frozen into the trace.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

_TENSOR, _VARIABLE, _STATIC = "tensor", "variable", "static"


class Flat(NamedTuple):
    """Arguments taken apart: ``signature`` (hashable), ``dynamic`` (trace inputs), ``static`` leaves."""

    signature: Hashable
    dynamic: list[Any]
    static: list[Any]


def flatten(args: tuple, kwargs: dict) -> Flat:
    """Split ``(args, kwargs)`` into a hashable signature, dynamic inputs and static leaves."""
    dynamic: list[Any] = []
    static: list[Any] = []
    signature = (_walk(args, dynamic, static), _walk(kwargs, dynamic, static))
    return Flat(signature, dynamic, static)


def _walk(value: Any, dynamic: list, static: list) -> Hashable:
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
        return (type(value), tuple(_walk(v, dynamic, static) for v in value))
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_walk(v, dynamic, static) for v in value))
    if isinstance(value, Mapping):
        keys = tuple(value)
        children = tuple(_walk(value[k], dynamic, static) for k in keys)
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
    if tag in (_TENSOR, _VARIABLE):
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
