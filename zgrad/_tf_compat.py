"""The private TensorFlow names zgrad relies on, in one place.

TensorFlow's public API has no equivalent for these three; every other module uses the
public ``tf.*`` names only (``tests/test_contracts.py`` checks it). Each name is imported on
first use, never when this module is imported: ``import zgrad`` must not import TensorFlow.

=====================================  ========================================================
name here                              what it is for
=====================================  ========================================================
``ResourceVariable``                   ``tensorflow.python.ops.resource_variable_ops``: the
                                       base class of :class:`zgrad.Parameter` (``tf.Variable``
                                       itself is an abstract factory that cannot be subclassed
                                       with its own constructor)
``should_record_backprop(tensors)``    ``tensorflow.python.eager.record``: whether some tape
                                       watches the tensors now, so ``z.py_function`` skips the
                                       derivatives of inputs no tape will ask for
:func:`eager_runtime_started`          ``tensorflow.python.eager.context``: whether the eager
                                       runtime exists, so thread-pool settings can be refused
                                       after it started (TensorFlow silently accepts re-setting
                                       the same values)
=====================================  ========================================================

Checked with TensorFlow 2.21, the version the tests run on; ``pyproject.toml`` allows 2.16 and
later, which were not run against these names. A TensorFlow release that moves one of them
fails here, with an ``ImportError`` or ``AttributeError`` naming the module or the attribute,
and nowhere else.
"""

from __future__ import annotations

import importlib
from typing import Any

#: The lazily resolved names: ``name -> (module, attribute)``.
_LAZY = {
    "ResourceVariable": ("tensorflow.python.ops.resource_variable_ops", "ResourceVariable"),
    "should_record_backprop": ("tensorflow.python.eager.record", "should_record_backprop"),
}
_CONTEXT_MODULE = "tensorflow.python.eager.context"

__all__ = ["eager_runtime_started", *_LAZY]


def __getattr__(name: str) -> Any:
    # PEP 562: resolved on first access and then kept in the module's namespace
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def eager_runtime_started() -> bool:
    """Tell whether TensorFlow's eager runtime has started.

    Imports TensorFlow's context module: call it only once ``tensorflow`` is imported (as
    :func:`zgrad._threads.runtime_started` does), where that import costs nothing.
    """
    context = importlib.import_module(_CONTEXT_MODULE)
    ctx = context.context_safe()
    return ctx is not None and ctx._context_handle is not None
