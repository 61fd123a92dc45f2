"""Shared helpers of the benchmark scripts: fixed allocator settings, RSS, timing, tables.

Import this module and call :func:`fix_environment` at the top of a benchmark,
before NumPy or TensorFlow are imported. glibc reads its ``MALLOC_*`` settings
once, when the process starts, so they cannot be changed from inside a running
interpreter: the script is executed again with them set. Without fixed settings
some timings move by a factor of 2-4 from one machine configuration to another,
and RSS after freeing memory depends on where the allocator put each block.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

#: The environment every benchmark runs with (a value the user already set is kept).
FIXED_ENV = {
    # Blocks of 128 KiB and more get their own mapping, returned to the system on free;
    # a fixed threshold stops glibc from raising it dynamically as the run goes on.
    "MALLOC_MMAP_THRESHOLD_": "131072",
    # Trim the top of the heap once 128 KiB are free there, and keep only 128 KiB of slack.
    "MALLOC_TRIM_THRESHOLD_": "131072",
    "MALLOC_TOP_PAD_": "131072",
    # glibc would otherwise give TensorFlow's many threads up to 8 arenas per core.
    "MALLOC_ARENA_MAX": "2",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}

# Set in the child so that a second execution never happens, whatever the user exported.
_MARKER = "ZGRAD_BENCH_REEXECUTED"


def fix_environment() -> None:
    """Execute the current script again with :data:`FIXED_ENV` set, unless it already is.

    Returns only in a process whose environment holds every setting; the parent
    process is replaced (POSIX) or waits for the child and exits with its status.
    """
    missing = {k: v for k, v in FIXED_ENV.items() if k not in os.environ}
    if not missing or os.environ.get(_MARKER) == "1":
        return
    env = {**os.environ, **missing, _MARKER: "1"}
    # orig_argv keeps interpreter options such as -X or -m; argv[0] of sys.argv would lose them.
    argv = list(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execve(sys.executable, [sys.executable, *argv[1:]], env)
    sys.exit(subprocess.call([sys.executable, *argv[1:]], env=env))


def run_with_glibc_defaults(args: Sequence[str]) -> int:
    """Run the current script again in a child process with glibc's own, adaptive malloc settings.

    The ``MALLOC_*`` variables are removed from the child's environment (so glibc raises its
    mmap threshold as the process runs, as it does for users who set nothing) and the child is
    not re-executed with :data:`FIXED_ENV`. Returns the child's exit status.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update({_MARKER: "1", "TF_CPP_MIN_LOG_LEVEL": FIXED_ENV["TF_CPP_MIN_LOG_LEVEL"]})
    sys.stdout.flush()
    return subprocess.call([sys.executable, sys.argv[0], *args], env=env)


def describe_environment() -> list[tuple[str, str]]:
    """Return ``(name, value)`` rows describing the machine and the settings in force."""
    import numpy as np  # imported lazily: fix_environment must run before any heavy import

    rows = [
        ("python", platform.python_version()),
        ("numpy", np.__version__),
        ("platform", platform.platform(terse=True)),
        ("cores usable", str(_usable_cores())),
    ]
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        rows.insert(2, ("tensorflow", tf.__version__))
        rows.append(("GPUs", str(len(tf.config.list_physical_devices("GPU")))))
    rows.extend((name, os.environ.get(name, "<unset>")) for name in FIXED_ENV)
    return rows


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def rss_mib() -> float:
    """Resident set size of this process in MiB."""
    try:
        import psutil
    except ImportError:
        raise ImportError(
            "The benchmarks measure memory with psutil: install it with `pip install -e .[bench]`."
        ) from None
    return psutil.Process().memory_info().rss / 2**20


def time_call(func: Callable[[], Any], *, repeats: int, number: int = 1) -> list[float]:
    """Time ``func()``: ``repeats`` samples of ``number`` calls each; return seconds per call."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            func()
        samples.append((time.perf_counter() - start) / number)
    return samples


def time_interleaved(
    funcs: dict[str, Callable[[], Any]], *, repeats: int, number: int = 1
) -> dict[str, list[float]]:
    """Time several callables in turn, one sample of each per round; return seconds per call.

    Taking the samples round by round means a slow phase of the machine (other
    processes on a shared machine, frequency changes) hits every callable alike,
    so their ratios stay meaningful even when the absolute numbers drift.
    """
    samples: dict[str, list[float]] = {label: [] for label in funcs}
    for _ in range(repeats):
        for label, func in funcs.items():
            samples[label].extend(time_call(func, repeats=1, number=number))
    return samples


def median(samples: Sequence[float]) -> float:
    """Median of the samples."""
    return statistics.median(samples)


def format_seconds(seconds: float) -> str:
    """Format a duration with a unit that keeps three significant digits readable."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None) -> None:
    """Print rows under headers; the first column is left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))]
        return "  ".join(parts).rstrip()

    if title:
        print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def process_rss_mib() -> float:
    """Resident set size of this process in MiB, read without psutil where the system allows.

    On Linux it is read from ``/proc/self/statm``, so that workers running in a peer's virtual
    environment (which may lack psutil) can report it; elsewhere :func:`rss_mib` (psutil) is used.
    """
    if not os.path.exists("/proc/self/statm"):
        return rss_mib()
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def emit_json(record: dict, out_path: str | None) -> None:
    """Write a worker's ``record`` as one JSON object to ``out_path``, or print it when None.

    The writing half of :func:`run_json_worker`: every benchmark worker reports this way.
    """
    import json

    text = json.dumps(record)
    if out_path:
        with open(out_path, "w") as f:
            f.write(text)
    else:
        print(text)


def run_json_worker(command: Sequence[str], out_path: str, *, timeout: float) -> dict:
    """Run a worker process that writes one JSON object to ``out_path``; return that object.

    The object gains ``wall_s``, the wall time of the whole process (interpreter start and
    imports included). A worker that times out, exits with an error or writes nothing gives
    ``{"failed": reason}`` instead, with the last line of its standard error.
    """
    import json

    start = time.perf_counter()
    try:
        proc = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"failed": f"timed out after {timeout:g} s"}
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not os.path.exists(out_path):
        tail = [line for line in proc.stderr.splitlines() if line.strip()][-1:] or ["(no output)"]
        return {"failed": f"exit {proc.returncode}: {tail[0][:200]}"}
    with open(out_path) as f:
        record = json.load(f)
    record["wall_s"] = wall
    return record
