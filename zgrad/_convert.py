"""Turning tensors and nested structures into NumPy (ground layer: uses TensorFlow only once imported)."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np


def _is_namedtuple(value: Any) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def to_numpy(value: Any) -> Any:
    """Convert tensors and variables in ``value`` to NumPy, keeping lists, tuples, namedtuples and dicts.

    NumPy arrays, plain Python values and unknown objects pass through unchanged.

    Raises
    ------
    RuntimeError
        If a symbolic tensor is met (the caller runs inside a trace: there is no value yet).
    """
    tf = sys.modules.get("tensorflow")
    return _convert(value, tf)


def _convert(value: Any, tf: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic, int, float, complex, str, bytes, bool)) or value is None:
        return value
    if tf is not None and isinstance(value, (tf.Tensor, tf.Variable)):
        return _tensor_to_numpy(value, tf)
    if _is_namedtuple(value):
        return type(value)(*(_convert(v, tf) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(v, tf) for v in value)
    if isinstance(value, Mapping):
        converted = {k: _convert(v, tf) for k, v in value.items()}
        return converted if type(value) is dict else _rebuild_mapping(value, converted)
    return value


def _rebuild_mapping(original: Mapping, converted: dict) -> Any:
    if isinstance(original, defaultdict):  # its constructor takes the default factory first
        return type(original)(original.default_factory, converted)
    try:
        return type(original)(converted)
    except TypeError:  # a mapping type that cannot be built from a dict: give a plain dict
        return converted


def _tensor_to_numpy(value: Any, tf: Any) -> Any:
    if isinstance(value, tf.Variable):
        if tf.inside_function():
            raise RuntimeError(_IN_TRACE)
        return value.numpy()
    if not hasattr(value, "numpy") or tf.inside_function():
        raise RuntimeError(_IN_TRACE)
    return value.numpy()


_IN_TRACE = (
    "zgrad.run(...) was called inside a trace, where tensors are symbolic and have no value yet. "
    "Return the tensor from the traced function and call zgrad.run on the result."
)
