"""Gradient strategies compared on a Gaussian NLL: evaluations, time and accuracy, as ratios.

Run from the repository root::

    python benchmarks/bench_strategies.py [--events N] [--repeats N]

A Gaussian unbinned negative log-likelihood of N events (default 10^5) on [-5, 5] in
(mu, sigma) is differentiated by every built-in strategy that provides a gradient:
``'autodiff'`` (GradientTape, traced), ``'numerical'`` with its accurate budget
(extrapolation with error estimates) and with its fast budget (central differences,
what the minimizer adapters use). Each is also compared with numdifftools' defaults
(``nd.Gradient`` on the same loss: 151 evaluations for 5 parameters, 61 for 2; the old
accurate budget wrapped exactly this) and with a plain value call, the unit every
numerical gradient is made of. Samples are taken round by round so that a busy phase
of the machine slows all alike.

A second table measures accuracy against the closed form of the truncated Gaussian NLL
(gradient and Hessian) in three settings: float64, ``mu`` 1e-6 below its upper limit,
and float32 Parameters and data. Each numerical row gives its evaluations, its largest
relative error, whether its own error estimate covers that error, and the ratios of
evaluations and error to numdifftools' defaults in the same run (and, for the float64
gradient, the evaluations before the engine was rewritten: :data:`BEFORE`).
numdifftools knows nothing of limits: its evaluations outside them are counted.
"""

from __future__ import annotations

import _harness

_harness.fix_environment()

import argparse  # noqa: E402  (the imports below must follow the re-execution)

import numdifftools as nd  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy import stats  # noqa: E402

import zgrad  # noqa: E402

#: Evaluations per gradient on this workload (float64, 2 parameters) before the rewrite.
BEFORE = {"numerical (accurate)": 61, "numerical (fast)": 5}
_LIMITS = (-5.0, 5.0)
_START = (0.25, 0.9)


def _events(n_events: int) -> np.ndarray:
    rng = np.random.default_rng(20240607)
    data = rng.normal(0.2, 0.8, size=int(1.2 * n_events))
    return data[(data > _LIMITS[0]) & (data < _LIMITS[1])][:n_events]


def _loss(data: np.ndarray, dtype: tf.DType = tf.float64, mu_upper: float = 5.0):
    obs = zgrad.Space("x", limits=_LIMITS)
    mu = zgrad.Parameter("mu", _START[0], lower=-5.0, upper=mu_upper, dtype=dtype)
    sigma = zgrad.Parameter("sigma", _START[1], lower=0.05, upper=10.0, dtype=dtype)
    return zgrad.losses.UnbinnedNLL(zgrad.models.Gauss(obs, mu, sigma), data.astype(dtype.as_numpy_dtype))


def _closed_form(data: np.ndarray, mu: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of the Gaussian NLL truncated to ``_LIMITS``, in float64."""
    n, d = data.size, data - mu
    s0, s2 = d.sum(), (d * d).sum()
    a, b = ((lim - mu) / sigma for lim in _LIMITS)
    pa, pb = stats.norm.pdf(a), stats.norm.pdf(b)
    z = stats.norm.cdf(b) - stats.norm.cdf(a)
    moment = [a**k * pa - b**k * pb for k in range(4)]  # a^k phi(a) - b^k phi(b)
    dz = np.array([moment[0], moment[1]]) / sigma
    d2z_ms = moment[2] - moment[0]
    d2z = np.array([[moment[1], d2z_ms], [d2z_ms, moment[3] - 2 * moment[1]]]) / sigma**2
    grad = np.array([-s0 / sigma**2, n / sigma - s2 / sigma**3]) + n * dz / z
    hess_data = np.array([[n, 2 * s0 / sigma], [2 * s0 / sigma, 3 * s2 / sigma**2 - n]]) / sigma**2
    return grad, hess_data + n * (d2z / z - np.outer(dz, dz) / z**2)


class _Counting:
    """The loss, counting value evaluations and, when eager, those outside the Parameters' limits."""

    def __init__(self, loss):
        self.loss = loss
        self.calls = 0
        self.outside = 0

    def __call__(self):
        self.calls += 1
        if tf.executing_eagerly():  # autodiff traces this call: there are no values to look at
            values = [(float(p.numpy()), p) for p in self.loss.params]
            self.outside += any(v < p.lower or v > p.upper for v, p in values)
        return self.loss()


def _nd_default(counting: _Counting, level: str, full_output: bool = False):
    """numdifftools with its defaults on the loss (Parameters assigned in place, then restored)."""
    params = counting.loss.params
    start = np.array([float(p.numpy()) for p in params])

    def f(x: np.ndarray) -> float:
        for p, v in zip(params, x, strict=True):
            p.assign(v)
        return float(counting())

    method = nd.Gradient if level == "gradient" else nd.Hessian
    try:
        return method(f, full_output=full_output)(start)
    finally:
        for p, v in zip(params, start, strict=True):
            p.assign(v)


def _methods(counting: _Counting, level: str) -> dict:
    """Per method: a call returning ``(estimate, error estimate)`` of ``level`` for the counted loss."""
    params = counting.loss.params
    numerical = zgrad.gradients.get("numerical")

    def nd_call() -> tuple:
        out = _nd_default(counting, level, full_output=True)
        return out.estimate, np.reshape(out.error_estimate, np.shape(out.estimate))

    def autodiff() -> tuple:
        r = zgrad.derivatives(counting, params, strategy="autodiff", hessian=level == "hessian")
        return (r.hessian if level == "hessian" else r.gradient), None

    if level == "hessian":
        hess = numerical.hessian
        return {
            "autodiff": autodiff,
            "numerical (accurate)": lambda: (lambda r: (r.hessian, r.hessian_error))(hess(counting, params)),
            "numdifftools defaults": nd_call,
        }
    methods = {"autodiff": autodiff}
    for label, strategy in (
        ("numerical (accurate)", numerical),
        ("numerical (fast)", numerical.with_budget("fast")),
    ):
        methods[label] = lambda s=strategy: (lambda r: (r.gradient, r.error))(
            s.value_gradient(counting, params)
        )
    methods["numdifftools defaults"] = nd_call
    return methods


def _relative_error(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    if truth.ndim == 1:
        return np.abs(estimate - truth) / np.abs(truth)
    diag = np.abs(np.diag(truth))
    return np.abs(estimate - truth) / np.maximum(np.abs(truth), np.sqrt(np.outer(diag, diag)))


def _accuracy_rows(setting: str, data: np.ndarray, dtype: tf.DType, mu_upper: float) -> list[tuple]:
    loss = _loss(data, dtype, mu_upper)
    counting = _Counting(loss)
    x = [float(p.numpy()) for p in loss.params]
    stored = data.astype(dtype.as_numpy_dtype).astype(np.float64)
    truth = dict(zip(("gradient", "hessian"), _closed_form(stored, *x), strict=True))
    rows = []
    for level in ("gradient", "hessian"):
        measured = {}
        for label, method in _methods(counting, level).items():
            counting.calls = counting.outside = 0
            estimate, error = method()
            deviation = np.abs(np.asarray(estimate) - truth[level])
            covered = None if error is None else bool(np.all(deviation <= np.asarray(error)))
            measured[label] = (
                counting.calls,
                counting.outside,
                float(_relative_error(estimate, truth[level]).max()),
                covered,
            )
        base_calls, _, base_error, _ = measured["numdifftools defaults"]
        for label, (calls, outside, rel, covered) in measured.items():
            before = BEFORE.get(label) if setting == "float64" and level == "gradient" else None
            exact = label == "autodiff"  # one traced call: no evaluations to count, no error estimate
            rows.append(
                (
                    f"{setting}, {level}",
                    label,
                    "-" if exact else calls,
                    "-" if before is None else f"{calls / before:.2f}",
                    outside,
                    f"{rel:.1e}",
                    {None: "-", True: "yes", False: "NO"}[covered],
                    "-" if exact else f"{calls / base_calls:.2f}",
                    f"{rel / base_error:.2g}" if base_error > 0 else "-",
                )
            )
    return rows


def _timing_rows(data: np.ndarray, repeats: int) -> tuple[list[tuple], dict[str, int]]:
    """Evaluations, median time and accuracy against the closed form of every gradient, float64."""
    loss = _loss(data)
    params = loss.params
    counting = _Counting(loss)
    funcs = {"value call": lambda: float(counting())}
    funcs["autodiff"] = lambda: zgrad.derivatives(counting, params, strategy="autodiff")
    numerical = zgrad.gradients.get("numerical")
    for label, strategy in (
        ("numerical (accurate)", numerical),
        ("numerical (fast)", numerical.with_budget("fast")),
    ):
        funcs[label] = lambda s=strategy: zgrad.derivatives(counting, params, strategy=s)
    funcs["numdifftools defaults"] = lambda: _nd_default(counting, "gradient")

    evals, values = {}, {}
    for label, func in funcs.items():  # warm-up: traces, and the evaluation count of each
        counting.calls = 0
        values[label] = func()
        evals[label] = counting.calls
    samples = _harness.time_interleaved(funcs, repeats=repeats)
    truth, _ = _closed_form(data, *_START)
    base = _harness.median(samples["value call"])
    rows = []
    for label in funcs:
        t = _harness.median(samples[label])
        grad = np.asarray(getattr(values[label], "gradient", values[label]))
        deviation = "" if label == "value call" else f"{_relative_error(grad, truth).max():.1e}"
        rows.append((label, evals[label], _harness.format_seconds(t), f"{t / base:.1f}", deviation))
    return rows, evals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=float, default=1e5)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    data = _events(int(args.events))
    rows, evals = _timing_rows(data, args.repeats)
    _harness.print_table(["environment", "value"], _harness.describe_environment())
    _harness.print_table(
        ["gradient by", "evaluations", "time", "x value call", "max rel. error vs closed form"],
        rows,
        title=f"Gaussian NLL, {data.size} events, 2 parameters (median of {args.repeats})",
    )
    fast, nd_calls = evals["numerical (fast)"], evals["numdifftools defaults"]
    print(f"\nfast budget vs numdifftools defaults: {nd_calls / fast:.1f}x fewer evaluations ", end="")
    print(f"({fast} vs {nd_calls})")
    settings = (("float64", tf.float64, 5.0), ("mu 1e-6 below limit", tf.float64, _START[0] + 1e-6))
    settings += (("float32", tf.float32, 5.0),)
    accuracy = [row for setting in settings for row in _accuracy_rows(setting[0], data, *setting[1:])]
    _harness.print_table(
        [
            "setting",
            "method",
            "evals",
            "vs before",
            "outside",
            "max rel. err",
            "covered",
            "evals / nd",
            "err / nd",
        ],
        accuracy,
        title="Accuracy against the closed form: ratios to numdifftools defaults in this run; 'vs before': "
        + ", ".join(f"{k} {v}" for k, v in BEFORE.items())
        + " evaluations before the rewrite",
    )


if __name__ == "__main__":
    main()
