"""Observables: a named axis with a finite range."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np


class Space:
    """A named observable with limits ``(lower, upper)``.

    Parameters
    ----------
    name : str
        Name of the observable, e.g. ``'x'``.
    limits : tuple of two float, or float
        ``(lower, upper)`` with ``lower < upper``; both finite. When ``upper`` is given too,
        the lower limit alone: ``Space('x', -5.0, 5.0)`` (zfit's spelling) is
        ``Space('x', limits=(-5.0, 5.0))``.
    upper : float, optional
        The upper limit, given only together with a lower limit as ``limits``.

    Raises
    ------
    TypeError
        If ``name`` is not a non-empty string or the limits are not two real numbers
        (a pair, or a lower and an upper limit).
    ValueError
        If the limits are not finite or not increasing.

    Examples
    --------
    >>> import zgrad
    >>> obs = zgrad.Space("x", limits=(-5.0, 5.0))
    >>> obs.width
    10.0
    >>> obs.inside([-6.0, 0.0, 5.0])
    array([False,  True,  True])
    >>> zgrad.Space("x", -5.0, 5.0) == obs
    True
    """

    __slots__ = ("_name", "_lower", "_upper", "__weakref__")

    def __init__(self, name: str, limits: tuple[float, float] | float, upper: float | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"Space name must be a non-empty str; got {name!r} ({type(name).__name__}).")
        if upper is not None:
            limits = _lower_and_upper(limits, upper)
        lower, upper = _validate_limits(limits)
        self._name = name
        self._lower = lower
        self._upper = upper

    @property
    def name(self) -> str:
        """Name of the observable."""
        return self._name

    @property
    def limits(self) -> tuple[float, float]:
        """``(lower, upper)``."""
        return (self._lower, self._upper)

    @property
    def lower(self) -> float:
        """Lower limit."""
        return self._lower

    @property
    def upper(self) -> float:
        """Upper limit."""
        return self._upper

    @property
    def width(self) -> float:
        """``upper - lower``."""
        return self._upper - self._lower

    def inside(self, x: Any) -> np.ndarray:
        """Return a boolean array: which values of ``x`` lie in ``[lower, upper]``."""
        x = np.asarray(x)
        return (x >= self._lower) & (x <= self._upper)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return (self._name, self._lower, self._upper) == (other._name, other._lower, other._upper)

    def __hash__(self) -> int:
        return hash((Space, self._name, self._lower, self._upper))

    def __repr__(self) -> str:
        return f"Space({self._name!r}, limits=({self._lower!r}, {self._upper!r}))"


def _lower_and_upper(lower: Any, upper: Any) -> tuple[Any, Any]:
    """Pair zfit's positional ``Space(name, lower, upper)`` into limits (a pair before ``upper``: refused)."""
    if not isinstance(lower, Real) or isinstance(lower, bool):
        raise TypeError(
            f"Space takes limits=(lower, upper) or a lower and an upper limit (Space('x', -5.0, 5.0)); "
            f"got limits={lower!r} and upper={upper!r}."
        )
    return lower, upper


def _validate_limits(limits: Any) -> tuple[float, float]:
    try:
        lower, upper = limits
    except (TypeError, ValueError):
        raise TypeError(f"limits must be a pair (lower, upper); got {limits!r}.") from None
    for bound in (lower, upper):
        if isinstance(bound, bool) or not isinstance(bound, Real):
            raise TypeError(f"limits must be two real numbers; got {limits!r}.")
    lower, upper = float(lower), float(upper)
    if not (math.isfinite(lower) and math.isfinite(upper)):
        raise ValueError(f"limits must be finite; got {limits!r}.")
    if not lower < upper:
        raise ValueError(f"limits must satisfy lower < upper; got {limits!r}.")
    return lower, upper
