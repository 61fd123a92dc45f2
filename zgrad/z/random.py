"""Graph-aware random numbers: fresh values on every call of a traced function.

NumPy random numbers drawn inside a traced function are frozen into the graph.
These functions draw from one ``tf.random.Generator`` whose state is a variable,
so a traced function gives new numbers call after call; :func:`set_seed` resets
that state in place, which makes traced and eager code reproducible alike.

Examples
--------
>>> from zgrad import z
>>> z.random.set_seed(42)
>>> a = z.random.uniform((3,)).numpy()
>>> z.random.set_seed(42)
>>> bool((a == z.random.uniform((3,)).numpy()).all())
True
"""

from __future__ import annotations

import threading
from numbers import Integral
from typing import Any

import tensorflow as tf

__all__ = ["generator", "normal", "set_seed", "uniform"]

_lock = threading.Lock()
_generator: tf.random.Generator | None = None


def generator() -> tf.random.Generator:
    """Return zgrad's generator, creating it (non-deterministically seeded) on first use.

    Returns
    -------
    tf.random.Generator
        The one generator behind :func:`uniform` and :func:`normal`; its state is a variable.

    Examples
    --------
    >>> from zgrad import z
    >>> z.random.generator() is z.random.generator()
    True
    """
    global _generator
    with _lock:
        if _generator is None:
            with tf.init_scope():  # its state variable must live outside any trace
                _generator = tf.random.Generator.from_non_deterministic_state()
        return _generator


def set_seed(seed: int) -> None:
    """Reset the generator's state from ``seed`` (in place: traced functions see it too).

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Raises
    ------
    ValueError
        If ``seed`` is not a non-negative int (bools and floats included).

    Examples
    --------
    >>> from zgrad import z
    >>> z.random.set_seed(7)
    >>> first = z.random.normal((2,)).numpy()
    >>> z.random.set_seed(7)
    >>> bool((first == z.random.normal((2,)).numpy()).all())
    True
    """
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r} ({type(seed).__name__}).")
    global _generator
    with _lock:
        if _generator is None:
            with tf.init_scope():
                _generator = tf.random.Generator.from_seed(int(seed))
            return
    _generator.reset_from_seed(int(seed))


def uniform(shape: Any, minval: Any = 0.0, maxval: Any = 1.0, dtype: tf.DType = tf.float64) -> tf.Tensor:
    """Draw uniform random numbers in ``[minval, maxval)``.

    Parameters
    ----------
    shape : int or sequence of int or 1-D int tensor
    minval, maxval : float or tensor
    dtype : tf.DType, default tf.float64

    Examples
    --------
    >>> from zgrad import z
    >>> z.random.uniform((2,), minval=5.0, maxval=6.0).shape
    TensorShape([2])
    """
    return generator().uniform(_shape(shape), minval=minval, maxval=maxval, dtype=dtype)


def normal(shape: Any, mean: Any = 0.0, stddev: Any = 1.0, dtype: tf.DType = tf.float64) -> tf.Tensor:
    """Draw normally distributed random numbers.

    Parameters
    ----------
    shape : int or sequence of int or 1-D int tensor
    mean, stddev : float or tensor
    dtype : tf.DType, default tf.float64

    Examples
    --------
    >>> from zgrad import z
    >>> z.random.normal((2, 2)).dtype
    tf.float64
    """
    return generator().normal(_shape(shape), mean=mean, stddev=stddev, dtype=dtype)


def _shape(shape: Any) -> Any:
    if isinstance(shape, Integral) and not isinstance(shape, bool):
        return (int(shape),)
    return shape
