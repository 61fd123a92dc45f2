"""Parameters: TensorFlow variables with a name, limits, a step size and a floating flag."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
import tensorflow as tf

from zgrad import _policy
from zgrad._tf_compat import ResourceVariable

__all__ = ["Parameter"]


def _real_or_none(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number or None; got {value!r} ({type(value).__name__}).")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN.")
    return value


def _in_dtype(value: float | None, dtype: tf.DType) -> float | None:
    """``value`` as the nearest number of a floating ``dtype`` (other dtypes: unchanged)."""
    if value is None or not dtype.is_floating or math.isinf(value):
        return value
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf: refused by the caller
        return float(np.asarray(value, dtype=dtype.as_numpy_dtype))


class Parameter(ResourceVariable):
    """A model parameter: a ``tf.Variable`` with a name, optional limits and a step size.

    It is usable wherever a tensor is, and ``tape.gradient(y, param)`` works. Traced
    functions read its value live: changing it with :meth:`set_value` changes their
    results without a retrace.

    Parameters
    ----------
    name : str
        The name, kept exactly as given (no ``:0`` suffix). Names need not be unique
        globally; a loss refuses two different Parameters with one name.
    value : float
        Initial value; must lie within the limits.
    lower, upper : float, optional
        Limits (inclusive). ``None`` means unbounded on that side. They are kept rounded to
        ``dtype``, as the value is, so a value within the given limits is within the stored
        ones: with ``dtype=tf.float32``, ``upper=0.1`` reads back as ``float32(0.1)``.
    step_size : float, optional
        Typical scale of a change, used by numerical derivatives and minimizers.
        Default: 1 % of ``|value|`` (0.01 for a zero value), at most 1 % of the
        range between two finite limits.
    floating : bool, default True
        Whether fits vary it.
    dtype : tf.DType, default tf.float64

    Raises
    ------
    ValueError
        If the value lies outside the limits or is not finite in ``dtype``, ``lower >= upper``
        (in ``dtype``), or ``step_size <= 0``.
    TypeError
        If a numeric argument is not a real number (a complex value included) or ``name`` is not
        a string.

    Examples
    --------
    >>> import zgrad
    >>> mu = zgrad.Parameter("mu", 0.2, lower=-1.0, upper=1.0)
    >>> mu.name, float(mu.value())
    ('mu', 0.2)
    >>> with mu.set_value(0.5):
    ...     float(mu.value())
    0.5
    >>> float(mu.value())
    0.2
    >>> mu.set_value(3.0)
    Traceback (most recent call last):
    ...
    ValueError: Parameter 'mu': value 3.0 is outside its limits [-1.0, 1.0].
    """

    def __init__(
        self,
        name: str,
        value: float,
        lower: float | None = None,
        upper: float | None = None,
        step_size: float | None = None,
        floating: bool = True,
        *,
        dtype: tf.DType = tf.float64,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"Parameter name must be a non-empty str; got {name!r} ({type(name).__name__}).")
        dtype = tf.as_dtype(dtype)
        # limits are kept rounded to the dtype, like the value: rounding is monotone, so a value
        # within the given limits stays within the stored ones (float32(0.1) > 0.1 otherwise)
        lower = _in_dtype(_real_or_none("lower", lower), dtype)
        upper = _in_dtype(_real_or_none("upper", upper), dtype)
        if lower is not None and upper is not None and not lower < upper:
            raise ValueError(
                f"Parameter {name!r}: limits must satisfy lower < upper (in {dtype.name}); "
                f"got [{lower}, {upper}]."
            )
        self._zname = name
        self._zdtype = dtype
        self._lower = lower
        self._upper = upper
        initial = self._checked_value(value)
        self._step_size = self._checked_step_size(step_size, initial)
        self.floating = floating
        super().__init__(initial_value=initial, dtype=dtype, name=name, trainable=True)

    # --- identity -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name exactly as given."""
        return self._zname

    @property
    def lower(self) -> float | None:
        """Lower limit, or None."""
        return self._lower

    @property
    def upper(self) -> float | None:
        """Upper limit, or None."""
        return self._upper

    @property
    def has_limits(self) -> bool:
        """Whether either limit is set."""
        return self._lower is not None or self._upper is not None

    @property
    def step_size(self) -> float:
        """Typical scale of a change (see the class docstring for the default)."""
        return self._step_size

    @property
    def floating(self) -> bool:
        """Whether fits vary this Parameter."""
        return self._floating

    @floating.setter
    def floating(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"floating must be True or False; got {value!r} ({type(value).__name__}).")
        self._floating = value

    # --- value --------------------------------------------------------------------------------

    def set_value(self, value: float) -> _RestoreValue:
        """Set the value now; the result, used as a context manager, restores the old value on exit.

        Raises
        ------
        ValueError
            If ``value`` is outside the limits or not finite (the value is then unchanged).
        RuntimeError
            Inside a trace: use ``param.assign(...)`` there.
        """
        if _policy.in_trace():
            raise RuntimeError(
                f"Parameter {self._zname!r}: set_value works eagerly only; inside a traced function "
                "use param.assign(value) (limits are then not checked)."
            )
        new = self._checked_value(value)
        old = self.numpy()
        self.assign(new)
        return _RestoreValue(self, old)

    def _checked_value(self, value: Any) -> float:
        if isinstance(value, (tf.Tensor, tf.Variable)):
            value = value.numpy()
        array = np.asarray(value)
        if array.shape != () or array.dtype.kind not in "iuf":
            raise TypeError(
                f"Parameter {self._zname!r}: value must be a real scalar (int or float); got {value!r} "
                f"({type(value).__name__})."
            )
        new = _in_dtype(float(array), self._zdtype)
        if not math.isfinite(new):
            raise ValueError(
                f"Parameter {self._zname!r}: value must be finite in {self._zdtype.name}; got {value!r}."
            )
        lo = -math.inf if self._lower is None else self._lower
        hi = math.inf if self._upper is None else self._upper
        if not lo <= new <= hi:
            raise ValueError(f"Parameter {self._zname!r}: value {new} is outside its limits [{lo}, {hi}].")
        return new

    def _checked_step_size(self, step_size: Any, value: float) -> float:
        step = _real_or_none("step_size", step_size)
        if step is None:
            step = 0.01 * abs(value) if value != 0 else 0.01
            if self._lower is not None and self._upper is not None:
                step = min(step, 0.01 * (self._upper - self._lower))
            return step
        if not (math.isfinite(step) and step > 0):
            raise ValueError(f"Parameter {self._zname!r}: step_size must be positive and finite; got {step}.")
        return step

    # --- pickling and copying -----------------------------------------------------------------

    def __reduce__(self) -> tuple:
        """Pickle as name, value, limits, step size, floating flag and dtype (a new variable on load).

        Within one pickle, a Parameter reached from several places (two models) is stored once
        and comes back as one object, as pickle's memo does for any object.
        """
        if _policy.in_trace():
            raise RuntimeError(f"Parameter {self._zname!r}: pickle or copy it eagerly, not inside a trace.")
        args = (self._zname, float(self.numpy()), self._lower, self._upper, self._step_size, self._floating)
        return _rebuild_parameter, (type(self), *args, self.dtype.name)

    def __deepcopy__(self, memo: dict) -> Parameter:
        """Return a new, independent Parameter with the same state (``memo`` keeps shared ones shared)."""
        rebuild, args = self.__reduce__()
        return rebuild(*args)

    def __copy__(self) -> Parameter:
        """Return a new, independent Parameter with the same state.

        A Parameter holds only immutable settings and its value, so a shallow copy is a deep
        one. (A plain ``tf.Variable`` returns itself here; a copy that shares the value with
        the original would change when the original is set.)
        """
        rebuild, args = self.__reduce__()
        return rebuild(*args)

    def __repr__(self) -> str:
        try:
            value = repr(float(self.numpy()))
        except Exception:  # symbolic inside a trace: no value to show
            value = "<symbolic>"
        limits = f" limits=({self._lower}, {self._upper})" if self.has_limits else ""
        return f"<zgrad.Parameter {self._zname!r} value={value}{limits} floating={self._floating}>"


def _rebuild_parameter(
    cls: type,
    name: str,
    value: float,
    lower: float | None,
    upper: float | None,
    step_size: float,
    floating: bool,
    dtype: str,
) -> Parameter:
    """Create the Parameter that :meth:`Parameter.__reduce__` described (module level: pickle finds it).

    The value is restored exactly, also where it lies just outside a limit: ``assign`` does not
    check limits, and a float32 value rounded from a limit can lie a rounding step beyond it.
    """
    lo = -math.inf if lower is None else lower
    hi = math.inf if upper is None else upper
    param = cls(name, min(max(value, lo), hi), lower, upper, step_size, floating, dtype=tf.as_dtype(dtype))
    param.assign(value)
    return param


class _RestoreValue:
    """Returned by :meth:`Parameter.set_value`: restores the previous value when used in ``with``."""

    __slots__ = ("_param", "_old")

    def __init__(self, param: Parameter, old: Any) -> None:
        self._param = param
        self._old = old

    def __enter__(self) -> Parameter:
        return self._param

    def __exit__(self, *exc_info: object) -> None:
        self._param.assign(self._old)
