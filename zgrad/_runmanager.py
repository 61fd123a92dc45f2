"""``zgrad.run``: the user-facing face of the policy, the graph cache and the thread settings.

The RunManager has no logic of its own: the policy lives in :mod:`zgrad._policy`,
the graph caches in :mod:`zgrad._cache`, thread settings and the process's core count
(``run.n_cpu``) in :mod:`zgrad._threads`.
Library code reads the policy from ``_policy``, never from here.
"""

from __future__ import annotations

import sys
import warnings
from types import MappingProxyType
from typing import Any

from zgrad import _cache, _convert, _policy, _strategy_table, _threads
from zgrad._cache import GraphCacheInfo

_REMOVAL = "zgrad 1.0"


# zfit's run-manager names that zgrad does not have, and what to write instead. They are refused
# (AttributeError, so hasattr() answers False) rather than aliased: zgrad keeps one name per action.
_ZFIT_NAMES = {
    "set_graph_mode": "zgrad.run.set_mode(graph=...) (also a context manager)",
    "set_autograd_mode": "zgrad.run.set_mode(autograd=...) (also a context manager)",
    "get_graph_mode": "zgrad.run.current_policy_graph()",
    "get_autograd_mode": "zgrad.run.current_policy_autograd()",
    "set_mode_default": "zgrad.run.set_mode(**zgrad.RunManager.DEFAULT_MODE)",
    "set_n_cpu": (
        "zgrad.run.set_cpus_explicit(intra, inter) right after import zgrad for TensorFlow's thread "
        "pools (zgrad.run.n_cpu is fixed when the RunManager is made)"
    ),
    "aquire_cpu": (
        "nothing: zgrad does not hand out cores to code blocks; size TensorFlow's thread pools once "
        "with zgrad.run.set_cpus_explicit(intra, inter)"
    ),
}


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is deprecated and will be removed in {_REMOVAL}; use {new} instead.",
        FutureWarning,
        stacklevel=3,
    )


class RunManager:
    """Control how zgrad executes code and obtains derivatives.

    ``zgrad.run`` is the instance everyone uses; calling it turns tensors into NumPy.

    Parameters
    ----------
    n_cpu : int or 'auto', default 'auto'
        Cores zgrad may use; ``'auto'`` means the cores this process may run on (CPU affinity).

    Examples
    --------
    >>> import zgrad
    >>> zgrad.run.mode
    {'autograd': True, 'graph': 'auto'}
    >>> with zgrad.run.set_mode(graph=False):
    ...     zgrad.run.current_policy_graph()
    False
    >>> zgrad.run.current_policy_graph()
    'auto'
    >>> zgrad.run([1.0, (2, 3)], {"a": 4})
    ([1.0, (2, 3)], {'a': 4})
    """

    #: The mode a new process starts with.
    DEFAULT_MODE = MappingProxyType(dict(_policy.DEFAULT_MODE))

    def __init__(self, n_cpu: int | str = "auto") -> None:
        self._of_process = False
        self._own_n_cpu = _threads.validate_n_cpu(n_cpu)

    @classmethod
    def _for_process(cls) -> RunManager:
        """Return the RunManager whose ``n_cpu`` is the process's (``zgrad.run``)."""
        manager = cls.__new__(cls)
        manager._of_process = True
        manager._own_n_cpu = None
        return manager

    @property
    def _n_cpu(self) -> int:
        # zgrad.run's count is the process's, kept in _threads where library code reads it;
        # any other RunManager keeps its own
        return _threads.n_cpu() if self._of_process else self._own_n_cpu

    @_n_cpu.setter
    def _n_cpu(self, value: int | str) -> None:
        if self._of_process:
            _threads.set_n_cpu(value)
        else:
            self._own_n_cpu = _threads.validate_n_cpu(value)

    # --- conversion ---------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Convert tensors, variables and nested structures of them to NumPy.

        One argument comes back converted with its structure kept; several come back
        as a tuple. NumPy arrays, plain Python values and unknown objects pass through;
        a Parameter gives its current value.

        Raises
        ------
        TypeError
            If keyword arguments are given.
        RuntimeError
            If called inside a trace, where tensors have no value yet.

        Examples
        --------
        >>> import numpy as np, zgrad
        >>> zgrad.run(np.arange(3))
        array([0, 1, 2])
        """
        if kwargs:
            raise TypeError(
                f"zgrad.run() takes positional arguments only; got keyword arguments {sorted(kwargs)}."
            )
        if _policy.in_trace():
            raise RuntimeError(_convert._IN_TRACE)
        converted = [_convert.to_numpy(a) for a in args]
        return converted[0] if len(converted) == 1 else tuple(converted)

    # --- policy -------------------------------------------------------------------------------

    @property
    def mode(self) -> dict[str, Any]:
        """The mode in force here, as a new dict ``{'autograd': ..., 'graph': ...}``.

        Changing the returned dict changes nothing.
        """
        return _policy.effective().as_dict()

    def set_mode(self, graph: Any = None, autograd: Any = None) -> _policy.ModeChange:
        """Set the graph and/or gradient policy; also usable as a context manager.

        A plain call changes the current scope at once: the process default, or inside
        a ``with`` block that block's override. As ``with zgrad.run.set_mode(...):`` the
        change holds only inside the block and only for the thread (or task) that
        entered it; leaving the block (also by an exception) restores the previous mode
        exactly. Between the call and entering the block, other threads can see the change.

        Parameters
        ----------
        graph : bool, 'auto' or dict, optional
            ``True`` traces every ``z.function``; ``False`` runs everything eagerly;
            ``'auto'`` traces every kind except ``'model'``; a dict maps kinds to bool,
            and kinds it does not name follow ``'auto'``.
        autograd : bool or str, optional
            ``True`` selects the ``'autodiff'`` strategy, ``False`` ``'numerical'``; a
            string selects any registered strategy.

        Returns
        -------
        ModeChange
            Already applied; enter it to scope the change to a block.

        Raises
        ------
        ValueError
            If both are None, or a value has an allowed type but is not allowed.
        TypeError
            If a value has a wrong type.
        zgrad.errors.PolicyInTraceError
            If called while a function is being traced.

        Examples
        --------
        >>> import zgrad
        >>> with zgrad.run.set_mode(graph={"loss": False}, autograd="numerical"):
        ...     zgrad.run.mode
        {'autograd': 'numerical', 'graph': {'loss': False}}
        >>> zgrad.run.set_mode(graph="eager")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: graph='eager' is not allowed; graph must be True, False, 'auto', or a dict ...
        """
        return _policy.set_mode(graph=graph, autograd=autograd)

    def current_policy_graph(self) -> bool | str | dict[str, bool]:
        """Return the graph policy in force: ``True``, ``False``, ``'auto'`` or a (new) dict."""
        return _policy.effective().public_graph

    def current_policy_autograd(self) -> bool:
        """Tell whether the active gradient strategy differentiates automatically.

        Examples
        --------
        >>> import zgrad
        >>> zgrad.run.current_policy_autograd()
        True
        >>> with zgrad.run.set_mode(autograd="numerical"):
        ...     zgrad.run.current_policy_autograd()
        False
        """
        name = _policy.effective().strategy_name
        known = _strategy_table.BUILTIN_IS_AUTOGRAD.get(name)
        if known is not None:  # answered without importing the built-in
            return known
        return bool(_strategy_table.lookup(name).is_autograd)

    def current_gradient_strategy(self) -> Any:
        """Return the active gradient strategy object (built-ins are loaded on first use)."""
        return _strategy_table.lookup(_policy.effective().strategy_name)

    def assert_executing_eagerly(self) -> None:
        """Return None when running eagerly; raise ``RuntimeError`` inside a trace.

        Examples
        --------
        >>> import zgrad
        >>> zgrad.run.assert_executing_eagerly()
        """
        if _policy.in_trace():
            raise RuntimeError(
                "This code runs inside a trace (graph mode), but it requires eager execution; "
                "run it with zgrad.run.set_mode(graph=False) or outside the traced function."
            )

    # --- graph cache --------------------------------------------------------------------------

    def clear_graph_cache(self) -> None:
        """Drop every cached trace of every ``z.function`` and return the memory to the system.

        Results do not change: the next call traces anew. Hit and miss counts restart at 0.
        """
        _cache.clear_all()

    def graph_cache_info(self) -> GraphCacheInfo:
        """Return ``(functions, traces, hits, misses)`` over all decorated functions.

        Examples
        --------
        >>> import zgrad
        >>> zgrad.run.clear_graph_cache()
        >>> zgrad.run.graph_cache_info().traces
        0
        """
        return _cache.info()

    def set_graph_cache_size(self, n: int | None) -> None:
        """Bound the traces kept per function (per instance for methods), evicting least recently used.

        Parameters
        ----------
        n : int or None
            A positive int, or None for the default (``zgrad._cache.DEFAULT_CACHE_SIZE``, 32).
        """
        _cache.set_max_size(n)

    # --- threads and chunking -----------------------------------------------------------------

    @property
    def n_cpu(self) -> int:
        """Number of cores zgrad may use.

        Elementwise ``z.py_function`` bridges evaluate large arrays in this many slices at once
        (see its ``threads`` argument); TensorFlow's own thread pools are sized separately, with
        :meth:`set_cpus_explicit`.
        """
        return self._n_cpu

    def set_cpus_explicit(self, intra: int, inter: int) -> None:
        """Size TensorFlow's intra-op and inter-op thread pools.

        Must be called before TensorFlow's runtime starts (right after ``import zgrad``).

        Raises
        ------
        ValueError
            If either is not a positive int (checked first, also after the runtime started).
        RuntimeError
            If TensorFlow's runtime has already started; the settings stay unchanged.
        """
        _threads.set_threads(intra, inter)

    @property
    def thread_settings(self) -> dict[str, int | None]:
        """Thread-pool sizes set through zgrad (None where TensorFlow's default applies)."""
        return _threads.get_threads()

    @property
    def chunksize(self) -> int:
        """Events per chunk when losses evaluate large data; ``sys.maxsize`` when chunking is off.

        Set a positive int, or None to turn chunking off (the default). It is part of
        every graph-cache key.
        """
        size = _policy.get_chunksize()
        return sys.maxsize if size is None else size

    @chunksize.setter
    def chunksize(self, value: int | None) -> None:
        _policy.set_chunksize(value)

    # --- deprecated names ---------------------------------------------------------------------

    def experimental_clear_caches(self) -> None:
        """Clear the graph cache (deprecated alias of :meth:`clear_graph_cache`)."""
        _deprecated("zgrad.run.experimental_clear_caches()", "zgrad.run.clear_graph_cache()")
        self.clear_graph_cache()

    @staticmethod
    def experimental_enable_eager(eager: bool = False) -> _policy.ModeChange:
        """Set the graph policy (deprecated: use ``zgrad.run.set_mode(graph=not eager)``)."""
        _deprecated("RunManager.experimental_enable_eager(eager)", "zgrad.run.set_mode(graph=not eager)")
        if not isinstance(eager, bool):
            raise TypeError(f"eager must be True or False; got {eager!r} ({type(eager).__name__}).")
        return _policy.set_mode(graph=not eager)

    @property
    def experimental_is_eager(self) -> bool:
        """Deprecated: use ``zgrad.run.current_policy_graph() is False``."""
        _deprecated("zgrad.run.experimental_is_eager", "zgrad.run.current_policy_graph() is False")
        return self.current_policy_graph() is False

    def __getattr__(self, name: str) -> Any:
        # only reached for names the class does not have: point zfit's names to zgrad's
        hint = _ZFIT_NAMES.get(name)
        if hint is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        raise AttributeError(f"zgrad.run has no {name!r} (a zfit name); use {hint} instead.")

    def __repr__(self) -> str:
        return f"<zgrad.RunManager mode={self.mode} n_cpu={self.n_cpu}>"


run = RunManager._for_process()
