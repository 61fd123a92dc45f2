"""What a minimizer's call costs beyond the graph: zgrad's objective against a bare concrete function.

Run from the repository root::

    python benchmarks/bench_calls.py [--events N] [--repeats N]

The model is the toy study's (``bench_toys.py``): an extended Gauss + Exponential on
[0, 10] with yields, N events (default 2000). Three requests of a minimizer are timed,
each in two ways, sampled round by round so that a busy machine slows all alike:

- *bare*: a concrete ``tf.function`` built here from the same Python as zgrad's
  unbinned-NLL kernel (its value, tape gradient and closed-form Hessian; the parameter
  vector assigned inside the graph, data of unknown length), called with a float64
  vector and converted to NumPy: the least a Python caller can pay for the same graph;
- *zgrad*: the callback iminuit calls (``fcn``, ``grad``, ``hess`` of the minimizer
  adapters' objective) at a new point each call, so no cached result is reused.

The difference is zgrad's Python per call: policy lookup, cache key, argument
handling, counting and NumPy conversion.
"""

from __future__ import annotations

import _harness

_harness.fix_environment()

import argparse  # noqa: E402  (the imports below must follow the re-execution)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zgrad  # noqa: E402
from zgrad.losses import _kernel  # noqa: E402
from zgrad.minimize import _objective  # noqa: E402


def _model():
    obs = zgrad.Space("x", limits=(0.0, 10.0))
    params = (
        zgrad.Parameter("mu", 5.0, lower=0.0, upper=10.0),
        zgrad.Parameter("sg", 1.0, lower=0.0, upper=10.0),
        zgrad.Parameter("lb", -0.01, lower=-1.0, upper=0.0),
        zgrad.Parameter("nsig", 1000.0, lower=0.0, upper=1e4),
        zgrad.Parameter("nbkg", 1000.0, lower=0.0, upper=1e4),
    )
    mu, sg, lb, ns, nb = params
    pdfs = [zgrad.models.Gauss(obs, mu, sg), zgrad.models.Exponential(obs, lb)]
    return zgrad.models.Sum(pdfs, yields=[ns, nb]), params


def _bare(kernel, params, order):
    """A concrete function computing what the objective computes, with nothing around it."""

    def body(point, x):
        for j, p in enumerate(params):
            p.assign(point[j])
        events = _kernel.Events(x, None, None)
        if order == 0:
            return kernel.tensor(events)
        if order == 1:
            return kernel._value_gradient(params, events)
        return kernel._value_gradient_hessian(params, events)

    specs = (tf.TensorSpec([len(params)], tf.float64), tf.TensorSpec([None], tf.float64))
    concrete = tf.function(body).get_concrete_function(*specs)
    return lambda point, x: tf.nest.map_structure(lambda t: t.numpy(), concrete(tf.constant(point), x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--number", type=int, default=200, help="calls per timing sample")
    args = parser.parse_args()
    _harness.print_table(["setting", "value"], _harness.describe_environment(), title="Environment")

    model, params = _model()
    zgrad.run.set_mode(graph=True)
    data = model.sample(args.events, seed=1)
    loss = zgrad.losses.ExtendedUnbinnedNLL(model, data)
    autodiff = zgrad.gradients.get("autodiff")
    objective = _objective.Objective(loss, params, autodiff, autodiff)
    x0 = np.array([float(p.numpy()) for p in params])
    x = tf.constant(data)
    rng = np.random.default_rng(0)

    def point():  # a new point each call: nothing cached is reused
        return x0 * (1.0 + 1e-6 * rng.standard_normal(x0.size))

    rows = []
    for label, order, method in (
        ("value (fcn)", 0, objective.fcn),
        ("value + gradient (grad)", 1, objective.grad),
        ("value + gradient + Hessian (hess)", 2, objective.hess),
    ):
        bare = _bare(loss._kernel, params, order)
        bare(point(), x), method(point())  # trace and warm up both
        samples = _harness.time_interleaved(
            {"bare": lambda b=bare: b(point(), x), "zgrad": lambda m=method: m(point())},
            repeats=args.repeats,
            number=args.number,
        )
        t_bare, t_zgrad = _harness.median(samples["bare"]), _harness.median(samples["zgrad"])
        rows.append(
            [
                label,
                _harness.format_seconds(t_bare),
                _harness.format_seconds(t_zgrad),
                ("-" if t_zgrad < t_bare else "") + _harness.format_seconds(abs(t_zgrad - t_bare)),
                f"{t_zgrad / t_bare:.2f}x",
            ]
        )
    _harness.print_table(
        ["call", "bare concrete", "zgrad objective", "overhead", "ratio"],
        rows,
        title=f"Per call at {args.events} events (median of {args.repeats} x {args.number} calls)",
    )


if __name__ == "__main__":
    main()
