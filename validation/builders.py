"""Builders shared by the case tables: turn Parameters into the guarded TensorFlow function.

Every builder returns NaN when a Parameter lies outside its declared limits, so a strategy
that steps over a limit shows up as a failure instead of passing by luck.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from validation.spec import ParamSpec

__all__ = ["guarded", "make"]


def guarded(value: tf.Tensor, params: tuple, specs: tuple[ParamSpec, ...]) -> tf.Tensor:
    """Return ``value``, or NaN where a Parameter lies outside the limits of its spec."""
    # The limits come from the specs (Python floats of this closure), never from the Parameters'
    # attributes inside a trace.
    outside = tf.constant(False)
    for p, spec in zip(params, specs, strict=True):
        if spec.lower is not None:
            outside = tf.logical_or(outside, p < spec.lower)
        if spec.upper is not None:
            outside = tf.logical_or(outside, p > spec.upper)
    return tf.where(outside, tf.constant(math.nan, value.dtype), value)


def make(specs: tuple[ParamSpec, ...], body: Callable[..., tf.Tensor]) -> Callable:
    """Return a builder: ``build(params, data)`` gives ``func()`` = guarded ``body(*params, **data)``."""

    def build(params: tuple, data: Mapping[str, Any]) -> Callable[[], tf.Tensor]:
        tensors = {k: tf.constant(v) for k, v in data.items()}

        def func() -> tf.Tensor:
            return guarded(body(*params, **tensors), params, specs)

        return func

    return build
