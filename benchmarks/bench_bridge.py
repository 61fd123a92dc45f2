"""What a gradient through ``z.py_function`` costs compared with the same function written in TensorFlow.

Run from the repository root::

    python benchmarks/bench_bridge.py [--events N] [--repeats N] [--allocator both|fixed|glibc]

By default it runs twice: with the fixed malloc settings of every benchmark here, then in a
child process with glibc's adaptive defaults (what a user who sets nothing gets). The bridged
code is NumPy-heavy, and the fixed settings give every array of 128 KiB or more a fresh
mapping, so each 8 MB temporary pays its page faults (about 0.7 ms here) and threads
faulting pages at once contend for the process's memory map: the two runs differ by much.

The loss is ``-sum(log Phi(x - mu))`` over N float64 points (default 10^6), with the normal
CDF ``Phi(t) = (1 + erf(t / sqrt 2)) / 2``. Everything but ``erf`` is the same TensorFlow
code; ``erf`` is computed

- by TensorFlow (``tf.math.erf``): the baseline;
- by ``scipy.special.erf`` through ``z.py_function(..., elementwise=True)`` with its default
  numerical gradient: with the default ``threads`` (``zgrad.run.n_cpu`` slices for a value,
  one piece when differentiated in a graph), with ``threads=1`` and with ``threads=n_cpu``;
- by ``scipy.special.erf`` with its closed-form derivative given as ``gradient=`` (NumPy,
  default threads): what the bridge itself costs when no finite differences are needed.

Three computations are timed in graph mode (each a cached ``z.function`` trace, the points
passed as an argument): the loss value; value and gradient w.r.t. the scalar shift ``mu``
(a Parameter); value and gradient w.r.t. the points themselves (an elementwise array input
of N entries). Samples are taken round by round (one call of each version in turn); each
ratio is a version's median over TensorFlow's. The gradients of all versions are checked
against TensorFlow's, and the work of SciPy's ``erf`` is counted in evaluations of all N
points (slices add up).
"""

from __future__ import annotations

import _harness

_harness.fix_environment()

import argparse  # noqa: E402  (the imports below must follow the re-execution)
import math  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402
import scipy.special  # noqa: E402
import tensorflow as tf  # noqa: E402

import zgrad  # noqa: E402
from zgrad import z  # noqa: E402

tf.get_logger().setLevel("ERROR")  # see bench_function.py: TensorFlow's retracing log is misleading here

_SQRT2 = math.sqrt(2.0)


class _CountedErf:
    """``scipy.special.erf((x - mu) / sqrt 2)``, counting the points it evaluates (thread-safe)."""

    __name__ = "scipy_erf"

    def __init__(self) -> None:
        self.points = 0
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray, mu: np.ndarray) -> np.ndarray:
        with self._lock:
            self.points += np.size(x)
        return scipy.special.erf((x - mu) / _SQRT2)


def _erf_derivative(x: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form derivatives of ``erf((x - mu) / sqrt 2)`` w.r.t. x and mu."""
    d_x = math.sqrt(2.0 / math.pi) * np.exp(-0.5 * (x - mu) ** 2)
    return d_x, -d_x


#: The bridged versions: label -> keyword arguments of z.py_function.
_BRIDGES = {
    "default": {},
    "threads=1": {"threads": 1},
    f"threads={zgrad.run.n_cpu}": {"threads": zgrad.run.n_cpu},
    "closed-form gradient": {"gradient": _erf_derivative},
}


def _make_losses(mu: zgrad.Parameter, body: _CountedErf) -> dict:
    def tf_loss(x: tf.Tensor) -> tf.Tensor:
        cdf = 0.5 * (1.0 + tf.math.erf((x - mu) / _SQRT2))
        return -tf.reduce_sum(tf.math.log(cdf))

    def bridge_loss(options: dict):
        def loss(x: tf.Tensor) -> tf.Tensor:
            erf = z.py_function(body, [x, mu], tf.float64, elementwise=True, **options)
            return -tf.reduce_sum(tf.math.log(0.5 * (1.0 + erf)))

        return loss

    return {"tensorflow": tf_loss, **{label: bridge_loss(options) for label, options in _BRIDGES.items()}}


def _computations(loss) -> dict:
    """The three timed computations of one loss, as cached z.functions of the points."""

    @z.function(wraps="loss")
    def value(x):
        return loss(x)

    @z.function(wraps="gradient")
    def wrt_shift(x, mu):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(mu)
            y = loss(x)
        return y, tape.gradient(y, mu)

    @z.function(wraps="gradient")
    def wrt_points(x):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            y = loss(x)
        return y, tape.gradient(y, x)

    return {"value": value, "gradient w.r.t. shift": wrt_shift, "gradient w.r.t. points": wrt_points}


def _check_agreement(results: dict) -> list[str]:
    """Compare every bridged version's results with TensorFlow's; return lines describing the agreement."""
    lines = []
    for label in _BRIDGES:
        for case, reference in results["tensorflow"].items():
            bridged = results[label][case]
            pairs = [(reference, bridged)] if case == "value" else list(zip(reference, bridged, strict=True))
            worst = 0.0
            for a, b in pairs:
                # relative to the largest entry: a central difference is accurate relative to erf
                # itself (about 1), not to its derivative, and 1 + erf cancels in the left tail
                a, b = np.asarray(a), np.asarray(b)
                worst = max(worst, float(np.max(np.abs(b - a)) / np.max(np.abs(a))))
            if worst > 1e-6:
                raise RuntimeError(f"{label}, {case}: differs from TensorFlow by {worst:.2e} relative")
            lines.append(f"{label}, {case}: largest difference from TensorFlow, relative: {worst:.1e}")
    return lines


def bench(n_events: int, repeats: int) -> tuple[list, list[str]]:
    """Return table rows ``(case, version, seconds, ratio to TF, erf evaluations)`` and check lines."""
    points = tf.constant(np.random.default_rng(1).normal(0.2, 1.0, n_events))
    mu = zgrad.Parameter("mu", 0.1)
    body = _CountedErf()
    computations = {name: _computations(loss) for name, loss in _make_losses(mu, body).items()}
    arguments = {
        "value": (points,),
        "gradient w.r.t. shift": (points, mu),
        "gradient w.r.t. points": (points,),
    }

    rows, results = [], {name: {} for name in computations}
    with zgrad.run.set_mode(graph=True):
        for case, args in arguments.items():
            evaluations = {}
            for name, funcs in computations.items():  # traces once each, outside the timings
                results[name][case] = zgrad.run(funcs[case](*args))
                body.points = 0
                funcs[case](*args)
                evaluations[name] = body.points / n_events
            times = _harness.time_interleaved(
                {name: (lambda f=funcs[case], a=args: f(*a)) for name, funcs in computations.items()},
                repeats=repeats,
            )
            t_tf = _harness.median(times["tensorflow"])
            for name in computations:
                t = _harness.median(times[name])
                rows.append((case, name, t, t / t_tf, evaluations[name]))
    return rows, _check_agreement(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="points in the loss (default 10^6)")
    parser.add_argument("--repeats", type=int, default=21, help="timed calls of each version (default 21)")
    parser.add_argument(
        "--allocator",
        choices=["both", "fixed", "glibc"],
        default="both",
        help="malloc settings: the harness's fixed ones, glibc's adaptive defaults (in a child "
        "process), or both one after the other (default)",
    )
    args = parser.parse_args()
    child = ["--events", str(args.events), "--repeats", str(args.repeats), "--allocator", "glibc"]
    if args.allocator == "glibc":
        if any(name.startswith("MALLOC_") for name in os.environ):  # still the fixed settings
            return _harness.run_with_glibc_defaults(child)
        return _run(args, "glibc's adaptive malloc defaults")
    status = _run(args, "fixed malloc settings (see benchmarks/README.md)")
    if args.allocator == "both" and status == 0:
        return _harness.run_with_glibc_defaults(child)
    return status


def _run(args: argparse.Namespace, allocator: str) -> int:
    print(f"\n=== {allocator} ===")
    _harness.print_table(["setting", "value"], _harness.describe_environment(), title="Environment")
    rows, checks = bench(args.events, args.repeats)
    _harness.print_table(
        ["graph mode", "erf computed by", "time", "/ TensorFlow", "SciPy erf evaluations"],
        [
            (case, name, _harness.format_seconds(t), f"{ratio:.2f}x", f"{n:g}")
            for case, name, t, ratio, n in rows
        ],
        title=f"-sum(log Phi(x - mu)) over {args.events} float64 points, median of {args.repeats} "
        f"calls each; zgrad.run.n_cpu = {zgrad.run.n_cpu}",
    )
    for line in checks:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
