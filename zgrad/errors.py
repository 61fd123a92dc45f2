"""Errors and warnings raised by zgrad.

Every error zgrad defines derives from :class:`ZgradError`, every warning from
:class:`ZgradWarning`, so callers can filter the library's messages as a group.
Where a built-in exception type describes the problem (``ValueError`` for a bad
value, ``TypeError`` for a wrong type), zgrad raises that type instead; the
classes below also derive from the matching built-in type where one fits.

Examples
--------
>>> import zgrad
>>> issubclass(zgrad.errors.RetracingWarning, zgrad.errors.ZgradWarning)
True
"""

from __future__ import annotations

__all__ = [
    "BridgeCostWarning",
    "GradientError",
    "PolicyInTraceError",
    "RetracingWarning",
    "ZgradError",
    "ZgradWarning",
]


class ZgradError(Exception):
    """Base class of the errors zgrad defines."""


class ZgradWarning(UserWarning):
    """Base class of the warnings zgrad emits."""


class PolicyInTraceError(ZgradError, RuntimeError):
    """The execution or gradient policy was changed while a function was being traced.

    A trace freezes the policy in force when it started; changing it half-way
    would give a graph that follows neither the old nor the new policy.
    """


class GradientError(ZgradError, ValueError):
    """A derivative could not be obtained, e.g. a parameter the function does not depend on."""


class RetracingWarning(ZgradWarning):
    """One function was traced many times: its arguments probably change Python values on each call."""


class BridgeCostWarning(ZgradWarning):
    """A numerical gradient through ``z.py_function`` needs a full Jacobian of a large input.

    Such a gradient costs two evaluations of the bridged function per element of the input;
    ``elementwise=True`` or an explicit ``gradient=`` avoids it.
    """
