"""What ``model.sample(n)`` costs against NumPy drawing the same number of normal variates.

Run from the repository root::

    python benchmarks/bench_sample.py [--events N] [--repeats N]

Times one ``sample(N)`` call (default N = 2000) of the toy-study model of zfit#664,
``Sum([Gauss, Exponential], yields=...)`` on x in [0, 10] (mu = 5, sigma = 1,
lam = -0.01, yields 1000/1000), of the Gauss alone, of the Exponential alone (all
three by inverse CDF), and of a CrystalBall (by accept-reject in a traced kernel),
each with ``seed=`` and without (then the NumPy generator is seeded from zgrad's
generator state). The baseline is ``rng.normal(size=N)`` of a NumPy ``Generator``,
timed in the same rounds, so that the ratios hold on a busy machine.
"""

from __future__ import annotations

import _harness

_harness.fix_environment()

import argparse  # noqa: E402  (the imports below must follow the re-execution)

import numpy as np  # noqa: E402

import zgrad  # noqa: E402

P = zgrad.Parameter


def _models() -> dict[str, zgrad.models.BasePDF]:
    obs = zgrad.Space("x", limits=(0.0, 10.0))
    gauss = zgrad.models.Gauss(obs, P("mu", 5.0), P("sigma", 1.0))
    expo = zgrad.models.Exponential(obs, P("lam", -0.01))
    model = zgrad.models.Sum([gauss, expo], yields=[P("n_sig", 1000.0), P("n_bkg", 1000.0)])
    cb_obs = zgrad.Space("y", limits=(-10.0, 5.0))
    cb = zgrad.models.CrystalBall(cb_obs, P("m", 0.0), P("s", 1.0), P("alpha", 1.5), P("n", 3.0))
    return {"Sum(Gauss, Exponential)": model, "Gauss": gauss, "Exponential": expo, "CrystalBall": cb}


def bench(n_events: int, repeats: int, number: int) -> list[tuple[str, float]]:
    """Return ``(label, seconds per call)``, the NumPy baseline first."""
    rng = np.random.default_rng(1)
    calls = {"numpy rng.normal(size=N)": lambda: rng.normal(size=n_events)}
    for name, model in _models().items():
        if model.sample(n_events, seed=1).shape != (n_events,):  # traces the kernel outside the timings
            raise RuntimeError(f"{name}.sample({n_events}) returned a wrong shape")
        calls[f"{name}.sample(N, seed=1)"] = lambda m=model: m.sample(n_events, seed=1)
        calls[f"{name}.sample(N)"] = lambda m=model: m.sample(n_events)
    times = _harness.time_interleaved(calls, repeats=repeats, number=number)
    return [(label, _harness.median(samples)) for label, samples in times.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per sample (default 2000)")
    parser.add_argument("--repeats", type=int, default=30, help="timed samples per call (default 30)")
    parser.add_argument("--number", type=int, default=20, help="calls per timed sample (default 20)")
    args = parser.parse_args()

    _harness.print_table(["setting", "value"], _harness.describe_environment(), title="Environment")
    rows = bench(args.events, args.repeats, args.number)
    baseline = rows[0][1]
    _harness.print_table(
        ["call", "median per call", "/ numpy"],
        [(label, _harness.format_seconds(s), f"{s / baseline:.1f}x") for label, s in rows],
        title=f"model.sample(N), N = {args.events} (median of {args.repeats} samples of {args.number} calls)",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
