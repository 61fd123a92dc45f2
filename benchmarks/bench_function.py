"""What tracing costs and what it saves: eager vs. first trace vs. cached graph, and z.function's overhead.

Run from the repository root::

    python benchmarks/bench_function.py [--events N] [--repeats N]

Part 1 evaluates a Gaussian negative log-likelihood of N float64 events (the data
passed as an argument, ``mu`` and ``sigma`` zgrad Parameters read by the function)
three ways: eagerly (``graph=False``), as a first call that has to trace (the
cache cleared before each such sample), and as a call that reuses the cached
trace. The samples are taken round by round, so that a busy phase of the
machine slows all three alike.

Part 2 calls a trivial function (``x + 1``) wrapped by ``z.function`` and by a
bare ``tf.function``: the difference is what zgrad adds per call (reading the
policy, building the cache key, the LRU lookup).
"""

from __future__ import annotations

import _harness

_harness.fix_environment()

import argparse  # noqa: E402  (the imports below must follow the re-execution)
import math  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zgrad  # noqa: E402
from zgrad import z  # noqa: E402


def _make_nll():
    mu = zgrad.Parameter("mu", 0.2, lower=-5.0, upper=5.0)
    sigma = zgrad.Parameter("sigma", 1.1, lower=0.01, upper=10.0)
    norm = 0.5 * math.log(2.0 * math.pi)

    @z.function(wraps="loss")
    def gauss_nll(x):
        pull = (x - mu) / sigma
        n = tf.cast(tf.size(x), tf.float64)
        return tf.reduce_sum(0.5 * pull * pull) + n * (tf.math.log(sigma) + norm)

    def closed_form(x):
        m, s = float(mu.numpy()), float(sigma.numpy())
        return float(np.sum(0.5 * ((x - m) / s) ** 2) + x.size * (math.log(s) + norm))

    return gauss_nll, closed_form


def bench_nll(n_events: int, repeats: int) -> list[tuple[str, float]]:
    """Return ``(label, seconds per call)`` for the eager, first-trace and cached-graph calls."""
    sample = np.random.default_rng(1).normal(0.3, 1.2, size=n_events)
    # A tensor made once, as a loss holds its data: a NumPy argument would add a copy per call to
    # every column alike (z.function converts it to build the cache key, eager ops convert it per op).
    data = tf.constant(sample)
    nll, closed_form = _make_nll()
    expected = closed_form(sample)

    with zgrad.run.set_mode(graph=False):
        eager_value = float(nll(data))  # also starts the runtime, outside the timings

    def call():
        return nll(data)

    # Round by round, so that a slow phase of a shared machine hits all three alike; every
    # 20th round also clears the cache and times the call that has to trace again.
    eager, cold, cached = [], [], []
    with zgrad.run.set_mode(graph=True):
        for i in range(repeats):
            if i % 20 == 0:
                zgrad.run.clear_graph_cache()  # gc and malloc_trim run here, outside the timed call
                cold.extend(_harness.time_call(call, repeats=1))
            with zgrad.run.set_mode(graph=False):
                eager.extend(_harness.time_call(call, repeats=1))
            cached.extend(_harness.time_call(call, repeats=1))
        graph_value = float(call())
        info = zgrad.run.graph_cache_info()

    # the cached calls must really have reused the one trace, and all paths must agree
    hits_since_clear = (repeats - 1) % 20 + 1 + 1  # the cached calls after the last clear, graph_value's
    if (info.traces, info.misses, info.hits) != (1, 1, hits_since_clear):
        raise RuntimeError(f"expected one trace reused {hits_since_clear} times, got {info}")
    for value in (eager_value, graph_value):
        if not math.isclose(value, expected, rel_tol=1e-12):
            raise RuntimeError(f"NLL {value} differs from the NumPy value {expected}")
    return [
        ("eager call (graph=False)", _harness.median(eager)),
        ("first call, tracing (cold cache)", _harness.median(cold)),
        ("cached graph call", _harness.median(cached)),
    ]


def bench_overhead(repeats: int, number: int) -> list[tuple[str, float]]:
    """Return ``(label, seconds per call)`` for a trivial function under z.function and tf.function."""

    def add_one(x):
        return x + 1.0

    wrapped = z.function(add_one, wraps="tensor")
    bare = tf.function(add_one)
    x = tf.constant(2.0, dtype=tf.float64)
    zgrad.run.clear_graph_cache()  # so that the miss count below is this function's alone
    with zgrad.run.set_mode(graph=True):
        if not float(wrapped(x)) == float(bare(x)) == 3.0:  # traces both once, outside the timings
            raise RuntimeError("x + 1 did not give 3.0")
        times = _harness.time_interleaved(
            {"z": lambda: wrapped(x), "tf": lambda: bare(x), "eager": lambda: add_one(x)},
            repeats=repeats,
            number=number,
        )
        if zgrad.run.graph_cache_info().misses != 1:
            raise RuntimeError(f"z.function retraced: {zgrad.run.graph_cache_info()}")
    return [
        ("z.function (graph=True)", _harness.median(times["z"])),
        ("bare tf.function", _harness.median(times["tf"])),
        ("plain eager Python call", _harness.median(times["eager"])),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the NLL (default 10^5)")
    parser.add_argument("--repeats", type=int, default=500, help="timed calls per measurement (default 500)")
    args = parser.parse_args()

    _harness.print_table(["setting", "value"], _harness.describe_environment(), title="Environment")

    nll = bench_nll(args.events, args.repeats)
    eager, cold, cached = (seconds for _, seconds in nll)
    _harness.print_table(
        ["Gaussian NLL", "median time", "/ cached"],
        [(label, _harness.format_seconds(s), f"{s / cached:.1f}x") for label, s in nll],
        title=f"Part 1: Gaussian NLL of {args.events} float64 events (median of {args.repeats} calls, "
        f"first trace: median of {math.ceil(args.repeats / 20)})",
    )
    print(f"first trace / cached = {cold / cached:.1f}   eager / cached = {eager / cached:.2f}")
    print(
        f"a trace pays for itself after {math.ceil((cold - cached) / max(eager - cached, 1e-12))} calls"
        if eager > cached
        else "the eager call is not slower than the cached graph here"
    )

    overhead = bench_overhead(repeats=max(10, args.repeats // 10), number=1000)
    z_call, tf_call, _ = (seconds for _, seconds in overhead)
    _harness.print_table(
        ["trivial function x + 1", "median per call", "/ tf.function"],
        [(label, _harness.format_seconds(s), f"{s / tf_call:.2f}x") for label, s in overhead],
        title="Part 2: per-call overhead (median of samples of 1000 calls)",
    )
    print(
        f"z.function / tf.function = {z_call / tf_call:.2f}   "
        f"overhead added by z.function = {_harness.format_seconds(z_call - tf_call)} per call"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
