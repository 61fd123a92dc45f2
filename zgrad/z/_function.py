"""``z.function``: run a function eagerly or as a cached ``tf.function`` trace, as the policy says.

On every call the wrapper reads the effective policy. Eager means a plain Python
call. Graph means a lookup in a least-recently-used cache keyed by everything
that can change the trace: the policy, ``chunksize``, the strategy table's
generation, and the argument signature (tensors and Parameters by dtype and
shape, other values by value). Each key owns its own ``tf.function``, so a key
is traced exactly once while it stays in the cache. Calls made while another
function is being traced run the Python body inline and become part of that trace.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from zgrad import _cache, _policy, _strategy_table
from zgrad.errors import RetracingWarning
from zgrad.z import _signature, random

__all__ = ["function", "GraphFunction"]

#: True while a trace compiled with XLA is being built; host callbacks (z.py_function) refuse it.
xla_tracing: contextvars.ContextVar[bool] = contextvars.ContextVar("zgrad_xla_tracing", default=False)


def function(
    func: Callable | None = None,
    *,
    wraps: str = "tensor",
    jit_compile: bool = False,
    autograph: bool = False,
) -> Any:
    """Decorate a function or method so it runs traced or eagerly according to the graph policy.

    Usable as ``@z.function`` or ``@z.function(wraps='loss')``, on functions and methods
    (methods are cached per instance, without keeping the instance alive).

    Parameters
    ----------
    func : callable, optional
        The function to wrap; omitted when the decorator is called with options.
    wraps : str, default 'tensor'
        The kind of function: ``'loss'``, ``'gradient'``, ``'hessian'``, ``'sample'``,
        ``'model'``, ``'tensor'`` or any other name. A dict graph policy switches kinds
        individually; ``'auto'`` traces every kind except ``'model'``.
    jit_compile : bool, default False
        Compile the trace with XLA.
    autograph : bool, default False
        Let TensorFlow's AutoGraph convert Python control flow on tensors.

    Returns
    -------
    GraphFunction
        The wrapper (or, called with options only, a decorator returning one).

    Notes
    -----
    A trace freezes Python-side values (Python numbers, NumPy random numbers) into
    the graph. Tensors, NumPy arrays and Parameters are inputs of the trace: a new
    value of the same dtype and shape reuses it, and a Parameter's current value is
    read on every call. Traced code must not read a Parameter's Python attributes
    (limits, step size): another Parameter of the same dtype and shape reuses the trace.
    Keywords are bound to their positions first, so ``f(x, y=1.0)`` and ``f(x, 1.0)``
    share a trace; the same Parameter passed twice (``f(p, p)``) is a call of its own.

    Examples
    --------
    >>> import numpy as np, zgrad
    >>> from zgrad import z
    >>> traces = []
    >>> @z.function(wraps="loss")
    ... def square_sum(x):
    ...     traces.append(1)  # runs only while tracing
    ...     return tf.reduce_sum(x * x)
    >>> import tensorflow as tf
    >>> float(square_sum(np.array([1.0, 2.0]))), float(square_sum(np.array([3.0, 4.0])))
    (5.0, 25.0)
    >>> len(traces)  # one dtype and shape: one trace
    1
    >>> with zgrad.run.set_mode(graph=False):
    ...     float(square_sum(np.array([1.0, 2.0])))
    5.0
    >>> len(traces)  # eager calls run the Python body every time
    2
    """
    if not isinstance(wraps, str) or not wraps:
        raise TypeError(f"wraps must be a non-empty str naming the kind of function; got {wraps!r}.")
    for name, flag in (("jit_compile", jit_compile), ("autograph", autograph)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False; got {flag!r} ({type(flag).__name__}).")
    if func is None:
        return functools.partial(function, wraps=wraps, jit_compile=jit_compile, autograph=autograph)
    if not callable(func):
        raise TypeError(f"z.function expects a callable; got {func!r} ({type(func).__name__}).")
    return GraphFunction(func, kind=wraps, jit_compile=jit_compile, autograph=autograph)


class GraphFunction:
    """The callable ``z.function`` returns. See :func:`function`.

    Attributes
    ----------
    kind : str
        The ``wraps`` kind the graph policy is looked up with.
    """

    def __init__(self, func: Callable, *, kind: str, jit_compile: bool, autograph: bool) -> None:
        functools.update_wrapper(self, func)
        self._func = func
        self._signature = _python_signature(func)
        self.kind = kind
        self._tf_options = {"jit_compile": jit_compile, "autograph": autograph, "reduce_retracing": False}
        self._cache = _cache.TraceCache()
        self._instance_caches: dict[int, _cache.TraceCache] = {}
        self._lock = threading.Lock()
        _cache.register_owner(self)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return _BoundGraphFunction(self, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(None, args, kwargs)

    def __repr__(self) -> str:
        return f"<zgrad.z.function {self.__wrapped__.__qualname__} wraps={self.kind!r}>"

    # --- the call path ------------------------------------------------------------------------

    def _call(self, instance: Any, args: tuple, kwargs: dict) -> Any:
        mode = _policy.effective()
        if _policy.in_trace() or not mode.traces(self.kind):
            return self._python_call(instance, args, kwargs)
        args, kwargs = self._canonical(instance, args, kwargs)
        flat = _signature.flatten(args, kwargs)
        key = (mode, _policy.get_chunksize(), _strategy_table.generation(), flat.signature)
        cache = self._cache if instance is None else self._cache_for(instance)
        traced, created = cache.get_or_create(key, lambda: self._make_trace(instance, flat))
        try:
            result = traced(*flat.dynamic)
        except BaseException:
            if created:  # a trace that failed must not stay cached half-built
                cache.discard(key)
            raise
        # warned only once the trace exists: a warning turned into an error must not leave an
        # entry that was never traced behind
        if created and cache.misses == _cache.RETRACE_WARNING_THRESHOLD:
            warnings.warn(
                f"{self.__wrapped__.__qualname__} has been traced {cache.misses} times since the graph cache "
                "was last cleared. Arguments that change Python values (floats, strings) on every call each "
                "cause a new trace: pass tensors, NumPy arrays or Parameters instead.",
                RetracingWarning,
                stacklevel=3,
            )
        return result

    def _prepare(self, instance: Any, args: tuple, kwargs: dict) -> tuple[Callable, list] | None:
        """Trace (or find) the graph of a call now and return ``(concrete function, flat inputs)``.

        For hot loops that call one graph many times with new tensor inputs of the same
        shapes: ``function(*inputs)`` with some inputs replaced skips the policy lookup, the
        key and the argument handling of every call. Only for calls that the policy traces and
        that take :class:`~zgrad.z._signature.AnyLength` data (their graph is a concrete
        function, traced when the entry is created); None otherwise.
        """
        mode = _policy.effective()
        if _policy.in_trace() or not mode.traces(self.kind):
            return None
        args, kwargs = self._canonical(instance, args, kwargs)
        flat = _signature.flatten(args, kwargs)
        if not flat.relaxed:
            return None
        key = (mode, _policy.get_chunksize(), _strategy_table.generation(), flat.signature)
        cache = self._cache if instance is None else self._cache_for(instance)
        traced, _ = cache.get_or_create(key, lambda: self._make_trace(instance, flat))
        return traced, list(flat.dynamic)

    def _canonical(self, instance: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        # f(x, y=1.0) and f(x, 1.0) are the same call: moving keywords to their positions lets them
        # share one trace instead of tracing once per spelling
        if self._signature is None or not kwargs:
            return args, kwargs
        lead = () if instance is None else (instance,)
        bound = self._signature.bind(*lead, *args, **kwargs)
        return bound.args[len(lead) :], bound.kwargs

    def _python_call(self, instance: Any, args: tuple, kwargs: dict) -> Any:
        args, kwargs = _signature.unwrap(args, kwargs)
        if instance is None:
            return self._func(*args, **kwargs)
        return self._func(instance, *args, **kwargs)

    def _make_trace(self, instance: Any, flat: _signature.Flat) -> Callable:
        # Variables created during a first trace make tf.function trace twice; the random generator
        # is the one zgrad creates, so it is made eagerly here and trace counts stay exact.
        random.generator()
        instance_ref = None if instance is None else weakref.ref(instance)
        xla = self._tf_options["jit_compile"]
        body = _TraceBody(self._func, instance_ref, flat.signature, flat.static, xla)
        traced = tf.function(body, **self._tf_options)
        if not flat.relaxed:
            return traced
        # Data of unknown length: trace now for shape [None] and keep the concrete function. Every
        # other input has the dtype and shape of its key, so the key alone selects it; calling it
        # directly also skips tf.function's own dispatch (~0.1 ms), which repeated fits feel.
        return traced.get_concrete_function(*_signature.specs(flat))

    def _cache_for(self, instance: Any) -> _cache.TraceCache:
        key = id(instance)
        with self._lock:
            cache = self._instance_caches.get(key)
            if cache is None:
                try:
                    weakref.finalize(instance, self._instance_caches.pop, key, None)
                except TypeError:
                    raise TypeError(
                        f"z.function methods cache traces per instance through a weak reference, but "
                        f"{type(instance).__name__} instances do not support weak references; add "
                        "'__weakref__' to its __slots__."
                    ) from None
                cache = self._instance_caches[key] = _cache.TraceCache()
            return cache


def _python_signature(func: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # some builtins and C callables have none: keep keywords as given
        return None


_BOUND_METADATA = frozenset({"__name__", "__qualname__", "kind"})


class _TraceBody:
    """The Python body one cache entry traces: rebuilds the call and marks the trace.

    A callable object rather than a closure: TensorFlow keys its "frequent retracing"
    log message by the code object of the traced function, which every closure would
    share; zgrad traces each key once and warns about retracing itself.
    """

    __slots__ = ("_func", "_instance_ref", "_signature", "_static", "_xla", "__name__", "__weakref__")

    def __init__(self, func: Callable, instance_ref: Any, signature: Any, static: list, xla: bool) -> None:
        self._func = func
        self._instance_ref = instance_ref
        self._signature = signature
        self._static = static
        self._xla = xla
        self.__name__ = getattr(func, "__name__", "zgrad_function")

    def __call__(self, *dynamic: Any) -> Any:
        call_args, call_kwargs = _signature.unflatten(self._signature, list(dynamic), self._static)
        if self._instance_ref is not None:
            call_args = (self._instance_ref(), *call_args)
        token = xla_tracing.set(True) if self._xla else None
        try:
            with _policy.tracing():
                return self._func(*call_args, **call_kwargs)
        finally:
            if token is not None:
                xla_tracing.reset(token)


class _BoundGraphFunction:
    """A :class:`GraphFunction` bound to one instance (what attribute access on the instance gives)."""

    __slots__ = ("_graph_function", "_instance")

    def __init__(self, graph_function: GraphFunction, instance: Any) -> None:
        self._graph_function = graph_function
        self._instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._graph_function._call(self._instance, args, kwargs)

    def prepare(self, *args: Any, **kwargs: Any) -> tuple[Callable, list] | None:
        """Return ``(concrete function, flat inputs)`` of this call's graph (``GraphFunction._prepare``)."""
        return self._graph_function._prepare(self._instance, args, kwargs)

    @property
    def __wrapped__(self) -> Callable:
        return self._graph_function.__wrapped__

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        return self._graph_function.__doc__

    def __getattr__(self, name: str) -> Any:
        # the metadata a bound method shows is the method's, not this helper class's
        if name in _BOUND_METADATA:
            return getattr(self._graph_function, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __reduce__(self) -> tuple:
        # as Python pickles a bound method: the instance, and the attribute looked up again on it
        return getattr, (self._instance, self._graph_function.__name__)

    def __repr__(self) -> str:
        return f"<bound {self._graph_function!r} of {self._instance!r}>"
