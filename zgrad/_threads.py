"""CPU count and TensorFlow thread-pool settings.

The process's core count (``zgrad.run.n_cpu``) lives here: library code reads it with
:func:`n_cpu`, never through ``zgrad.run``. Thread pools can only be sized before
TensorFlow's runtime starts. TensorFlow silently accepts re-setting the same values
afterwards, so zgrad checks the runtime state itself and refuses any change once it has
started.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from zgrad import _tf_compat

_lock = threading.Lock()
_settings: dict[str, int | None] = {"intra": None, "inter": None}
#: The process's core count; None until first read or set (then ``'auto'`` is resolved).
_process_n_cpu: int | None = None


def available_cpus() -> int:
    """Cores this process may run on (CPU affinity where the OS has it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def validate_n_cpu(n_cpu: Any) -> int:
    """Resolve ``'auto'`` to :func:`available_cpus`; accept a positive int; raise otherwise."""
    if n_cpu == "auto" and isinstance(n_cpu, str):
        return available_cpus()
    if isinstance(n_cpu, bool) or not isinstance(n_cpu, int):
        raise TypeError(f"n_cpu must be 'auto' or a positive int; got {n_cpu!r} ({type(n_cpu).__name__}).")
    if n_cpu <= 0:
        raise ValueError(f"n_cpu must be 'auto' or a positive int; got {n_cpu!r}.")
    return n_cpu


def n_cpu() -> int:
    """Return the process's core count: ``zgrad.run.n_cpu`` (``'auto'`` until set otherwise)."""
    global _process_n_cpu
    if _process_n_cpu is None:
        _process_n_cpu = available_cpus()
    return _process_n_cpu


def set_n_cpu(value: Any) -> None:
    """Set the process's core count (``'auto'`` or a positive int; raise otherwise)."""
    global _process_n_cpu
    _process_n_cpu = validate_n_cpu(value)


def _validate_threads(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int; got {value!r} ({type(value).__name__}).")
    return value


def runtime_started() -> bool:
    """Tell whether TensorFlow's runtime has started (never imports or starts it)."""
    if "tensorflow" not in sys.modules:
        return False
    return _tf_compat.eager_runtime_started()  # imports nothing new: tensorflow is loaded already


def set_threads(intra: Any, inter: Any) -> None:
    """Size TensorFlow's intra- and inter-op thread pools; only before its runtime starts."""
    intra = _validate_threads("intra", intra)
    inter = _validate_threads("inter", inter)
    with _lock:
        if runtime_started():
            raise RuntimeError(
                "TensorFlow's runtime has already started, so its thread pools can no longer be sized: "
                "thread settings must come before the first computation (call "
                "zgrad.run.set_cpus_explicit right after `import zgrad`). The settings are unchanged: "
                f"{dict(_settings)}."
            )
        import tensorflow as tf  # heavy; imported here on purpose, only when the user sizes the pools

        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
        _settings.update(intra=intra, inter=inter)


def get_threads() -> dict[str, int | None]:
    """Return the thread settings made through zgrad (None: TensorFlow's own default)."""
    with _lock:
        return dict(_settings)
