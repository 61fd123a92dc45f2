"""zgrad's rows of ``bench_toys.py``, measured in a process of their own.

Run from the repository root (``bench_toys.py`` does this)::

    python benchmarks/_toy_zgrad.py --contender zgrad [--toys 200] [--budget 60] [--out rec.json]

``zgrad`` is the documented way, public API only: per toy the Parameters are reset
with ``set_value``, ``model.sample(n)`` draws the data, a new
``zgrad.losses.ExtendedUnbinnedNLL(model, data)`` is built and
``zgrad.minimize.Minuit().minimize(loss)`` fits it (MIGRAD + HESSE). The workload
and the timed loop are in ``_toy_common.py``.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()  # before any other import: the import times count from here

import importlib.util  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import _harness  # noqa: E402
import _toy_common as common  # noqa: E402

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ZgradDocumented:
    """A new loss per toy on one model, fitted with ``zgrad.minimize.Minuit()``."""

    def imports(self) -> dict:
        import zgrad

        zgrad.models, zgrad.losses, zgrad.minimize  # noqa: B018  (imports TensorFlow)
        self.zgrad = zgrad
        return {"zgrad": zgrad.__version__}

    def setup(self, seed: int) -> None:
        zgrad = self.zgrad
        zgrad.z.random.set_seed(seed)
        obs = zgrad.Space("x", limits=(common.LOWER, common.UPPER))
        self.params = [
            zgrad.Parameter(name, common.START[name], *common.LIMITS[name]) for name in common.NAMES
        ]
        mu, sg, lb, nsig, nbkg = self.params
        gauss = zgrad.models.Gauss(obs=obs, mu=mu, sigma=sg)
        expo = zgrad.models.Exponential(obs=obs, lam=lb)
        self.model = zgrad.models.Sum([gauss, expo], yields=[nsig, nbkg])
        self.minimizer = zgrad.minimize.Minuit()

    def reset(self) -> None:
        for param in self.params:
            param.set_value(common.START[param.name])

    def sample(self) -> Any:
        return self.model.sample(common.N_EVENTS)

    def loss(self, data: Any) -> Any:
        return self.zgrad.losses.ExtendedUnbinnedNLL(self.model, data)

    def fit(self, loss: Any) -> tuple[bool, list[float], list[float]]:
        result = self.minimizer.minimize(loss)
        values = [float(result.values[name]) for name in common.NAMES]
        errors = [float(result.errors[name]) for name in common.NAMES]
        return bool(result.valid), values, errors

    def extras(self) -> dict:
        info = self.zgrad.run.graph_cache_info()
        # a cache that belongs to a loss leaves these sums when the loss is collected
        return {"traces": info.traces, "graph_misses": info.misses}


# --- zgrad.toys ---------------------------------------------------------------------------------
# The second zgrad row: the same study through `zgrad.toys(...)` (issue 15, part 4). Sampling, loss
# and fit happen inside `zgrad.toys`, so this contender runs its own loop (`run_study`) and takes
# the per-toy times from `study.seconds`; it has no breakdown into sampling, loss and fit.


class ZgradToys(ZgradDocumented):
    """``zgrad.toys(model, n, n_events=2000, truth=START)``, serially, in three calls.

    One toy (the first toy's time), then up to :data:`_toy_common.EARLY_TOYS` (RSS), then as
    many as the budget leaves room for at the median time per toy so far.
    """

    def imports(self) -> dict:
        versions = super().imports()
        if "toys" not in self.zgrad.__all__:
            raise common.Unavailable("zgrad.toys is not in this version of zgrad")
        return versions

    def _study(self, n_toys: int, seed: int) -> list[dict]:
        study = self.zgrad.toys(
            self.model, n_toys, n_events=common.N_EVENTS, truth=common.START, seed=seed, progress=False
        )
        return [
            {
                "total_s": float(study.seconds[k]),
                "valid": bool(study.valid[k]),
                "values": [float(study.values[name][k]) for name in common.NAMES],
                "errors": [float(study.errors[name][k]) for name in common.NAMES],
            }
            for k in range(study.n_toys)
        ]

    def run_study(self, *, max_toys: int, budget_s: float, min_toys: int, seed: int) -> dict:
        start = time.perf_counter()
        self.setup(seed)
        toys = self._study(1, seed)
        first_toy_s = time.perf_counter() - start
        if min(max_toys, common.EARLY_TOYS) > 1:
            toys += self._study(min(max_toys, common.EARLY_TOYS) - 1, seed + 1)
        rss_early = _harness.process_rss_mib() if len(toys) == common.EARLY_TOYS else None
        target = max_toys
        if budget_s:  # as many as fit into what is left of the budget at the median time so far
            left = budget_s - (time.perf_counter() - start)
            per_toy = statistics.median(t["total_s"] for t in toys)
            target = min(max_toys, max(min_toys, len(toys) + int(left / per_toy)))
        if target > len(toys):
            toys += self._study(target - len(toys), seed + 2)
        record = {"first_toy_s": first_toy_s, "rss_early_mib": rss_early}
        record["rss_last_mib"] = _harness.process_rss_mib()
        record.update(common.summarize(toys))
        return record


CONTENDERS = {"zgrad": ZgradDocumented, "zgrad-toys": ZgradToys}


if __name__ == "__main__":
    if importlib.util.find_spec("zgrad") is None:  # run from a checkout without installing
        sys.path.insert(0, _REPO_ROOT)
    common.worker_main(CONTENDERS, set(), _T_START)
