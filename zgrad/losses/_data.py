"""Validation and storage of the data a loss is built on."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from zgrad import _policy
from zgrad.space import Space


def as_1d(name: str, values: Any) -> np.ndarray:
    """Return ``values`` as a finite, non-empty 1-D float64 array, or raise saying what is wrong."""
    array = np.asarray(values, dtype=float) if not isinstance(values, np.ndarray) else values
    if array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers; got dtype {array.dtype}.")
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {array.shape}.")
    if array.size == 0:
        raise ValueError(f"{name} is empty: a loss needs at least one entry.")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(
            f"{name} holds {int(bad.sum())} non-finite values (NaN or inf), "
            f"e.g. at index {int(np.argmax(bad))}."
        )
    return array


def check_inside(data: np.ndarray, obs: Space) -> None:
    """Raise if any event lies outside the observable's range, naming how many and an example."""
    outside = ~obs.inside(data)
    if outside.any():
        first = int(np.argmax(outside))
        raise ValueError(
            f"{int(outside.sum())} of {data.size} events lie outside the range {obs.limits} of "
            f"observable {obs.name!r} (e.g. data[{first}] = {float(data[first])!r}); "
            "select the events in range first."
        )


def check_weights(weights: Any, n: int) -> np.ndarray | None:
    """Return finite 1-D weights of length ``n``, not all zero (or None), or raise saying what is wrong."""
    if weights is None:
        return None
    weights = as_1d("weights", weights)
    if weights.size != n:
        raise ValueError(f"weights has {weights.size} entries but the data has {n}; they must match.")
    if not weights.any():  # a loss of 0 for every parameter value: nothing to fit, never a silent success
        raise ValueError(
            f"weights are all zero ({n} entries): the loss would be 0 whatever the parameters; give at "
            "least one non-zero weight (negative weights are allowed)."
        )
    return weights


def store(array: np.ndarray | None, dtype: tf.DType, name: str) -> tf.Tensor | None:
    """Hold ``array`` as an eager tensor of ``dtype``, passed to traces as an argument.

    A trace that captures it (a sum of losses) takes it as a captured input, not a copy.
    """
    if array is None:
        return None
    if _policy.in_trace():
        raise RuntimeError("Create losses eagerly, not inside a traced function.")
    with tf.init_scope():
        return tf.constant(array, dtype=dtype, name=name)


def chunk_bounds(n: int) -> int | None:
    """Return the chunk size to use for ``n`` events, or None when one chunk holds everything."""
    size = _policy.get_chunksize()
    return None if size is None or size >= n else size
