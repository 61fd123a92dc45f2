"""The peers of ``bench_toys.py``, each measured in a process of its own; never imports zgrad.

Run from the repository root, one contender per process (``bench_toys.py`` does this)::

    python benchmarks/_toy_peers.py --contender tf [--toys 200] [--budget 60] [--out rec.json]

Contenders: ``tf`` (hand-written TensorFlow; ``tf-grad`` without the Hessian), ``jax``,
``zfit`` and ``roofit``. Each imports only what it needs, so the interpreter of a virtual
environment that has just that peer (and iminuit and NumPy for ``tf`` and ``jax``) can
run it. The workload and
the timed loop are in ``_toy_common.py``.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()  # before any other import: the import times count from here

import math  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

import _toy_common as common  # noqa: E402

SQRT2 = math.sqrt(2.0)
GAUSS_CONST = math.sqrt(math.pi / 2.0)


class _IminuitToys:
    """NumPy sampling and iminuit's MIGRAD + HESSE with the contender's value, gradient and Hessian.

    With ``with_hessian`` False Minuit gets the gradient only and computes second derivatives itself.
    """

    with_hessian = True

    def setup(self, seed: int) -> None:
        import numpy as np

        self.np, self.rng = np, np.random.default_rng(seed)
        self.x0 = np.array([common.START[name] for name in common.NAMES])
        self.build()

    def reset(self) -> None:
        pass  # every fit is a new Minuit started at self.x0

    def sample(self) -> Any:
        return common.sample_numpy(self.rng)

    def fit(self, data: Any) -> tuple[bool, list[float], list[float]]:
        import iminuit

        value, grad, hess = self.callables(data)
        exact = {}
        if self.with_hessian:  # g2 too, as zgrad's adapter does: Minuit2 may call G2 without it
            exact = {"hessian": hess, "g2": lambda x: self.np.diag(hess(x))}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "hessian overrides g2", iminuit.util.IMinuitWarning)
            m = iminuit.Minuit(value, self.x0, grad=grad, name=common.NAMES, **exact)
        m.errordef = common.ERRORDEF
        m.limits = [common.LIMITS[name] for name in common.NAMES]
        m.migrad()
        m.hesse()
        return bool(m.valid), list(m.values), list(m.errors)


class HandTF(_IminuitToys):
    """``tf.function`` value, tape gradient and tape Hessian over one float64 vector of parameters.

    The data are a ``[None]``-shaped argument, so every toy reuses the three traces.
    """

    def imports(self) -> dict:
        import iminuit
        import tensorflow as tf

        self.tf = tf
        return {"tensorflow": tf.__version__, "iminuit": iminuit.__version__}

    def _nll(self, p: Any, x: Any) -> Any:
        tf = self.tf
        mu, sg, lb, nsig, nbkg = tf.unstack(p)
        gauss_norm = (
            sg
            * GAUSS_CONST
            * (
                tf.math.erf((common.UPPER - mu) / (sg * SQRT2))
                - tf.math.erf((common.LOWER - mu) / (sg * SQRT2))
            )
        )
        small = tf.abs(lb) < common.SMALL_SLOPE
        safe_lb = tf.where(small, tf.constant(-1.0, tf.float64), lb)  # no 0/0 in the unused branch
        width = common.UPPER - common.LOWER
        expo_norm = tf.where(small, common.expo_norm_series(lb), tf.math.expm1(safe_lb * width) / safe_lb)
        z = (x - mu) / sg
        density = nsig / gauss_norm * tf.exp(-0.5 * z * z) + nbkg / expo_norm * tf.exp(
            lb * (x - common.LOWER)
        )
        return nsig + nbkg - tf.reduce_sum(tf.math.log(density))

    def build(self) -> None:
        tf = self.tf
        spec = [tf.TensorSpec([5], tf.float64), tf.TensorSpec([None], tf.float64)]
        nll = self._nll

        @tf.function(input_signature=spec)
        def value(p: Any, x: Any) -> Any:
            return nll(p, x)

        @tf.function(input_signature=spec)
        def gradient(p: Any, x: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(p)
                y = nll(p, x)
            return tape.gradient(y, p)

        @tf.function(input_signature=spec)
        def hessian(p: Any, x: Any) -> Any:
            with tf.GradientTape() as outer:
                outer.watch(p)
                g = gradient(p, x)
            return outer.jacobian(g, p)

        self._value, self._gradient, self._hessian = value, gradient, hessian

    def loss(self, data: Any) -> Any:
        return self.tf.constant(data, self.tf.float64)

    def callables(self, x: Any) -> tuple:
        tf = self.tf
        return (
            lambda p: float(self._value(tf.constant(p, tf.float64), x)),
            lambda p: self._gradient(tf.constant(p, tf.float64), x).numpy(),
            lambda p: self._hessian(tf.constant(p, tf.float64), x).numpy(),
        )

    def extras(self) -> dict:
        traces = [f.experimental_get_tracing_count() for f in (self._value, self._gradient, self._hessian)]
        return {"traces": sum(traces)}


class HandTFGradient(HandTF):
    """As :class:`HandTF`, but Minuit gets only the gradient (its own Hessian, numerical HESSE)."""

    with_hessian = False


class Jax(_IminuitToys):
    """``jax.jit`` of the value, ``jax.grad`` and ``jax.hessian`` in float64."""

    def imports(self) -> dict:
        import iminuit
        import jax

        jax.config.update("jax_enable_x64", True)
        self.jax = jax
        return {"jax": jax.__version__, "iminuit": iminuit.__version__}

    def build(self) -> None:
        import jax.numpy as jnp
        from jax.scipy.special import erf

        def nll(p: Any, x: Any) -> Any:
            mu, sg, lb, nsig, nbkg = p[0], p[1], p[2], p[3], p[4]
            gauss_norm = (
                sg
                * GAUSS_CONST
                * (erf((common.UPPER - mu) / (sg * SQRT2)) - erf((common.LOWER - mu) / (sg * SQRT2)))
            )
            small = jnp.abs(lb) < common.SMALL_SLOPE
            safe_lb = jnp.where(small, -1.0, lb)  # no 0/0 (and no NaN gradient) in the unused branch
            width = common.UPPER - common.LOWER
            expo_norm = jnp.where(small, common.expo_norm_series(lb), jnp.expm1(safe_lb * width) / safe_lb)
            z = (x - mu) / sg
            density = nsig / gauss_norm * jnp.exp(-0.5 * z * z) + nbkg / expo_norm * jnp.exp(
                lb * (x - common.LOWER)
            )
            return nsig + nbkg - jnp.sum(jnp.log(density))

        jax = self.jax
        self._value, self._gradient = jax.jit(nll), jax.jit(jax.grad(nll))
        self._hessian = jax.jit(jax.hessian(nll))
        self.jnp = jnp

    def loss(self, data: Any) -> Any:
        return self.jnp.asarray(data, dtype=self.jnp.float64)

    def callables(self, x: Any) -> tuple:
        jnp, np = self.jnp, self.np
        return (
            lambda p: float(self._value(jnp.asarray(p), x)),
            lambda p: np.asarray(self._gradient(jnp.asarray(p), x)),
            lambda p: np.asarray(self._hessian(jnp.asarray(p), x)),
        )


class Zfit:
    """zfit's way: one sampler (``create_sampler``) resampled per toy, one loss, zfit's Minuit."""

    def imports(self) -> dict:
        import zfit

        self.zfit = zfit
        return {"zfit": zfit.__version__}

    def setup(self, seed: int) -> None:
        zfit = self.zfit
        zfit.settings.set_seed(seed)
        obs = zfit.Space("x", limits=(common.LOWER, common.UPPER))
        self.params = [
            zfit.Parameter(name, common.START[name], *common.LIMITS[name]) for name in common.NAMES
        ]
        mu, sg, lb, nsig, nbkg = self.params
        gauss = zfit.pdf.Gauss(mu=mu, sigma=sg, obs=obs, extended=nsig)
        expo = zfit.pdf.Exponential(lam=lb, obs=obs, extended=nbkg)
        model = zfit.pdf.SumPDF([gauss, expo])
        self.sampler = model.create_sampler(n=common.N_EVENTS)  # draws at the values of now: START
        self._loss = zfit.loss.ExtendedUnbinnedNLL(model, self.sampler)
        self.minimizer = zfit.minimize.Minuit()

    def reset(self) -> None:
        for param in self.params:
            param.set_value(common.START[param.name])

    def sample(self) -> Any:
        self.sampler.resample()
        return self.sampler

    def loss(self, data: Any) -> Any:
        return self._loss  # the zfit way: one loss over the sampler, built in setup

    def fit(self, loss: Any) -> tuple[bool, list[float], list[float]]:
        result = self.minimizer.minimize(loss)
        result.hesse()
        values = [float(result.params[p]["value"]) for p in self.params]
        errors = [float(result.params[p]["hesse"]["error"]) for p in self.params]
        return bool(result.valid), values, errors


class RooFit:
    """RooFit: ``generate`` from the model, then ``fitTo`` (Extended, Save, cpu backend) with HESSE."""

    def imports(self) -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the wheel's "alpha stage" notice
            import ROOT

        self.ROOT = ROOT
        return {"root": str(ROOT.gROOT.GetVersion())}

    def setup(self, seed: int) -> None:
        ROOT = self.ROOT
        ROOT.RooMsgService.instance().setGlobalKillBelow(ROOT.RooFit.WARNING)
        ROOT.RooRandom.randomGenerator().SetSeed(seed)
        self.x = ROOT.RooRealVar("x", "x", common.LOWER, common.UPPER)
        self.params = [
            ROOT.RooRealVar(name, name, common.START[name], *common.LIMITS[name]) for name in common.NAMES
        ]
        mu, sg, lb, nsig, nbkg = self.params
        self.gauss = ROOT.RooGaussian("gauss", "gauss", self.x, mu, sg)
        self.expo = ROOT.RooExponential("expo", "expo", self.x, lb)
        self.model = ROOT.RooAddPdf(
            "model", "model", ROOT.RooArgList(self.gauss, self.expo), ROOT.RooArgList(nsig, nbkg)
        )
        self.observables = ROOT.RooArgSet(self.x)
        RF = ROOT.RooFit
        self.options = [
            RF.Extended(True),
            RF.Save(True),
            RF.EvalBackend("cpu"),
            RF.Hesse(True),
            RF.PrintLevel(-1),
        ]

    def reset(self) -> None:
        for param in self.params:
            param.setVal(common.START[param.GetName()])
            param.setError(0.0)

    def sample(self) -> Any:
        return self.model.generate(self.observables, common.N_EVENTS)

    def loss(self, data: Any) -> Any:
        return data  # fitTo builds its likelihood from the data itself

    def fit(self, data: Any) -> tuple[bool, list[float], list[float]]:
        result = self.model.fitTo(data, *self.options)
        valid = result.status() == 0 and result.covQual() == 3
        values = [param.getVal() for param in self.params]
        errors = [param.getError() for param in self.params]
        return valid, values, errors


CONTENDERS = {"tf": HandTF, "tf-grad": HandTFGradient, "jax": Jax, "zfit": Zfit, "roofit": RooFit}
#: Libraries whose absence turns a row into 'not installed' instead of an error.
OPTIONAL = {"jax", "jaxlib", "zfit", "ROOT", "tensorflow", "iminuit"}


if __name__ == "__main__":
    common.worker_main(CONTENDERS, OPTIONAL, _T_START)
