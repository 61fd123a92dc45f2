"""The graph layer: ``z.function`` and graph-aware random numbers.

Its names are imported on first use, so ``from zgrad import z`` does not import
TensorFlow.

Examples
--------
>>> from zgrad import z
>>> callable(z.function)
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "function": "zgrad.z._function:function",
    "GraphFunction": "zgrad.z._function:GraphFunction",
    "random": "zgrad.z.random",
    "py_function": "zgrad.z._bridge:py_function",
}

__all__ = list(_LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from zgrad.z import random
    from zgrad.z._bridge import py_function
    from zgrad.z._function import GraphFunction, function


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'zgrad.z' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    value = importlib.import_module(module_name)
    if attr:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
