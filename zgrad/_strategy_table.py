"""The table of gradient-strategy names (ground layer: no TensorFlow here).

The policy validates ``autograd='<name>'`` against this table, and the public
registry :mod:`zgrad.gradients` adds, looks up and removes entries in it. The
built-in strategies are stored as ``"module:attribute"`` strings and imported on
first use, so naming them costs nothing at import time.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

BUILTIN_STRATEGIES: dict[str, str] = {
    "autodiff": "zgrad.gradients.autodiff:AutodiffStrategy",
    "numerical": "zgrad.gradients.numerical:NumericalStrategy",
    "minuit": "zgrad.gradients.minuit:MinuitStrategy",
}

#: What each built-in answers for ``current_policy_autograd()``, known without importing it.
BUILTIN_IS_AUTOGRAD: dict[str, bool] = {"autodiff": True, "numerical": False, "minuit": False}

_lock = threading.RLock()
_table: dict[str, Any] = dict(BUILTIN_STRATEGIES)
_generation = 0


def names() -> tuple[str, ...]:
    """Return the registered strategy names, built-ins first, then in registration order."""
    with _lock:
        return tuple(_table)


def is_registered(name: str) -> bool:
    """Tell whether ``name`` is a registered strategy name."""
    with _lock:
        return name in _table


def is_builtin(name: str) -> bool:
    """Tell whether ``name`` is a built-in strategy (``zgrad.gradients`` never lets them be replaced)."""
    return name in BUILTIN_STRATEGIES


def lookup(name: str) -> Any:
    """Return the strategy object registered as ``name``, importing a built-in on first use.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the registered names.
    """
    with _lock:
        if name not in _table:
            raise ValueError(f"Unknown gradient strategy {name!r}; registered strategies are {list(_table)}.")
        entry = _table[name]
        if isinstance(entry, str):
            module_name, attr = entry.split(":")
            entry = getattr(importlib.import_module(module_name), attr)()
            _table[name] = entry
        return entry


def add(name: str, strategy: Any, *, overwrite: bool = False) -> None:
    """Register ``strategy`` under ``name`` (validation of the object is the caller's job)."""
    with _lock:
        if name in _table and not overwrite:
            raise ValueError(
                f"A gradient strategy named {name!r} is already registered "
                f"(registered: {list(_table)}); pass overwrite=True to replace it."
            )
        _table[name] = strategy
        _bump()


def remove(name: str) -> None:
    """Remove ``name`` from the table."""
    with _lock:
        if name not in _table:
            raise ValueError(
                f"Cannot unregister {name!r}: it is not registered; registered strategies are {list(_table)}."
            )
        del _table[name]
        _bump()


def _bump() -> None:
    global _generation
    _generation += 1


def generation() -> int:
    """Return a counter that moves on every change of the table (part of graph-cache keys)."""
    return _generation
