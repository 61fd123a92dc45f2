"""What a gradient through ``z.py_function`` costs compared with the same function written in TensorFlow.

Run from the repository root::

    python benchmarks/bench_bridge.py [--events N] [--repeats N]

The loss is ``-sum(log Phi(x - mu))`` over N float64 points (default 10^6), with the normal
CDF ``Phi(t) = (1 + erf(t / sqrt 2)) / 2``. ``erf`` is computed two ways: by TensorFlow
(``tf.math.erf``) and by ``scipy.special.erf`` through ``z.py_function(...,
elementwise=True)`` with its default numerical gradient; everything around it is the
same TensorFlow code. Three computations are timed in graph mode (each a cached
``z.function`` trace, the points passed as an argument):

- the loss value alone;
- value and gradient w.r.t. the scalar shift ``mu`` (a Parameter): the bridge costs
  1 + 2 evaluations of ``erf``;
- value and gradient w.r.t. the points themselves (an elementwise array input of
  N entries): again 1 + 2 evaluations.

Samples are taken round by round (one TensorFlow call, one bridge call), the ratio
is bridge / TensorFlow of the medians. The gradients of both versions are checked
against each other and the bridge's evaluations are counted.
"""

from __future__ import annotations

import _harness

_harness.fix_environment()

import argparse  # noqa: E402  (the imports below must follow the re-execution)
import math  # noqa: E402

import numpy as np  # noqa: E402
import scipy.special  # noqa: E402
import tensorflow as tf  # noqa: E402

import zgrad  # noqa: E402
from zgrad import z  # noqa: E402

tf.get_logger().setLevel("ERROR")  # see bench_function.py: TensorFlow's retracing log is misleading here

_SQRT2 = math.sqrt(2.0)


class _CountedErf:
    """``scipy.special.erf((x - mu) / sqrt 2)``, counting its calls."""

    __name__ = "scipy_erf"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: np.ndarray, mu: np.ndarray) -> np.ndarray:
        self.calls += 1
        return scipy.special.erf((x - mu) / _SQRT2)


def _make_losses(mu: zgrad.Parameter, body: _CountedErf) -> dict:
    def tf_loss(x: tf.Tensor) -> tf.Tensor:
        cdf = 0.5 * (1.0 + tf.math.erf((x - mu) / _SQRT2))
        return -tf.reduce_sum(tf.math.log(cdf))

    def bridge_loss(x: tf.Tensor) -> tf.Tensor:
        cdf = 0.5 * (1.0 + z.py_function(body, [x, mu], tf.float64, elementwise=True))
        return -tf.reduce_sum(tf.math.log(cdf))

    return {"tensorflow": tf_loss, "bridge": bridge_loss}


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
    """Compare the bridge's results with TensorFlow's; return lines describing the agreement."""
    lines = []
    for case in results["tensorflow"]:
        reference = results["tensorflow"][case]
        bridged = results["bridge"][case]
        pairs = [(reference, bridged)] if case == "value" else list(zip(reference, bridged, strict=True))
        worst = 0.0
        for a, b in pairs:
            # relative to the largest entry: a central difference is accurate relative to erf itself
            # (about 1), not to its derivative, and 1 + erf cancels in the left tail
            a, b = np.asarray(a), np.asarray(b)
            worst = max(worst, float(np.max(np.abs(b - a)) / np.max(np.abs(a))))
        if worst > 1e-6:
            raise RuntimeError(f"{case}: the bridge differs from TensorFlow by {worst:.2e} relative")
        lines.append(
            f"{case}: largest difference bridge vs TensorFlow, relative to the largest entry: {worst:.1e}"
        )
    return lines


def bench(n_events: int, repeats: int) -> tuple[list, list[str]]:
    """Return table rows ``(case, tf seconds, bridge seconds, ratio, erf evaluations)`` and check lines."""
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
            for name, funcs in computations.items():  # traces once each, outside the timings
                results[name][case] = zgrad.run(funcs[case](*args))
            body.calls = 0
            computations["bridge"][case](*args)
            evaluations = body.calls
            times = _harness.time_interleaved(
                {name: (lambda f=funcs[case], a=args: f(*a)) for name, funcs in computations.items()},
                repeats=repeats,
            )
            t_tf, t_bridge = _harness.median(times["tensorflow"]), _harness.median(times["bridge"])
            rows.append((case, t_tf, t_bridge, t_bridge / t_tf, evaluations))
    return rows, _check_agreement(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="points in the loss (default 10^6)")
    parser.add_argument("--repeats", type=int, default=21, help="timed calls of each version (default 21)")
    args = parser.parse_args()

    _harness.print_table(["setting", "value"], _harness.describe_environment(), title="Environment")
    rows, checks = bench(args.events, args.repeats)
    _harness.print_table(
        ["graph mode", "TensorFlow erf", "z.py_function(scipy erf)", "bridge / TF", "erf evaluations"],
        [
            (case, _harness.format_seconds(t_tf), _harness.format_seconds(t_bridge), f"{ratio:.2f}x", str(n))
            for case, t_tf, t_bridge, ratio, n in rows
        ],
        title=f"-sum(log Phi(x - mu)) over {args.events} float64 points "
        f"(median of {args.repeats} calls each)",
    )
    for line in checks:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
