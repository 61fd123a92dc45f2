"""Does clearing the graph cache give memory back? A scan of many traces, cleared, then repeated.

Run from the repository root::

    python benchmarks/bench_memory_scan.py [--traces N] [--events N]

One ``z.function`` (a Gaussian NLL restricted to an observable range) is called
with N different ranges. The range limits are Python floats, which are part of
the graph-cache key by value, so every call is a new trace; the cache is made
large enough to keep them all. The 10^6 float64 events are passed as an
argument, not captured as a constant, so no trace holds a copy of the data.

RSS is recorded when the scan starts, at its peak, and after
``zgrad.run.clear_graph_cache()``; then the same scan and clear run again.

Targets (the script exits with status 1 if one fails):

* after each clear, RSS is within 10 % of where the first scan started;
* the second scan's peak is at most 5 % above the first scan's peak
  (caching is bounded; a leak would grow round after round).
"""

from __future__ import annotations

import _harness

_harness.fix_environment()

import argparse  # noqa: E402  (the imports below must follow the re-execution)
import math  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zgrad  # noqa: E402
from zgrad import z  # noqa: E402

START_TOLERANCE = 0.10  # RSS after a clear, relative to the scan's start
PEAK_TOLERANCE = 0.05  # second scan's peak, relative to the first scan's peak


def _make_nll():
    mu = zgrad.Parameter("mu", 0.1, lower=-2.0, upper=2.0)
    sigma = zgrad.Parameter("sigma", 1.05, lower=0.1, upper=5.0)

    @z.function(wraps="loss")
    def nll_in_range(x, lower, upper):
        inside = tf.boolean_mask(x, (x >= lower) & (x < upper))
        pull = (inside - mu) / sigma
        scale = sigma * math.sqrt(2.0)
        # the Gaussian's integral over [lower, upper) normalises the PDF in the range
        norm = (
            sigma
            * math.sqrt(0.5 * math.pi)
            * (tf.math.erf((upper - mu) / scale) - tf.math.erf((lower - mu) / scale))
        )
        n = tf.cast(tf.size(inside), tf.float64)
        return tf.reduce_sum(0.5 * pull * pull) + n * tf.math.log(norm)

    return nll_in_range


def _ranges(n_traces: int) -> list[tuple[float, float]]:
    # distinct Python floats: each pair is a new cache key, hence a new trace
    return [(-3.0 + 0.01 * i, 0.5 + 0.01 * i) for i in range(n_traces)]


def scan(nll, data: tf.Tensor, ranges: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Call ``nll`` once per range; return (peak RSS in MiB, RSS at the end, seconds)."""
    peak = _harness.rss_mib()
    start = time.perf_counter()
    for lower, upper in ranges:
        value = float(nll(data, lower, upper))
        if not math.isfinite(value):
            raise RuntimeError(f"non-finite NLL {value} for the range [{lower}, {upper})")
        peak = max(peak, _harness.rss_mib())
    seconds = time.perf_counter() - start
    end = _harness.rss_mib()
    return max(peak, end), end, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=200, help="traces per scan (default 200)")
    parser.add_argument("--events", type=int, default=1_000_000, help="float64 events (default 10^6)")
    args = parser.parse_args()

    _harness.print_table(["setting", "value"], _harness.describe_environment(), title="Environment")
    # This scan retraces on purpose (one trace per range), so the warning that a function
    # retraces too often is expected here and says nothing about the result.
    warnings.simplefilter("ignore", zgrad.errors.RetracingWarning)
    zgrad.run.set_graph_cache_size(max(256, args.traces))

    data = tf.constant(np.random.default_rng(2).normal(0.1, 1.0, size=args.events))
    nll = _make_nll()
    ranges = _ranges(args.traces)
    # Start TensorFlow's runtime and its one-time tracing machinery before the baseline.
    nll(data, -10.0, 10.0)
    zgrad.run.clear_graph_cache()

    rows = []
    start = _harness.rss_mib()
    rows.append(("start of scan 1", start, ""))
    peaks = []
    for round_ in (1, 2):
        peak, end, seconds = scan(nll, data, ranges)
        info = zgrad.run.graph_cache_info()
        if info.traces != args.traces or info.misses != args.traces:
            raise RuntimeError(f"expected {args.traces} cached traces after the scan, got {info}")
        peaks.append(peak)
        rows.append((f"peak of scan {round_}", peak, f"{seconds:.1f} s, {info.traces} traces"))
        rows.append((f"end of scan {round_}", end, ""))
        clear_start = time.perf_counter()
        zgrad.run.clear_graph_cache()
        cleared = _harness.rss_mib()
        rows.append(
            (f"after clear {round_}", cleared, f"clear took {time.perf_counter() - clear_start:.2f} s")
        )

    _harness.print_table(
        ["moment", "RSS MiB", "vs start", "note"],
        [(label, f"{rss:.0f}", f"{rss - start:+.0f}", note) for label, rss, note in rows],
        title=f"Memory scan: {args.traces} traces x 2 rounds, {args.events} float64 events as an argument",
    )
    growth = peaks[0] - start
    per_trace = growth / args.traces
    print(f"scan growth {growth:.0f} MiB = {1024 * per_trace:.0f} KiB per trace")

    checks = []
    for round_ in (1, 2):
        cleared = next(rss for label, rss, _ in rows if label == f"after clear {round_}")
        kept = cleared - start
        share = f", {100 * kept / growth:.0f} % of the scan's growth" if growth > 0 else ""
        checks.append(
            (
                f"after clear {round_} within {START_TOLERANCE:.0%} of start",
                abs(kept) <= START_TOLERANCE * start,
                f"{kept:+.0f} MiB ({100 * kept / start:+.1f} %{share})",
            )
        )
    checks.append(
        (
            f"peak of scan 2 within {PEAK_TOLERANCE:.0%} of peak 1",
            peaks[1] <= (1 + PEAK_TOLERANCE) * peaks[0],
            f"{peaks[1] - peaks[0]:+.0f} MiB ({100 * (peaks[1] / peaks[0] - 1):+.1f} %)",
        )
    )
    _harness.print_table(
        ["target", "result", "measured"],
        [(name, "PASS" if ok else "FAIL", detail) for name, ok, detail in checks],
        title="Targets",
    )
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
