"""Bookkeeping shared by every graph cache: the size bound, the registry, and one call that clears all.

Each ``z.function`` owns :class:`TraceCache` objects (one per decorated function,
or one per instance for methods). They register themselves here in a
:class:`weakref.WeakSet`, so a cache disappears with the function or instance that
owns it, and :func:`clear_all` empties every live one. Ground layer: no TensorFlow.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

#: Traces kept per function (per instance for methods) unless ``set_graph_cache_size`` says otherwise.
DEFAULT_CACHE_SIZE = 32
#: A function traced this many times (since the last clear) triggers one :class:`RetracingWarning`.
RETRACE_WARNING_THRESHOLD = 50

_lock = threading.RLock()
_caches: weakref.WeakSet[TraceCache] = weakref.WeakSet()
_owners: weakref.WeakSet[Any] = weakref.WeakSet()
_max_size = DEFAULT_CACHE_SIZE


class GraphCacheInfo(NamedTuple):
    """What :meth:`zgrad.RunManager.graph_cache_info` reports.

    Attributes
    ----------
    functions : int
        Decorated functions alive (a method counts once, whatever the number of instances).
    traces : int
        Traces currently held, over all functions and instances.
    hits : int
        Graph calls that reused a cached trace since the last clear.
    misses : int
        Graph calls that needed a new trace since the last clear.
    """

    functions: int
    traces: int
    hits: int
    misses: int


class TraceCache:
    """A least-recently-used map from a call's key to its traced graph, with hit and miss counts."""

    def __init__(self) -> None:
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.RLock()
        self.hits = 0
        self.misses = 0
        with _lock:
            _caches.add(self)

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_create(self, key: Hashable, create: Callable[[], Any]) -> tuple[Any, bool]:
        """Return ``(entry, created)``, creating and storing the entry on a miss (LRU eviction)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry, False
            entry = create()
            self._entries[key] = entry
            self.misses += 1
            self._evict(_max_size)
            return entry, True

    def discard(self, key: Hashable) -> None:
        """Remove ``key`` if present."""
        with self._lock:
            self._entries.pop(key, None)

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._entries)

    def _evict(self, size: int) -> None:
        while len(self._entries) > size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry and reset the counts."""
        with self._lock:
            self._entries.clear()
            self.hits = 0
            self.misses = 0


def register_owner(owner: Any) -> None:
    """Record a decorated function so :func:`info` can count it."""
    with _lock:
        _owners.add(owner)


def get_max_size() -> int:
    """Return the per-function bound on cached traces."""
    return _max_size


def set_max_size(size: Any) -> None:
    """Set the per-function bound (a positive int, or None for :data:`DEFAULT_CACHE_SIZE`)."""
    global _max_size
    if size is None:
        size = DEFAULT_CACHE_SIZE
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(
            f"The graph cache size must be a positive int, or None for the default ({DEFAULT_CACHE_SIZE}); "
            f"got {size!r} ({type(size).__name__})."
        )
    with _lock:
        _max_size = size
        for cache in list(_caches):
            with cache._lock:
                cache._evict(size)


def info() -> GraphCacheInfo:
    """Return the counts over all live caches."""
    with _lock:
        caches = list(_caches)
        functions = len(_owners)
    return GraphCacheInfo(
        functions=functions,
        traces=sum(len(c) for c in caches),
        hits=sum(c.hits for c in caches),
        misses=sum(c.misses for c in caches),
    )


def clear_all() -> None:
    """Drop every cached trace of every function, then hand the freed memory back to the system."""
    with _lock:
        caches = list(_caches)
    dropped = sum(len(cache) for cache in caches)
    for cache in caches:
        cache.clear()
    if dropped:  # collecting and trimming cost ~0.1 s: only worth it when traces were dropped
        gc.collect()
        release_memory()


def release_memory() -> bool:
    """Ask the C allocator to return freed memory to the system (glibc ``malloc_trim``).

    glibc keeps freed blocks in its arenas, so without this the process size does
    not fall after traces are dropped. Returns whether a trim was performed.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    try:
        libc = ctypes.CDLL(libc_name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True
