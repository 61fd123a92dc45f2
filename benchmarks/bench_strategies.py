"""Gradient strategies compared on a Gaussian NLL: evaluations and time per gradient, as ratios.

Run from the repository root::

    python benchmarks/bench_strategies.py [--events N] [--repeats N]

A Gaussian unbinned negative log-likelihood of N float64 events (default 10^5) in
(mu, sigma) is differentiated by every built-in strategy that provides a gradient:
``'autodiff'`` (GradientTape, traced), ``'numerical'`` with its accurate budget
(extrapolation with error estimates) and with its fast budget (central differences,
what the minimizer adapters use). Each is also compared with numdifftools' defaults
(``nd.Gradient`` on the same loss: 151 evaluations for 5 parameters, 61 for 2) and
with a plain value call, the unit every numerical gradient is made of. Samples are
taken round by round so that a busy phase of the machine slows all alike.
"""

from __future__ import annotations

import _harness

_harness.fix_environment()

import argparse  # noqa: E402  (the imports below must follow the re-execution)

import numdifftools as nd  # noqa: E402
import numpy as np  # noqa: E402

import zgrad  # noqa: E402


def _loss(n_events: int):
    rng = np.random.default_rng(20240607)
    data = rng.normal(0.2, 0.8, size=int(1.2 * n_events))
    data = data[np.abs(data) < 5.0][:n_events]
    obs = zgrad.Space("x", limits=(-5.0, 5.0))
    mu = zgrad.Parameter("mu", 0.25, lower=-5.0, upper=5.0)
    sigma = zgrad.Parameter("sigma", 0.9, lower=0.05, upper=10.0)
    return zgrad.losses.UnbinnedNLL(zgrad.models.Gauss(obs, mu, sigma), data)


class _Counting:
    """The loss, counting value evaluations (what a numerical strategy pays for)."""

    def __init__(self, loss):
        self.loss = loss
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.loss()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=float, default=1e5)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    loss = _loss(int(args.events))
    params = loss.params
    counting = _Counting(loss)
    strategies = {
        "autodiff": zgrad.gradients.get("autodiff"),
        "numerical (accurate)": zgrad.gradients.get("numerical"),
        "numerical (fast)": zgrad.gradients.get("numerical").with_budget("fast"),
    }

    def nd_default() -> np.ndarray:
        start = np.array([float(p.numpy()) for p in params])

        def f(x: np.ndarray) -> float:
            for p, v in zip(params, x, strict=True):
                p.assign(v)
            return float(counting())

        try:
            return nd.Gradient(f)(start)
        finally:
            for p, v in zip(params, start, strict=True):
                p.assign(v)

    funcs = {"value call": lambda: float(counting())}
    for label, strategy in strategies.items():
        funcs[label] = lambda s=strategy: zgrad.derivatives(counting, params, strategy=s)
    funcs["numdifftools defaults"] = nd_default

    evals, values = {}, {}
    for label, func in funcs.items():  # warm-up: traces, and the evaluation count of each
        counting.calls = 0
        out = func()
        evals[label] = counting.calls
        values[label] = out
    samples = _harness.time_interleaved(funcs, repeats=args.repeats)
    reference = zgrad.derivatives(loss, params, strategy="autodiff").gradient
    base = _harness.median(samples["value call"])
    rows = []
    for label in funcs:
        t = _harness.median(samples[label])
        out = values[label]
        grad = getattr(out, "gradient", out)
        relative = np.max(np.abs(np.asarray(grad) - reference) / np.abs(reference))
        deviation = "" if label == "value call" else f"{relative:.1e}"
        rows.append((label, evals[label], _harness.format_seconds(t), f"{t / base:.1f}", deviation))
    _harness.print_table(["environment", "value"], _harness.describe_environment())
    _harness.print_table(
        ["gradient by", "evaluations", "time", "x value call", "max rel. dev. vs autodiff"],
        rows,
        title=f"Gaussian NLL, {int(args.events)} events, 2 parameters (median of {args.repeats})",
    )
    fast = _harness.median(samples["numerical (fast)"])
    nd_time = _harness.median(samples["numdifftools defaults"])
    print(
        f"\nfast budget vs numdifftools defaults: {nd_time / fast:.1f}x cheaper "
        f"({evals['numerical (fast)']} vs {evals['numdifftools defaults']} evaluations)"
    )


if __name__ == "__main__":
    main()
