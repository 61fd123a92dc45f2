"""One contender of the reference fit, measured in a process of its own (``bench_fit.py`` runs this).

Run from the repository root, one contender and one size per process::

    python benchmarks/_fit_contenders.py --contender tf --events 100000 [--data x.npy] [--repeats 3]

It prints one JSON object on its last line of standard output (or writes it to
``--out``). A fresh process per contender is what makes the import time, the first
fit (which includes tracing) and the peak RSS of the whole process meaningful.

The reference workload: an extended unbinned fit of Gaussian(mu, sigma) +
Exponential(lam) with yields (n_sig, n_bkg) on x in [-5, 5], started at the truth
times (1.1, 1.1, 0.9, 1.1, 0.9), errordef 0.5, iminuit's MIGRAD then HESSE with the
default tolerance. Every contender gets the same parameter limits and lets Minuit
choose its initial steps.

Contenders: ``tf`` (hand-written TensorFlow, the baseline), ``zgrad-autodiff``,
``zgrad-numerical``, ``zgrad-minuit`` (zgrad under each gradient policy),
``numpy`` (iminuit with a NumPy NLL and Minuit's own gradient), ``jax`` and
``zfit`` (only where installed: this script never installs anything).
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()  # before any other import: the import times count from here

import argparse  # noqa: E402
import contextlib  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import _harness  # noqa: E402  (standard library only: usable in every peer's environment)

SEED = 20240607
SIGNAL_FRACTION = 0.3
LOWER, UPPER = -5.0, 5.0
NAMES = ("mu", "sigma", "lam", "n_sig", "n_bkg")
START_SCALE = (1.1, 1.1, 0.9, 1.1, 0.9)
#: The same limits for every contender (None: unbounded on that side).
LIMITS = {
    "mu": (-5.0, 5.0),
    "sigma": (0.05, None),
    "lam": (-5.0, 5.0),
    "n_sig": (0.0, None),
    "n_bkg": (0.0, None),
}
#: Calls per timing of one value or value+gradient evaluation (the median is reported).
N_EVAL_CALLS = 20

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def truth(n_events: int) -> dict[str, float]:
    """The true parameter values of a sample of ``n_events``."""
    n_sig = round(SIGNAL_FRACTION * n_events)
    return {"mu": 0.2, "sigma": 0.8, "lam": -0.4, "n_sig": float(n_sig), "n_bkg": float(n_events - n_sig)}


def start_values(n_events: int) -> list[float]:
    """The start values of every fit: the truth scaled by :data:`START_SCALE`."""
    t = truth(n_events)
    return [t[name] * scale for name, scale in zip(NAMES, START_SCALE, strict=True)]


def generate(n_events: int) -> Any:
    """The reference sample: truncated Gaussian by rejection, truncated exponential by inverse CDF."""
    import numpy as np

    t = truth(n_events)
    n_sig, n_bkg = int(t["n_sig"]), int(t["n_bkg"])
    rng = np.random.default_rng(SEED)
    signal = np.empty(0)
    while signal.size < n_sig:
        draw = rng.normal(t["mu"], t["sigma"], size=n_sig)
        signal = np.concatenate([signal, draw[(draw >= LOWER) & (draw <= UPPER)]])
    lam = t["lam"]
    u = rng.uniform(size=n_bkg)
    e_lo, e_hi = math.exp(lam * LOWER), math.exp(lam * UPPER)
    background = np.log(e_lo + u * (e_hi - e_lo)) / lam
    return np.concatenate([signal[:n_sig], background])


# --- contenders ---------------------------------------------------------------------------------
# Each has: imports() -> dict of import timings, build(data, x0), fit() -> dict, set_start(),
# fcn(x) and grad(x) as Minuit calls them (grad None where Minuit differentiates itself).


class _MinuitFit:
    """Shared by the contenders that hand iminuit an ``fcn`` (and ``grad``) themselves."""

    def fit(self) -> dict:
        import iminuit

        m = iminuit.Minuit(self.fcn, self.x0, grad=self.grad, name=NAMES)
        m.errordef = 0.5
        m.limits = [LIMITS[name] for name in NAMES]
        m.migrad()
        m.hesse()
        return {
            "values": list(map(float, m.values)),
            "errors": list(map(float, m.errors)),
            "fval": float(m.fval),
            "valid": bool(m.valid),
            "nfcn": int(m.nfcn),
            "ngrad": int(m.ngrad),
        }

    def set_start(self) -> None:
        pass  # each fit starts from self.x0


class HandTF(_MinuitFit):
    """tf.function NLL over tf.Variables assigned from Minuit's x; GradientTape gradient as grad=."""

    def imports(self) -> dict:
        import iminuit  # noqa: F401
        import tensorflow as tf

        self.tf = tf
        return {}

    def build(self, data: Any, x0: list[float]) -> None:
        tf = self.tf
        self.x0 = list(x0)
        x = tf.constant(data, dtype=tf.float64)
        self.variables = [tf.Variable(v, dtype=tf.float64) for v in x0]
        mu, sigma, lam, n_sig, n_bkg = self.variables
        sqrt2 = math.sqrt(2.0)
        gauss_const = math.sqrt(math.pi / 2.0)

        @tf.function
        def nll():
            gauss_norm = (
                sigma
                * gauss_const
                * (tf.math.erf((UPPER - mu) / (sigma * sqrt2)) - tf.math.erf((LOWER - mu) / (sigma * sqrt2)))
            )
            expo_norm = (tf.exp(lam * UPPER) - tf.exp(lam * LOWER)) / lam
            z = (x - mu) / sigma
            mixture = n_sig / gauss_norm * tf.exp(-0.5 * z * z) + n_bkg / expo_norm * tf.exp(lam * x)
            return n_sig + n_bkg - tf.reduce_sum(tf.math.log(mixture))

        @tf.function
        def value_and_grad():
            with tf.GradientTape() as tape:
                value = nll()
            return value, tf.stack(tape.gradient(value, self.variables))

        self._nll, self._value_and_grad = nll, value_and_grad

    def _assign(self, x: Any) -> None:
        for variable, value in zip(self.variables, x, strict=True):
            variable.assign(value)

    def fcn(self, x: Any) -> float:
        self._assign(x)
        return float(self._nll())

    def grad(self, x: Any) -> Any:
        self._assign(x)
        return self._value_and_grad()[1].numpy()

    def extras(self) -> dict:
        return {"tensorflow": self.tf.__version__}


class NumpyNLL(_MinuitFit):
    """iminuit with a plain NumPy NLL; Minuit computes its own numerical gradient."""

    grad = None

    def imports(self) -> dict:
        import iminuit  # noqa: F401
        import numpy as np

        self.np = np
        return {}

    def build(self, data: Any, x0: list[float]) -> None:
        self.x0, self.data = list(x0), data

    def fcn(self, p: Any) -> float:
        np, x = self.np, self.data
        mu, sigma, lam, n_sig, n_bkg = p
        scale = sigma * math.sqrt(2.0)
        gauss_norm = (
            sigma
            * math.sqrt(math.pi / 2.0)
            * (math.erf((UPPER - mu) / scale) - math.erf((LOWER - mu) / scale))
        )
        expo_norm = (math.exp(lam * UPPER) - math.exp(lam * LOWER)) / lam
        z = (x - mu) / sigma
        mixture = n_sig / gauss_norm * np.exp(-0.5 * z * z) + n_bkg / expo_norm * np.exp(lam * x)
        return float(n_sig + n_bkg - np.sum(np.log(mixture)))


class Jax(_MinuitFit):
    """JAX: jit-compiled NLL and jax.grad in float64, the gradient passed to Minuit."""

    def imports(self) -> dict:
        import iminuit  # noqa: F401
        import jax

        jax.config.update("jax_enable_x64", True)
        self.jax = jax
        return {}

    def build(self, data: Any, x0: list[float]) -> None:
        import jax.numpy as jnp
        import numpy as np
        from jax.scipy.special import erf

        self.x0, self.np = list(x0), np
        x = jnp.asarray(data, dtype=jnp.float64)

        def nll(p):
            mu, sigma, lam, n_sig, n_bkg = p[0], p[1], p[2], p[3], p[4]
            scale = sigma * math.sqrt(2.0)
            gauss_norm = (
                sigma * math.sqrt(math.pi / 2.0) * (erf((UPPER - mu) / scale) - erf((LOWER - mu) / scale))
            )
            expo_norm = (jnp.exp(lam * UPPER) - jnp.exp(lam * LOWER)) / lam
            z = (x - mu) / sigma
            mixture = n_sig / gauss_norm * jnp.exp(-0.5 * z * z) + n_bkg / expo_norm * jnp.exp(lam * x)
            return n_sig + n_bkg - jnp.sum(jnp.log(mixture))

        self._nll, self._grad = self.jax.jit(nll), self.jax.jit(self.jax.grad(nll))
        self._as_input = lambda p: jnp.asarray(p, dtype=jnp.float64)

    def fcn(self, p: Any) -> float:
        return float(self._nll(self._as_input(p)))

    def grad(self, p: Any) -> Any:
        return self.np.asarray(self._grad(self._as_input(p)))

    def extras(self) -> dict:
        return {"jax": self.jax.__version__}


class Zgrad:
    """zgrad's models, loss and Minuit adapter under ``zgrad.run.set_mode(autograd=policy)``."""

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self._scope = contextlib.ExitStack()

    def imports(self) -> dict:
        start = time.perf_counter()
        import zgrad

        bare = time.perf_counter() - start
        heavy = {name: name in sys.modules for name in ("tensorflow", "numdifftools", "iminuit")}
        zgrad.models, zgrad.losses, zgrad.minimize  # noqa: B018  (imports TensorFlow)
        self.zgrad = zgrad
        return {"import_zgrad_s": bare, "imported_by_import_zgrad": heavy}

    def build(self, data: Any, x0: list[float]) -> None:
        zgrad = self.zgrad
        self._scope.enter_context(zgrad.run.set_mode(autograd=self.policy))
        self.x0 = list(x0)
        obs = zgrad.Space("x", limits=(LOWER, UPPER))
        self.params = [
            zgrad.Parameter(name, value, *LIMITS[name]) for name, value in zip(NAMES, x0, strict=True)
        ]
        mu, sigma, lam, n_sig, n_bkg = self.params
        gauss = zgrad.models.Gauss(obs=obs, mu=mu, sigma=sigma)
        expo = zgrad.models.Exponential(obs=obs, lam=lam)
        model = zgrad.models.Sum([gauss, expo], yields=[n_sig, n_bkg])
        self.loss = zgrad.losses.ExtendedUnbinnedNLL(model, data)
        self.data, self.model = data, model  # for a new loss on the same model (_new_loss)
        self.strategy = None
        if self.policy != "minuit":
            self.strategy = zgrad.gradients.get(self.policy)
            if self.policy == "numerical":  # what the Minuit adapter uses in MIGRAD's loop
                self.strategy = self.strategy.with_budget("fast")
        if self.strategy is None:
            self.grad = None

    def fit(self) -> dict:
        result = self.zgrad.minimize.Minuit().minimize(self.loss)
        return {
            "values": [float(result.values[name]) for name in NAMES],
            "errors": [float(result.errors[name]) for name in NAMES],
            "fval": float(result.fmin),
            "valid": bool(result.valid),
            "nfcn": int(result.nfcn),
            "ngrad": int(result.ngrad),
            "nhess": int(result.info.get("nhess", 0)),
            "message": result.message,
        }

    def set_start(self) -> None:
        for param, value in zip(self.params, self.x0, strict=True):
            param.assign(value)

    def _assign(self, x: Any) -> None:
        for param, value in zip(self.params, x, strict=True):
            param.assign(value)

    # the calls Minuit makes through zgrad's adapter, without its counters and its value cache
    def fcn(self, x: Any) -> float:
        self._assign(x)
        return float(self.loss.value())

    def grad(self, x: Any) -> Any:
        self._assign(x)
        return self.zgrad.derivatives(self.loss, self.params, strategy=self.strategy).gradient

    def extras(self) -> dict:
        info = self.zgrad.run.graph_cache_info()
        out: dict[str, Any] = {"graph_traces": info.traces, "graph_misses": info.misses}
        if self.policy == "autodiff":
            self.set_start()
            out["hessian_eval_s"] = _median_time(
                lambda: self.zgrad.derivatives(self.loss, self.params, strategy=self.strategy, hessian=True)
            )
        if self.policy == "numerical":
            out.update(self._numerical_budget())
        if self.policy == "autodiff":
            out.update(self._new_loss())
        return out

    def _new_loss(self) -> dict:
        """A new loss on the same model with new data of the same size, built and fitted (issue 15).

        Timed round by round against a warm fit of the existing loss; the new data are a bootstrap
        resample of the sample, so the fit does the same work.
        """
        import numpy as np

        rng = np.random.default_rng(SEED + 1)
        existing = self.loss
        samples: dict[str, list[float]] = {"new": [], "warm": []}
        for _ in range(3):
            # drawn outside the timing: the draw is not the loss's cost
            fresh = rng.choice(self.data, size=self.data.size)
            self.set_start()
            start = time.perf_counter()
            self.loss = self.zgrad.losses.ExtendedUnbinnedNLL(self.model, fresh)
            self.fit()
            samples["new"].append(time.perf_counter() - start)
            self.loss = existing
            self.set_start()
            start = time.perf_counter()
            self.fit()
            samples["warm"].append(time.perf_counter() - start)
        self.set_start()
        return {f"{key}_loss_round_s": statistics.median(times) for key, times in samples.items()}

    def _numerical_budget(self) -> dict:
        """Target 4: calls and time of one fast-budget gradient, and numdifftools' defaults for scale."""
        import numdifftools as nd
        import numpy as np

        self.set_start()
        n = len(self.params)
        fast = self.zgrad.gradients.get("numerical").with_budget("fast")
        calls = [0]

        def counted() -> Any:
            calls[0] += 1
            return self.loss()

        result = fast.value_gradient(counted, self.params)
        fast_calls = calls[0]
        exact = self.zgrad.derivatives(self.loss, self.params, strategy="autodiff").gradient
        calls[0] = 0

        def nd_objective(x: Any) -> float:
            self._assign(x)
            return float(counted())

        gradient = nd.Gradient(nd_objective)  # numdifftools' defaults, as a user of the defaults gets them
        timed = {
            "fast": lambda: fast.value_gradient(self.loss, self.params),
            "value": lambda: float(self.loss.value()),
        }
        # round by round, numdifftools included, so that a busy phase of the machine hits all alike
        samples: dict[str, list[float]] = {"fast": [], "value": [], "nd": []}
        for _ in range(3):
            calls[0] = 0
            start = time.perf_counter()
            gradient(np.asarray(self.x0))
            samples["nd"].append(time.perf_counter() - start)
            nd_calls = calls[0]
            self.set_start()
            for name, times in _interleaved(timed, rounds=N_EVAL_CALLS // 3).items():
                samples[name].extend(times)
        self.set_start()
        return {
            "fast_calls": fast_calls,
            "fast_n_evals": int(result.n_evals),
            "fast_budget_limit": 2 * n + 1,
            "fast_gradient_s": statistics.median(samples["fast"]),
            "value_call_s": statistics.median(samples["value"]),
            "fast_vs_autodiff_max_rel": float(
                np.max(np.abs(result.gradient - exact) / np.maximum(np.abs(exact), 1e-300))
            ),
            "numdifftools_calls": nd_calls,
            "numdifftools_s": statistics.median(samples["nd"]),
        }


class Zfit:
    """zfit's own models, loss and Minuit wrapper (default gradient), then its HESSE."""

    def imports(self) -> dict:
        import zfit

        self.zfit = zfit
        return {}

    def build(self, data: Any, x0: list[float]) -> None:
        zfit = self.zfit
        self.x0 = list(x0)
        obs = zfit.Space("x", limits=(LOWER, UPPER))
        self.params = [
            zfit.Parameter(name, value, *(b if b is not None else 1e9 for b in LIMITS[name]))
            for name, value in zip(NAMES, x0, strict=True)
        ]
        mu, sigma, lam, n_sig, n_bkg = self.params
        gauss = zfit.pdf.Gauss(mu=mu, sigma=sigma, obs=obs, extended=n_sig)
        expo = zfit.pdf.Exponential(lam=lam, obs=obs, extended=n_bkg)
        model = zfit.pdf.SumPDF([gauss, expo])
        self.loss = zfit.loss.ExtendedUnbinnedNLL(model, zfit.Data.from_numpy(obs=obs, array=data))
        self.minimizer = zfit.minimize.Minuit()
        self.grad = lambda x: self.loss.gradient()  # noqa: E731  (at the parameters set by fcn)

    def fit(self) -> dict:
        result = self.minimizer.minimize(self.loss)
        result.hesse()
        values = [float(result.params[p]["value"]) for p in self.params]
        errors = [float(result.params[p]["hesse"]["error"]) for p in self.params]
        minuit = result.info.get("minuit")
        return {
            "values": values,
            "errors": errors,
            "fval": float(result.fmin),
            "valid": bool(result.valid),
            "nfcn": int(minuit.nfcn) if minuit is not None else None,
            "ngrad": int(minuit.ngrad) if minuit is not None else None,
        }

    def set_start(self) -> None:
        for param, value in zip(self.params, self.x0, strict=True):
            param.set_value(value)

    def fcn(self, x: Any) -> float:
        for param, value in zip(self.params, x, strict=True):
            param.set_value(value)
        return float(self.loss.value())

    def extras(self) -> dict:
        return {"zfit": self.zfit.__version__}


#: Libraries whose absence turns a contender's row into 'not installed' instead of an error.
_OPTIONAL = {"jax", "jaxlib", "zfit"}

CONTENDERS = {
    "tf": HandTF,
    "zgrad-autodiff": lambda: Zgrad("autodiff"),
    "zgrad-numerical": lambda: Zgrad("numerical"),
    "zgrad-minuit": lambda: Zgrad("minuit"),
    "numpy": NumpyNLL,
    "jax": Jax,
    "zfit": Zfit,
}


# --- measuring ----------------------------------------------------------------------------------


def _median_time(func: Any, calls: int = N_EVAL_CALLS) -> float:
    func()  # a first call can still build something (a trace, a kernel): not an evaluation's cost
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _interleaved(funcs: dict[str, Any], rounds: int) -> dict[str, list[float]]:
    for func in funcs.values():
        func()
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(rounds):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            samples[name].append(time.perf_counter() - start)
    return samples


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def measure(name: str, n_events: int, data_path: str | None, repeats: int) -> dict:
    """Run the whole measurement of one contender in this (fresh) process and return its record."""
    contender = CONTENDERS[name]()
    out: dict[str, Any] = {"contender": name, "events": n_events}
    out.update(contender.imports())
    import numpy as np

    import_done = time.perf_counter()
    out["import_s"] = import_done - _T_START
    data = np.load(data_path) if data_path else generate(n_events)
    if data.size != n_events:
        raise ValueError(f"{data_path} holds {data.size} events, not {n_events}")
    build_start = time.perf_counter()
    out["data_s"] = build_start - import_done
    x0 = start_values(n_events)
    contender.build(data, x0)
    first = contender.fit()
    first_done = time.perf_counter()
    out["first_fit_s"] = first_done - build_start  # build, trace and fit: MIGRAD + HESSE
    out["process_total_s"] = first_done - _T_START - out["data_s"]
    out["first_fit"] = first

    warm_times, warm = [], None
    for _ in range(repeats):
        contender.set_start()
        start = time.perf_counter()
        warm = contender.fit()
        warm_times.append(time.perf_counter() - start)
    out["warm_fit_s"] = statistics.median(warm_times)
    out["warm_fit_samples_s"] = warm_times
    out["warm_fit"] = warm

    contender.set_start()
    out["value_eval_s"] = _median_time(lambda: contender.fcn(x0))
    grad = getattr(contender, "grad", None)
    out["value_grad_eval_s"] = None if grad is None else _median_time(lambda: (contender.fcn(x0), grad(x0)))
    # Minuit's grad call alone (zgrad's adapter serves the next fcn call at that point from it)
    out["grad_eval_s"] = None if grad is None else _median_time(lambda: grad(x0))
    out.update(contender.extras() if hasattr(contender, "extras") else {})
    out["peak_rss_mib"] = _peak_rss_mib()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contender", required=True, choices=sorted(CONTENDERS))
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--data", help="a .npy file with the sample (generated here when omitted)")
    parser.add_argument("--repeats", type=int, default=3, help="warm fits (the median is reported)")
    parser.add_argument("--out", help="write the JSON record here instead of standard output")
    args = parser.parse_args()
    if importlib.util.find_spec("zgrad") is None:  # run from a checkout without installing
        sys.path.insert(0, _REPO_ROOT)
    try:
        record = measure(args.contender, args.events, args.data, args.repeats)
    except ImportError as error:
        if (error.name or "").split(".")[0] not in _OPTIONAL:
            raise
        record = {
            "contender": args.contender,
            "events": args.events,
            "skipped": f"not installed ({error.name})",
        }
    _harness.emit_json(record, args.out)


if __name__ == "__main__":
    main()
