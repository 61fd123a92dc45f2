"""Fit-level checks: one fit per model case and strategy, and toy studies with pulls.

A :class:`FitTask` fits the case's data with ``zgrad.minimize.Minuit(gradient=strategy)``
from the case's second point (its "off" point) and records the best-fit values, Hesse
errors, call counts and wall time. :func:`fit_verdicts` then asks whether every
strategy's fit is valid and lands within :data:`FIT_AGREEMENT` of an error of the first
strategy's values.

A :class:`ToyTask` is the toy study of one model case with one strategy: :func:`zgrad.toys`
with seed :data:`TOY_SEED` draws every toy from the model at its true values (an extended
model a Poisson number of events) and fits it from the truth. The same seed for every
strategy means every strategy fits the same toy data sets. :func:`pull_summary` turns the pulls
``(value - truth) / error`` into a mean and a width, each with its uncertainty (as
:meth:`zgrad.ToyStudy.summary` does), and passes a strategy when ``|mean| < 3`` uncertainties
and ``|width - 1| < 3`` uncertainties.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import zgrad
from validation import cases as _cases
from validation.derivatives import parameters
from validation.model_cases import build_model
from validation.spec import Case
from zgrad.toystudy.study import pull_statistics

__all__ = [
    "FIT_AGREEMENT",
    "FIT_TOL",
    "PULL_SIGMAS",
    "TOY_SEED",
    "FitRow",
    "FitTask",
    "ToyRow",
    "ToyTask",
    "fit_verdicts",
    "fittable",
    "pull_summary",
]

#: Fits of one case agree when every value is within this fraction of the reference fit's error.
FIT_AGREEMENT = 0.01
#: Minuit's tolerance for these fits: EDM < 2e-5 * errordef keeps two converged fits within ~0.5 %
#: of an error of each other, well inside FIT_AGREEMENT (the default 0.1 allows ~2 %).
FIT_TOL = 0.01
#: The ``seed`` of every case's toy study (``zgrad.toys`` derives each toy's own seed from it).
TOY_SEED = 1_000_000
#: A pull mean or width passes within this many of its uncertainties.
PULL_SIGMAS = 3.0


def fittable(case: Case) -> bool:
    """Whether ``case`` gets fits and toys: a float64 model inside a loss.

    float32 cases are checked at derivative level only: a float32 likelihood's rounding noise
    is larger than the 1 %-of-an-error agreement asked of fits.
    """
    return case.model is not None and case.dtype == "float64"


@dataclass(frozen=True)
class FitRow:
    """The result of one fit; ``values``, ``errors`` and ``start`` map parameter names to numbers."""

    case: str
    strategy: str
    valid: bool
    message: str
    values: dict[str, float]
    errors: dict[str, float]
    start: dict[str, float]
    fmin: float | None
    edm: float | None
    nfcn: int | None
    ngrad: int | None
    wall_time: float
    gradient_strategy: str | None
    hessian_strategy: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a plain dict."""
        return asdict(self)


def _fit(case: Case, params: tuple, data: np.ndarray, strategy: str) -> tuple[Any, str]:
    loss = case.build(params, {"x": data})
    try:
        with zgrad.run.set_mode(autograd=strategy):
            return zgrad.minimize.Minuit(gradient=strategy, tol=FIT_TOL).minimize(loss), ""
    except Exception as exc:  # a fit that raises is a failed fit, reported with its reason
        return None, f"{type(exc).__name__}: {exc}"


def _fit_row(
    case: Case, strategy: str, start: Sequence[float], result: Any, problem: str, wall: float
) -> FitRow:
    names = [s.name for s in case.params]
    if result is None:
        return FitRow(
            case.name,
            strategy,
            False,
            problem,
            {},
            {},
            dict(zip(names, start, strict=True)),
            None,
            None,
            None,
            None,
            wall,
            None,
            None,
        )
    return FitRow(
        case=case.name,
        strategy=strategy,
        valid=bool(result.valid),
        message=result.message,
        values={n: float(result.values[n]) for n in names},
        errors={n: float(result.errors[n]) for n in names},
        start=dict(zip(names, map(float, start), strict=True)),
        fmin=float(result.fmin),
        edm=float(result.edm),
        nfcn=int(result.nfcn),
        ngrad=int(result.ngrad),
        wall_time=float(result.wall_time),
        gradient_strategy=result.gradient_strategy,
        hessian_strategy=result.hessian_strategy,
    )


@dataclass(frozen=True)
class FitTask:
    """Fit a model case's data with one strategy, from the case's second point."""

    case: str
    strategy: str

    @property
    def label(self) -> str:
        """``case fit strategy``."""
        return f"{self.case} fit {self.strategy}"

    def run(self) -> FitRow:
        """Run the fit and return its :class:`FitRow`."""
        case = _cases.CASES[self.case]
        start = case.points[1][1] if len(case.points) > 1 else case.model.truth
        data = case.data(np.dtype(case.dtype))["x"]
        begin = time.perf_counter()
        result, problem = _fit(case, parameters(case, start), data, self.strategy)
        return _fit_row(case, self.strategy, start, result, problem, time.perf_counter() - begin)


@dataclass(frozen=True)
class ToyRow:
    """One strategy's fit of one toy data set."""

    case: str
    toy: int
    seed: int
    n_events: int
    strategy: str
    valid: bool
    message: str
    truth: dict[str, float]
    values: dict[str, float]
    errors: dict[str, float]
    nfcn: int | None
    wall_time: float

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class ToyTask:
    """The toy study of a model case with one strategy: ``n_toys`` toys through :func:`zgrad.toys`."""

    case: str
    strategy: str
    n_toys: int

    @property
    def label(self) -> str:
        """``case toys strategy``."""
        return f"{self.case} toys {self.strategy}"

    def run(self) -> list[ToyRow]:
        """Run the study (in this process) and return one row per toy."""
        case = _cases.CASES[self.case]
        info = case.model
        model = build_model(info, parameters(case, info.truth))  # the Parameters start at the truth
        study = zgrad.toys(
            model,
            self.n_toys,
            n_events=None if info.extended else info.n_events,
            minimizer=zgrad.minimize.Minuit(gradient=self.strategy, tol=FIT_TOL),
            strategy=self.strategy,
            seed=TOY_SEED,
            progress=False,
        )
        return [_toy_row(case.name, self.strategy, study, k) for k in range(study.n_toys)]


def _toy_row(case: str, strategy: str, study: Any, k: int) -> ToyRow:
    fitted = not math.isnan(study.nfcn[k])  # NaN: the fit raised, no numbers (as a failed fit row)
    return ToyRow(
        case=case,
        toy=k,
        seed=int(study.seed[k]),
        n_events=int(study.n_events[k]),
        strategy=strategy,
        valid=bool(study.valid[k]),
        message=study.messages[k],
        truth={n: study.truth[n] for n in study.names},
        values={n: float(study.values[n][k]) for n in study.names} if fitted else {},
        errors={n: float(study.errors[n][k]) for n in study.names} if fitted else {},
        nfcn=int(study.nfcn[k]) if fitted else None,
        wall_time=float(study.seconds[k]),
    )


# --- verdicts -----------------------------------------------------------------------------------


def fit_verdicts(rows: Sequence[FitRow]) -> list[dict[str, Any]]:
    """Return per case whether the fits agree: one entry per case.

    The first strategy's fit is the reference. Each entry has ``case``, ``reference``,
    ``max_shift`` (per strategy: the largest ``|value - reference value| / reference error``),
    ``invalid`` (strategies whose fit was not valid), ``threshold`` and ``ok``.
    """
    by_case: dict[str, list[FitRow]] = {}
    for row in rows:
        by_case.setdefault(row.case, []).append(row)
    verdicts = []
    for case, fits in by_case.items():
        ref = fits[0]
        shifts: dict[str, float | None] = {}
        for fit in fits:
            if not (fit.values and ref.values):
                shifts[fit.strategy] = None
                continue
            shifts[fit.strategy] = max(
                abs(fit.values[n] - ref.values[n]) / ref.errors[n] if ref.errors[n] > 0 else math.inf
                for n in ref.values
            )
        invalid = [f.strategy for f in fits if not f.valid]
        ok = not invalid and all(s is not None and s <= FIT_AGREEMENT for s in shifts.values())
        verdicts.append(
            {
                "case": case,
                "reference": ref.strategy,
                "max_shift": shifts,
                "invalid": invalid,
                "threshold": FIT_AGREEMENT,
                "ok": ok,
            }
        )
    return verdicts


def pull_summary(rows: Sequence[ToyRow]) -> list[dict[str, Any]]:
    """Return pull statistics per case, strategy and parameter.

    Each entry: ``case``, ``strategy``, ``param``, ``n`` (valid fits used), ``n_invalid``,
    ``mean`` and ``mean_error`` (``width / sqrt(n)``), ``width`` (sample standard deviation)
    and ``width_error`` (``width / sqrt(2 (n - 1))``), ``ok``: ``|mean| < 3 mean_error`` and
    ``|width - 1| < 3 width_error``, and no invalid fit.
    """
    groups: dict[tuple[str, str], list[ToyRow]] = {}
    for row in rows:
        groups.setdefault((row.case, row.strategy), []).append(row)
    out = []
    for (case, strategy), toys in groups.items():
        valid = [t for t in toys if t.valid and t.values]
        names = list(toys[0].truth)
        for name in names:
            pulls = np.array(
                [(t.values[name] - t.truth[name]) / t.errors[name] for t in valid if t.errors[name] > 0]
            )
            stats = pull_statistics(pulls)
            n, mean, width = stats["n"], stats["mean"], stats["width"]
            mean_err, width_err = stats["mean_error"], stats["width_error"]
            ok = (
                n > 1
                and len(valid) == len(toys)
                and abs(mean) < PULL_SIGMAS * mean_err
                and abs(width - 1.0) < PULL_SIGMAS * width_err
            )
            out.append(
                {
                    "case": case,
                    "strategy": strategy,
                    "param": name,
                    "n": int(n),
                    "n_invalid": len(toys) - len(valid),
                    "mean": mean,
                    "mean_error": mean_err,
                    "width": width,
                    "width_error": width_err,
                    "ok": bool(ok),
                }
            )
    return out
