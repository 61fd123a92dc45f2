"""The toy study of ``bench_toys.py``: the workload, the timed loop and a worker's command line.

zfit issue #664's toy study: an extended fit of Gauss(mu, sg) + Exponential(lb) with
yields (nsig, nbkg) on x in [0, 10]. Each toy resets the parameters to the start
values, draws exactly :data:`N_EVENTS` events from the model at those values (a fixed
total, not a Poisson number), builds the loss where the contender builds one per toy,
and fits MIGRAD + HESSE with errordef 0.5.

This module imports only the standard library and ``_harness`` (NumPy lazily), so
that every contender's worker can use it under its own interpreter: the workers of
JAX, zfit and RooFit run in virtual environments that do not have zgrad.

A contender is an object with these methods, called in this order:

- ``imports()``: import what it needs; return ``{library: version}``;
- ``setup(seed)``: build the model (and whatever it keeps across toys);
- per toy: ``reset()`` (parameters to :data:`START`), ``sample()`` (the data),
  ``loss(data)`` (the loss, or ``data`` where the contender has none of its own),
  ``fit(loss)`` returning ``(valid, values, errors)`` in the order of :data:`NAMES`;
- optionally ``extras()``: a dict of further facts for the record.
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import _harness

N_EVENTS = 2000
LOWER, UPPER = 0.0, 10.0
ERRORDEF = 0.5
#: Start values of every toy; the toys are drawn at these values, too.
START = {"mu": 5.0, "sg": 1.0, "lb": -0.01, "nsig": 1000.0, "nbkg": 1000.0}
NAMES = tuple(START)
LIMITS = {"mu": (0.0, 10.0), "sg": (0.0, 10.0), "lb": (-1.0, 0.0), "nsig": (0.0, 1e4), "nbkg": (0.0, 1e4)}
#: A fitted value closer than this many errors to a limit counts as at the limit.
AT_LIMIT_ERRORS = 0.1
#: RSS is read after this many toys, and after the last one, to show growth.
EARLY_TOYS = 10
#: Below this |lb| the normalisation expm1(lb * width) / lb is summed as a series (no 0/0 at lb = 0).
SMALL_SLOPE = 1e-4


class Unavailable(Exception):
    """Raised by a contender's ``imports()`` when it cannot run here; the message says why."""


def expo_norm_series(lb: Any) -> Any:
    """expm1(lb * w) / lb for small |lb|: the first four terms of its series (w = UPPER - LOWER)."""
    w = UPPER - LOWER
    return w + lb * w**2 / 2 + lb**2 * w**3 / 6 + lb**3 * w**4 / 24


def sample_numpy(rng: Any, n: int = N_EVENTS) -> Any:
    """``n`` events of the model at :data:`START`: a binomial signal count, then each shape.

    The truncated Gaussian by rejection, the truncated exponential by its inverse CDF.
    """
    import numpy as np

    mu, sg, lb = START["mu"], START["sg"], START["lb"]
    n_sig = int(rng.binomial(n, START["nsig"] / (START["nsig"] + START["nbkg"])))
    signal = np.empty(0)
    while signal.size < n_sig:
        draw = rng.normal(mu, sg, size=n_sig)
        signal = np.concatenate([signal, draw[(draw >= LOWER) & (draw <= UPPER)]])
    u = rng.uniform(size=n - n_sig)
    background = LOWER + np.log1p(u * math.expm1(lb * (UPPER - LOWER))) / lb
    return np.concatenate([signal[:n_sig], background])


def at_limit(values: list[float], errors: list[float]) -> bool:
    """Whether any fitted value is within :data:`AT_LIMIT_ERRORS` errors of one of its limits."""
    for name, value, error in zip(NAMES, values, errors, strict=True):
        lower, upper = LIMITS[name]
        if min(value - lower, upper - value) <= AT_LIMIT_ERRORS * error:
            return True
    return False


def _one_toy(contender: Any) -> dict:
    start = time.perf_counter()
    contender.reset()
    data = contender.sample()
    sampled = time.perf_counter()
    loss = contender.loss(data)
    built = time.perf_counter()
    valid, values, errors = contender.fit(loss)
    done = time.perf_counter()
    return {
        "total_s": done - start,
        "sample_s": sampled - start,
        "loss_s": built - sampled,
        "fit_s": done - built,
        "valid": bool(valid),
        "values": [float(v) for v in values],
        "errors": [float(e) for e in errors],
    }


def run_toys(contender: Any, *, max_toys: int, budget_s: float, min_toys: int, seed: int) -> dict:
    """The timed loop: toys until ``max_toys``, or until ``budget_s`` is spent after ``min_toys``.

    ``budget_s`` of 0 means no time limit. The first toy's time includes ``setup`` (building
    the model), since a user waits for both before the first result.
    """
    start = time.perf_counter()
    contender.setup(seed)
    setup_s = time.perf_counter() - start
    toys: list[dict] = []
    rss_early = None
    while len(toys) < max_toys:
        if budget_s and len(toys) >= min_toys and time.perf_counter() - start >= budget_s:
            break
        toys.append(_one_toy(contender))
        if len(toys) == EARLY_TOYS:
            rss_early = _harness.process_rss_mib()
    record = {"setup_s": setup_s, "rss_early_mib": rss_early, "rss_last_mib": _harness.process_rss_mib()}
    record.update(summarize(toys))
    record["first_toy_s"] = setup_s + toys[0]["total_s"]
    return record


def _median_of(toys: list[dict], key: str) -> float | None:
    return statistics.median(t[key] for t in toys) if key in toys[0] else None


def summarize(toys: list[dict]) -> dict:
    """Medians and counts over the toys (dicts as :func:`_one_toy` makes them; step times optional).

    The per-toy columns are kept for the JSON record.
    """
    valid = [t for t in toys if t["valid"]]
    mus = [t["values"][NAMES.index("mu")] for t in valid]
    return {
        "toys": len(toys),
        "valid": len(valid),
        "at_limit": sum(at_limit(t["values"], t["errors"]) for t in toys),
        "median_toy_s": statistics.median(t["total_s"] for t in toys),
        # None where the contender's loop does not time the steps apart (zgrad.toys)
        **{f"median_{step}_s": _median_of(toys, f"{step}_s") for step in ("sample", "loss", "fit")},
        "loop_s": sum(t["total_s"] for t in toys),
        "mu_mean": statistics.fmean(mus) if mus else None,
        "mu_sd": statistics.stdev(mus) if len(mus) > 1 else None,
        "per_toy": {key: [t[key] for t in toys] for key in ("total_s", "valid", "values", "errors")},
    }


def parse_worker_args(names: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="One contender of bench_toys.py, in a process of its own.")
    parser.add_argument("--contender", required=True, choices=names)
    parser.add_argument("--toys", type=int, default=200, help="at most this many toys")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of toys (0: no limit)")
    parser.add_argument("--min-toys", type=int, default=EARLY_TOYS, help="toys run whatever the budget")
    parser.add_argument("--seed", type=int, default=664)
    parser.add_argument("--out", help="write the JSON record here instead of standard output")
    return parser.parse_args()


def worker_main(contenders: dict[str, Callable[[], Any]], optional: set[str], t_start: float) -> None:
    """Measure one contender in this process and write its JSON record.

    ``t_start`` is the worker's first moment (before its imports); ``optional`` names the
    libraries whose absence makes the record say ``not installed`` instead of failing.
    """
    args = parse_worker_args(sorted(contenders))
    record: dict[str, Any] = {"contender": args.contender}
    contender = contenders[args.contender]()
    try:
        record["versions"] = contender.imports()
    except Unavailable as error:
        record["skipped"] = str(error)
    except ImportError as error:
        if (error.name or "").split(".")[0] not in optional:
            raise
        record["skipped"] = f"not installed ({error.name})"
    else:
        record["import_s"] = time.perf_counter() - t_start
        # a contender with a loop of its own (zgrad.toys) brings run_study
        loop = getattr(contender, "run_study", None) or functools.partial(run_toys, contender)
        record.update(loop(max_toys=args.toys, budget_s=args.budget, min_toys=args.min_toys, seed=args.seed))
        record.update(contender.extras() if hasattr(contender, "extras") else {})
        record["worker_total_s"] = time.perf_counter() - t_start
    _harness.emit_json(record, args.out)
