"""Plan the suite's tasks, run them through an executor, and collect the results.

The work is cut into small tasks that name everything by string (see
:mod:`validation.executors`):

- derivative tasks (:class:`validation.derivatives.Task`): case x point x strategy x level;
- reference tasks (:class:`validation.reference.ReferenceTask`): a case's closed form versus the
  stored numbers;
- fit tasks (:class:`validation.fits.FitTask`): each model case fitted with each strategy;
- toy tasks (:class:`validation.fits.ToyTask`, with ``toys > 0``): a case's toy study with one strategy
  (``zgrad.toys``);
- scan tasks (:class:`validation.derivatives.ScanTask`): the data of the precision plots.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import zgrad
from validation.cases import LEVELS, Case, select
from validation.derivatives import Row, ScanTask, Task, run_task
from validation.executors import InProcess
from validation.fits import FitRow, FitTask, ToyRow, ToyTask, fit_verdicts, fittable, pull_summary
from validation.reference import ReferenceCheck, ReferenceTask
from zgrad._progress import ProgressBar

__all__ = [
    "PRECISION_SCANS",
    "ProgressBar",
    "Row",
    "SuiteResult",
    "Task",
    "gradient_strategies",
    "levels",
    "plan",
    "run_suite",
    "run_task",
]

#: The precision plots drawn when their case is selected: (case, parameter); the first point is used.
PRECISION_SCANS = (("gauss", "sigma"), ("crystal_ball", "n"), ("exp_large", "x"))


@dataclass
class SuiteResult:
    """Everything one run produced, with what was asked for and how long it took."""

    rows: list[Row]
    cases: list[str]
    strategies: list[str]
    quick: bool
    seconds: float
    options: dict[str, Any] = field(default_factory=dict)
    reference_checks: list[ReferenceCheck] = field(default_factory=list)
    fits: list[FitRow] = field(default_factory=list)
    toys: list[ToyRow] = field(default_factory=list)
    scans: list[tuple[ScanTask, Any]] = field(default_factory=list)
    fit_strategies: list[str] = field(default_factory=list)
    executor: dict[str, Any] = field(default_factory=lambda: {"kind": "in-process"})

    @property
    def fit_verdicts(self) -> list[dict[str, Any]]:
        """Per model case: do the strategies' fits agree (see :func:`validation.fits.fit_verdicts`)."""
        return fit_verdicts(self.fits)

    @property
    def pulls(self) -> list[dict[str, Any]]:
        """Pull statistics per case, strategy and parameter (see :func:`validation.fits.pull_summary`)."""
        return pull_summary(self.toys)

    @property
    def ok(self) -> bool:
        """Whether every derivative row, stored-number check, fit verdict and pull passed."""
        return (
            bool(self.rows)
            and all(r.ok for r in self.rows)
            and all(c.ok for c in self.reference_checks)
            and all(v["ok"] for v in self.fit_verdicts)
            and all(p["ok"] for p in self.pulls)
        )

    @property
    def failures(self) -> list[Row]:
        """The derivative rows that failed."""
        return [r for r in self.rows if not r.ok]


def gradient_strategies() -> list[str]:
    """Return the registered strategies that provide a gradient, in registry order."""
    return [name for name in zgrad.gradients.available() if zgrad.gradients.get(name).provides_gradient]


def _check_strategies(names: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """Return (strategies for derivatives, strategies for fits)."""
    available = list(zgrad.gradients.available())
    if not names:
        return gradient_strategies(), available
    for name in names:
        if name not in available:
            raise ValueError(f"unknown strategy {name!r}; registered strategies are {available}.")
    names = list(dict.fromkeys(names))
    return [n for n in names if n in gradient_strategies()], names


def levels(strategy: str) -> tuple[str, ...]:
    """Return the levels ``strategy`` is checked at: the Hessian only where it has a ``hessian`` method."""
    has_hessian = callable(getattr(zgrad.gradients.get(strategy), "hessian", None))
    return LEVELS if has_hessian else tuple(level for level in LEVELS if level != "hessian")


def plan(cases: Sequence[Case], strategies: Sequence[str], *, quick: bool = False) -> list[Task]:
    """Return the derivative tasks: ``cases`` x points x ``strategies`` x levels (``quick``: first points)."""
    tasks = []
    for case in cases:
        points = case.points[:1] if quick else case.points
        for label, _ in points:
            for strategy in strategies:
                tasks.extend(Task(case.name, label, strategy, level) for level in levels(strategy))
    return tasks


def _scan_tasks(cases: Sequence[Case], quick: bool) -> list[ScanTask]:
    chosen = {c.name: c for c in cases}
    scans = [
        ScanTask(name, chosen[name].points[0][0], param) for name, param in PRECISION_SCANS if name in chosen
    ]
    if not scans and cases:  # always at least one precision plot
        scans = [ScanTask(cases[0].name, cases[0].points[0][0], cases[0].params[0].name)]
    return scans[:1] if quick else scans


def run_suite(
    *,
    quick: bool = False,
    cases: Sequence[str] | None = None,
    strategies: Sequence[str] | None = None,
    toys: int = 0,
    fits: bool = True,
    executor: Any = None,
    progress: bool | Callable[[Any], None] = False,
) -> SuiteResult:
    """Run the validation suite and return its results.

    Parameters
    ----------
    quick : bool, default False
        Only the first point of each case and one precision plot.
    cases : sequence of str, optional
        Shell-style patterns of case names (default: every case).
    strategies : sequence of str, optional
        Strategy names (default: every registered strategy). Derivatives are checked for those
        that provide a gradient; fits use them all (``'minuit'``: Minuit differentiates itself).
    toys : int, default 0
        Toy data sets per model case (seeded), each fitted with every strategy.
    fits : bool, default True
        Whether to fit the model cases.
    executor : optional
        Where tasks run (:mod:`validation.executors`); default: in this process.
    progress : bool or callable, default False
        True draws a :class:`ProgressBar` on stderr; a callable gets each finished task.

    Raises
    ------
    ValueError
        If a case pattern matches nothing, a strategy is unknown, ``toys`` is negative, or the
        selection leaves nothing to check.

    Examples
    --------
    >>> from validation.runner import run_suite
    >>> result = run_suite(quick=True, cases=["exp_large"], strategies=["autodiff"])
    >>> result.ok, len(result.rows)
    (True, 2)
    """
    chosen = select(list(cases) if cases else None)
    derivative_names, fit_names = _check_strategies(strategies)
    if isinstance(toys, bool) or not isinstance(toys, int) or toys < 0:
        raise ValueError(f"toys must be a non-negative int; got {toys!r}.")
    model_cases = [c for c in chosen if fittable(c)]
    if not derivative_names and not (fits and model_cases):
        raise ValueError(
            f"strategies {list(strategies or [])} provide no gradient (the minimizer differentiates itself) "
            f"and the selected cases have no fits, so there is nothing to validate; strategies that provide "
            f"one are {gradient_strategies()}."
        )
    groups = {
        "rows": plan(chosen, derivative_names, quick=quick),
        "reference": [ReferenceTask(c.name) for c in chosen],
        "fits": [FitTask(c.name, s) for c in model_cases for s in fit_names] if fits else [],
        "toys": [ToyTask(c.name, s, toys) for c in model_cases for s in fit_names] if toys else [],
        "scans": _scan_tasks(chosen, quick) if derivative_names else [],
    }
    tasks = [t for group in groups.values() for t in group]
    report = ProgressBar(len(tasks)) if progress is True else (progress or None)
    runner = executor or InProcess()
    start = time.perf_counter()
    results = runner.map(tasks, report)
    zgrad.run.clear_graph_cache()
    out: dict[str, list] = {}
    offset = 0
    for key, group in groups.items():
        out[key] = results[offset : offset + len(group)]
        offset += len(group)
    return SuiteResult(
        rows=[row for rows in out["rows"] for row in rows],
        cases=[c.name for c in chosen],
        strategies=derivative_names,
        quick=quick,
        seconds=time.perf_counter() - start,
        options={
            "quick": quick,
            "cases": list(cases or []),
            "strategies": list(strategies or []),
            "toys": toys,
            "fits": fits,
        },
        reference_checks=[c for checks in out["reference"] for c in checks],
        fits=list(out["fits"]),
        toys=[row for rows in out["toys"] for row in rows],
        scans=list(zip(groups["scans"], out["scans"], strict=True)),
        fit_strategies=fit_names if (fits or toys) and model_cases else [],
        executor=runner.describe(),
    )
