"""``zgrad.set_values``: set several Parameters at once, from numbers, a mapping or a fit result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from zgrad.params import Parameter

__all__ = ["set_values"]


class ValuesChange:
    """Returned by :func:`set_values`: already applied; as a context manager, restores on exit."""

    __slots__ = ("_params", "_old")

    def __init__(self, params: list[Parameter], old: list[Any]) -> None:
        self._params = params
        self._old = old

    def __enter__(self) -> list[Parameter]:
        return list(self._params)

    def __exit__(self, *exc_info: object) -> None:
        for param, old in zip(self._params, self._old, strict=True):
            param.assign(old)


def set_values(params: Parameter | Sequence[Parameter], values: Any) -> ValuesChange:
    """Set Parameters to new values, all or none; used in ``with``, restore them on exit.

    zgrad's counterpart of ``zfit.param.set_values``. Every value is checked against its
    Parameter's limits; if one is refused, the Parameters set before it are restored, so a
    failed call changes nothing.

    Parameters
    ----------
    params : Parameter or sequence of Parameter
    values : float, sequence of float, mapping or FitResult
        A number for a single Parameter; numbers in the order of ``params``; a mapping from
        names to numbers (a Parameter works as a key where the mapping allows it); or anything
        with a ``values`` mapping, such as a :class:`~zgrad.minimize.FitResult`. A mapping must
        hold every Parameter's name.

    Returns
    -------
    ValuesChange
        Already applied; ``with zgrad.set_values(...):`` restores the previous values on exit.

    Raises
    ------
    TypeError
        If ``params`` holds something other than a Parameter, or ``values`` has none of the
        forms above.
    ValueError
        If the number of values differs from that of the Parameters, a name is missing from a
        mapping, or a value lies outside its Parameter's limits (nothing is changed then).

    Examples
    --------
    >>> import zgrad
    >>> mu, sigma = zgrad.Parameter("mu", 0.0), zgrad.Parameter("sigma", 1.0, lower=0.1)
    >>> _ = zgrad.set_values([mu, sigma], [0.5, 2.0])
    >>> float(mu.value()), float(sigma.value())
    (0.5, 2.0)
    >>> with zgrad.set_values([mu, sigma], {"mu": 1.5, "sigma": 3.0}):
    ...     float(mu.value())
    1.5
    >>> float(mu.value())
    0.5
    """
    params = _checked_params(params)
    numbers = _values_for(params, values)
    old = [param.numpy() for param in params]
    try:
        for param, number in zip(params, numbers, strict=True):
            param.set_value(number)
    except Exception:
        for param, value in zip(params, old, strict=True):
            param.assign(value)
        raise
    return ValuesChange(params, old)


def _checked_params(params: Any) -> list[Parameter]:
    if isinstance(params, Parameter):
        return [params]
    if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
        raise TypeError(f"params must be a Parameter or a sequence of them; got {params!r}.")
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(f"params must hold zgrad Parameters; got {p!r} ({type(p).__name__}).")
    return list(params)


def _values_for(params: list[Parameter], values: Any) -> list[Any]:
    """Return the value for each Parameter, in order, from any accepted form of ``values``."""
    mapping = values.values if isinstance(getattr(values, "values", None), Mapping) else values
    if isinstance(mapping, Mapping):
        missing = [p.name for p in params if p.name not in mapping]
        if missing:
            raise ValueError(f"set_values: no value for {missing}; the values given are for {list(mapping)}.")
        return [mapping[p.name] for p in params]
    if isinstance(values, (str, bytes)):
        raise TypeError(f"values must be numbers, a mapping or a fit result; got {values!r}.")
    if not isinstance(values, (list, tuple)) and np.ndim(values) == 0:
        values = [values]  # one number (a float, a NumPy scalar)
    if len(values) != len(params):
        raise ValueError(f"set_values: {len(values)} values for {len(params)} Parameters; they must match.")
    return list(values)
