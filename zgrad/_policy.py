"""The execution and gradient policy: one frozen value, one validator, two scopes.

The policy is a :class:`Mode` (``graph``, ``autograd``). The *process default*
is a module-level value guarded by a lock; a *context-local override* lives in a
:class:`contextvars.ContextVar`, so a ``with zgrad.run.set_mode(...)`` block
holds only for the thread (or asyncio task) that entered it. New threads start
from the process default. Reading the policy returns the effective value.

This module is part of the ground layer: it never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from zgrad import _strategy_table
from zgrad.errors import PolicyInTraceError

GraphValue = bool | str | Mapping[str, bool]
AutogradValue = bool | str

#: Kinds that ``graph='auto'`` runs eagerly when they are called directly.
AUTO_EAGER_KINDS = frozenset({"model"})

_GRAPH_ALLOWED = "True, False, 'auto', or a dict mapping wrapped-function kinds (str) to bool"


def _type_name(value: Any) -> str:
    return type(value).__name__


def validate_graph(graph: Any) -> bool | str | tuple[tuple[str, bool], ...]:
    """Return ``graph`` in its frozen form, or raise naming what was given and what is allowed.

    A dict is frozen into a sorted tuple of ``(kind, bool)`` pairs so the mode stays hashable.
    """
    if isinstance(graph, bool):
        return graph
    if isinstance(graph, str):
        if graph != "auto":
            raise ValueError(f"graph={graph!r} is not allowed; graph must be {_GRAPH_ALLOWED}.")
        return graph
    if isinstance(graph, Mapping):
        items = []
        for kind, value in graph.items():
            if not isinstance(kind, str) or not kind:
                raise TypeError(
                    f"graph dict keys must be non-empty kind names (str); got {kind!r} "
                    f"({_type_name(kind)}). graph must be {_GRAPH_ALLOWED}."
                )
            if not isinstance(value, bool):
                raise TypeError(
                    f"graph[{kind!r}] must be True or False; got {value!r} ({_type_name(value)})."
                )
            items.append((kind, value))
        return tuple(sorted(items))
    raise TypeError(
        f"graph={graph!r} ({_type_name(graph)}) has the wrong type; graph must be {_GRAPH_ALLOWED}."
    )


def validate_autograd(autograd: Any) -> bool | str:
    """Return ``autograd`` unchanged if it is allowed, or raise naming what was given and what is allowed."""
    allowed = f"True, False, or a registered strategy name {list(_strategy_table.names())}"
    if isinstance(autograd, bool):
        return autograd
    if isinstance(autograd, str):
        if not _strategy_table.is_registered(autograd):
            raise ValueError(
                f"autograd={autograd!r} is not a registered gradient strategy; allowed: {allowed}."
            )
        return autograd
    raise TypeError(f"autograd={autograd!r} ({_type_name(autograd)}) has the wrong type; allowed: {allowed}.")


@dataclass(frozen=True)
class Mode:
    """The policy value: how code is executed (``graph``) and how it is differentiated (``autograd``).

    Construct it through :meth:`Mode.make`, which validates; ``graph`` holds a dict
    policy as a sorted tuple of pairs so that a mode is hashable and can be part of
    a graph-cache key.
    """

    graph: bool | str | tuple[tuple[str, bool], ...]
    autograd: bool | str

    @classmethod
    def make(cls, graph: Any, autograd: Any) -> Mode:
        """Validate both fields and return the frozen mode."""
        return cls(validate_graph(graph), validate_autograd(autograd))

    def traces(self, kind: str) -> bool:
        """Tell whether a function of this ``kind``, called directly, runs as a traced graph."""
        graph = self.graph
        if isinstance(graph, tuple):
            mapping = dict(graph)
            if kind in mapping:
                return mapping[kind]
            graph = "auto"
        if graph == "auto":
            return kind not in AUTO_EAGER_KINDS
        return bool(graph)

    @property
    def public_graph(self) -> bool | str | dict[str, bool]:
        """The graph policy as users give it (a fresh dict for a dict policy)."""
        return dict(self.graph) if isinstance(self.graph, tuple) else self.graph

    @property
    def strategy_name(self) -> str:
        """Name of the gradient strategy this mode selects."""
        if self.autograd is True:
            return "autodiff"
        if self.autograd is False:
            return "numerical"
        return self.autograd

    def as_dict(self) -> dict[str, Any]:
        """Return ``{'autograd': ..., 'graph': ...}`` as a new dict."""
        return {"autograd": self.autograd, "graph": self.public_graph}


DEFAULT_MODE = MappingProxyType({"autograd": True, "graph": "auto"})

_lock = threading.RLock()
_default = Mode.make(DEFAULT_MODE["graph"], DEFAULT_MODE["autograd"])
_override: contextvars.ContextVar[Mode | None] = contextvars.ContextVar("zgrad_mode_override", default=None)
#: set_mode results not entered yet, so that entering one can unlink it from changes made after it
#: (weakly held: a plain call whose result is dropped is a persistent change, nothing to track).
_pending: weakref.WeakSet[ModeChange] = weakref.WeakSet()
_tracing_depth: contextvars.ContextVar[int] = contextvars.ContextVar("zgrad_tracing_depth", default=0)
#: the `with set_mode(...)` blocks open in this context, oldest first: lets a block that is left out
#: of order (two generators closed in the order they were opened) hand its restore point on
_open_blocks: contextvars.ContextVar[tuple] = contextvars.ContextVar("zgrad_open_mode_blocks", default=())


def effective() -> Mode:
    """Return the mode in force for the calling thread or task."""
    override = _override.get()
    return _default if override is None else override


def process_default() -> Mode:
    """Return the process-wide default mode (ignores any context-local override)."""
    return _default


def in_trace() -> bool:
    """Tell whether the caller runs inside a trace (zgrad's own, or any ``tf.function``)."""
    if _tracing_depth.get() > 0:
        return True
    tf = sys.modules.get("tensorflow")
    return tf is not None and hasattr(tf, "inside_function") and bool(tf.inside_function())


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    """Mark the body as running inside a trace (used by ``z.function`` while it traces)."""
    token = _tracing_depth.set(_tracing_depth.get() + 1)
    try:
        yield
    finally:
        _tracing_depth.reset(token)


def _check_not_tracing(what: str) -> None:
    if in_trace():
        raise PolicyInTraceError(
            f"{what} was called while a function was being traced. A trace freezes the policy in force "
            "when it starts, so the policy cannot change inside it: set the mode before calling the "
            "traced function (e.g. `with zgrad.run.set_mode(...): loss.value()`)."
        )


class ModeChange:
    """The handle :func:`set_mode` returns: already applied, and usable as a context manager.

    Entering the ``with`` block moves the change from the scope it was made in
    into a new context-local override; leaving the block removes that override,
    also on an exception. Blocks left out of order (two generators, each holding a
    block, closed in the order they were opened) restore correctly: leaving a block
    takes only its own change out, a block entered after it and still open stays in
    force, and once both are left the mode from before the first is back.
    """

    __slots__ = ("_mode", "_previous", "_in_default", "_block_token", "_restore", "_entered", "__weakref__")

    def __init__(self, mode: Mode, previous: Mode | None, in_default: bool):
        self._mode = mode
        self._previous = previous  # what the changed scope held before this change
        self._in_default = in_default  # changed the process default (else the caller's override)
        self._block_token: contextvars.Token | None = None
        self._restore: Mode | None = None  # the override to put back on leaving the block
        self._entered = False

    @property
    def mode(self) -> Mode:
        """The mode this change put in force."""
        return self._mode

    def __enter__(self) -> ModeChange:
        _check_not_tracing("Entering a `with zgrad.run.set_mode(...)` block")
        if self._entered:
            raise RuntimeError("A set_mode(...) result can be entered as a `with` block only once.")
        self._entered = True
        with _lock:
            _pending.discard(self)
            if not self._undo_in_scope():
                # Another change was layered on this one in the meantime (maybe by another thread):
                # unlink this one, so that scoping the later one falls back past it, not onto it.
                for other in _pending:
                    if other._in_default == self._in_default and other._previous is self._mode:
                        other._previous = self._previous
        self._restore = _override.get()
        self._block_token = _override.set(self._mode)
        _open_blocks.set((*_open_blocks.get(), self))
        return self

    def _undo_in_scope(self) -> bool:
        """Give the changed scope its previous value back if this change is still on top of it."""
        global _default
        if self._in_default:
            if _default is not self._mode:
                return False
            _default = self._previous
        else:
            if _override.get() is not self._mode:
                return False
            # no token reset: the enclosing block's exit restores its own scope in any case
            _override.set(self._previous)
        return True

    def __exit__(self, *exc_info: object) -> None:
        try:
            _check_not_tracing("Leaving a `with zgrad.run.set_mode(...)` block")
        finally:  # restore also when refusing, so that no override outlives its block
            self._leave()

    def _leave(self) -> None:
        """Take this block's change out; blocks entered after it and still open keep theirs."""
        blocks = _open_blocks.get()
        if not any(block is self for block in blocks):
            # entered in another thread or task: the token refuses, saying so
            _override.reset(self._block_token)
            return
        i = next(k for k, block in enumerate(blocks) if block is self)
        if i == len(blocks) - 1:
            _override.set(self._restore)
        else:  # left before a later block (generators closed out of order): it inherits the restore point
            blocks[i + 1]._restore = self._restore
        _open_blocks.set(blocks[:i] + blocks[i + 1 :])

    def __repr__(self) -> str:
        return f"<ModeChange {self._mode.as_dict()}>"


def set_mode(graph: Any = None, autograd: Any = None) -> ModeChange:
    """Change the policy of the current scope; the result is also a context manager.

    See :meth:`zgrad.RunManager.set_mode` for the full rules.
    """
    global _default
    if graph is None and autograd is None:
        raise ValueError("set_mode() needs graph=..., autograd=... or both; both were None.")
    _check_not_tracing("zgrad.run.set_mode()")
    current = effective()
    new = Mode.make(
        current.public_graph if graph is None else graph,
        current.autograd if autograd is None else autograd,
    )
    with _lock:
        override = _override.get()
        if override is not None:
            _override.set(new)
            change = ModeChange(new, override, in_default=False)
        else:
            previous, _default = _default, new
            change = ModeChange(new, previous, in_default=True)
        _pending.add(change)
    return change


def reset_to_default() -> None:
    """Restore the process default to :data:`DEFAULT_MODE` (for tests and fresh starts)."""
    global _default
    _check_not_tracing("Resetting the policy")
    with _lock:
        _default = Mode.make(DEFAULT_MODE["graph"], DEFAULT_MODE["autograd"])


def names_in_use() -> set[str]:
    """Strategy names selected by the process default or by the caller's override."""
    used = {_default.strategy_name}
    override = _override.get()
    if override is not None:
        used.add(override.strategy_name)
    return used


# --- chunking: process-wide, part of every graph-cache key -------------------------------------

_chunksize: int | None = None


def get_chunksize() -> int | None:
    """Return the configured chunk size (None: no chunking)."""
    return _chunksize


def set_chunksize(value: Any) -> None:
    """Set the chunk size: a positive int, or None for no chunking."""
    global _chunksize
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"chunksize must be a positive int or None; got {value!r} ({_type_name(value)}).")
    if value is not None and value <= 0:
        raise ValueError(f"chunksize must be a positive int or None; got {value!r}.")
    _check_not_tracing("Setting zgrad.run.chunksize")
    _chunksize = value
