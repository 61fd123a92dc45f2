"""Run the reference cases against every gradient strategy and collect one row per component.

The work is cut into :class:`Task` items (case, point, strategy, level) that name
everything by string, so the loop in :func:`run_suite` can later be handed to an
executor of worker processes without changing what a task means. Each task builds
fresh Parameters at its point, asks ``zgrad.derivatives`` for the derivatives
inside ``with zgrad.run.set_mode(autograd=strategy)`` (and passes the strategy
explicitly too), and compares every component with the closed form.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

import zgrad
from validation.cases import CASES, LEVELS, Case, Tolerance, select

__all__ = ["Row", "SuiteResult", "Task", "gradient_strategies", "levels", "plan", "run_suite", "run_task"]


@dataclass(frozen=True)
class Task:
    """One unit of work: a case at one named point, one strategy, one level."""

    case: str
    point: str
    strategy: str
    level: str

    @property
    def label(self) -> str:
        """``case/point strategy level``, as shown in the progress line."""
        return f"{self.case}/{self.point} {self.strategy} {self.level}"


@dataclass(frozen=True)
class Row:
    """The comparison of one derivative component with its closed form.

    ``deviation`` is relative: ``|value - reference| / scale``, where ``scale`` is the
    larger of ``|reference|`` and the component's natural size (``|H_ii| * step_i`` for
    gradient component ``i``, ``sqrt(|H_ii H_jj|)`` for Hessian entry ``(i, j)``), so a
    component whose exact value is zero still gets a meaningful relative measure.
    ``param`` is a parameter name for gradient rows and ``'name_i,name_j'`` for Hessian
    rows; a row with ``param='*'`` records a call that failed (``message`` says why).
    """

    case: str
    point: str
    param: str
    strategy: str
    level: str
    value: float | None
    reference: float | None
    deviation: float | None
    abs_deviation: float | None
    scale: float | None
    error: float | None
    zscore: float | None
    rtol: float
    error_covers: bool
    covered: bool | None
    ok: bool
    status: str | None
    n_evals: int | None
    seconds: float
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a plain dict."""
        return asdict(self)


@dataclass
class SuiteResult:
    """All rows of one run, with what was asked for and how long it took."""

    rows: list[Row]
    cases: list[str]
    strategies: list[str]
    quick: bool
    seconds: float
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every row passed (and there was at least one)."""
        return bool(self.rows) and all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        """The rows that failed."""
        return [r for r in self.rows if not r.ok]


def gradient_strategies() -> list[str]:
    """Return the registered strategies that provide a gradient, in registry order."""
    return [name for name in zgrad.gradients.available() if zgrad.gradients.get(name).provides_gradient]


def _check_strategies(names: Sequence[str] | None) -> list[str]:
    usable = gradient_strategies()
    if not names:
        return usable
    for name in names:
        if name not in zgrad.gradients.available():
            raise ValueError(
                f"unknown strategy {name!r}; registered strategies are {list(zgrad.gradients.available())}."
            )
        if name not in usable:
            raise ValueError(
                f"strategy {name!r} provides no gradient (the minimizer differentiates by itself), so "
                f"there is nothing to validate; strategies that provide one are {usable}."
            )
    return list(dict.fromkeys(names))


def levels(strategy: str) -> tuple[str, ...]:
    """Return the levels ``strategy`` is checked at: the Hessian only where it has a ``hessian`` method."""
    has_hessian = callable(getattr(zgrad.gradients.get(strategy), "hessian", None))
    return LEVELS if has_hessian else tuple(level for level in LEVELS if level != "hessian")


def plan(cases: Sequence[Case], strategies: Sequence[str], *, quick: bool = False) -> list[Task]:
    """Return the tasks for ``cases`` x points x ``strategies`` x levels (only first points if ``quick``)."""
    tasks = []
    for case in cases:
        points = case.points[:1] if quick else case.points
        for label, _ in points:
            for strategy in strategies:
                tasks.extend(Task(case.name, label, strategy, level) for level in levels(strategy))
    return tasks


def _parameters(case: Case, values: Sequence[float]) -> tuple:
    dtype = tf.as_dtype(case.dtype)
    return tuple(
        zgrad.Parameter(s.name, v, lower=s.lower, upper=s.upper, step_size=s.step_size, dtype=dtype)
        for s, v in zip(case.params, values, strict=True)
    )


def _relative(abs_dev: float, scale: float) -> float:
    if scale > 0:
        return float(abs_dev / scale)
    return 0.0 if abs_dev == 0 else math.inf


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def run_task(task: Task) -> list[Row]:
    """Run one task and return its rows (one per gradient component or Hessian entry).

    A call that raises becomes a single failing row with ``param='*'`` and the error in
    ``message``: the suite reports every failure rather than stopping at the first.
    """
    case = CASES[task.case]
    values = dict(case.points)[task.point]
    params = _parameters(case, values)
    data = case.data(np.dtype(case.dtype))
    func = case.build(params, data)
    # the reference is taken at the values actually stored, i.e. rounded to the case's dtype
    x = np.array([p.numpy() for p in params], dtype=np.float64)
    data64 = {k: np.asarray(v, dtype=np.float64) for k, v in data.items()}
    ref_grad, ref_hess = case.gradient(x, data64), case.hessian(x, data64)
    tol = case.tolerance(task.strategy, task.level)
    fail = {
        "case": task.case,
        "point": task.point,
        "strategy": task.strategy,
        "level": task.level,
        "rtol": tol.rtol,
        "error_covers": tol.error_covers,
    }

    start = time.perf_counter()
    try:
        with zgrad.run.set_mode(autograd=task.strategy):
            result = zgrad.derivatives(func, params, strategy=task.strategy, hessian=task.level == "hessian")
    except Exception as exc:  # reported as a failing row, never swallowed
        return [_failed_row(fail, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")]
    seconds = time.perf_counter() - start

    rows = _compare(task, params, result, ref_grad, ref_hess, tol, seconds)
    after = np.array([p.numpy() for p in params], dtype=np.float64)
    if not np.array_equal(after, x):
        rows.append(
            _failed_row(fail, seconds, f"Parameter values not restored: {x.tolist()} -> {after.tolist()}")
        )
    return rows


def _failed_row(fields: dict, seconds: float, message: str) -> Row:
    return Row(
        **fields,
        param="*",
        value=None,
        reference=None,
        deviation=None,
        abs_deviation=None,
        scale=None,
        error=None,
        zscore=None,
        covered=None,
        ok=False,
        status=None,
        n_evals=None,
        seconds=seconds,
        message=message,
    )


def _entries(
    level: str, params: tuple, result: Any, ref_grad: np.ndarray, ref_hess: np.ndarray
) -> list[tuple]:
    """Return ``(param, value, reference, scale, error, status)`` for each component of ``level``."""
    names = [p.name for p in params]
    diag = np.abs(np.diag(ref_hess))
    n = len(names)
    if level == "gradient":
        steps = [p.step_size for p in params]
        errors = [None] * n if result.error is None else np.asarray(result.error)
        return [
            (
                names[i],
                result.gradient[i],
                ref_grad[i],
                max(abs(ref_grad[i]), diag[i] * steps[i]),
                errors[i],
                result.status[i],
            )
            for i in range(n)
        ]
    errors = np.full((n, n), None) if result.hessian_error is None else np.asarray(result.hessian_error)
    return [
        (
            f"{names[i]},{names[j]}",
            result.hessian[i, j],
            ref_hess[i, j],
            max(abs(ref_hess[i, j]), math.sqrt(diag[i] * diag[j])),
            errors[i, j],
            None,
        )
        for i in range(n)
        for j in range(i, n)
    ]


def _compare(
    task: Task, params: tuple, result: Any, ref_grad, ref_hess, tol: Tolerance, seconds: float
) -> list[Row]:
    rows = []
    for param, value, reference, scale, error, status in _entries(
        task.level, params, result, ref_grad, ref_hess
    ):
        value, reference, error = float(value), float(reference), _float(error)
        abs_dev = abs(value - reference)
        rel = _relative(abs_dev, scale) if math.isfinite(abs_dev) else math.nan
        rows.append(
            Row(
                case=task.case,
                point=task.point,
                param=param,
                strategy=task.strategy,
                level=task.level,
                value=value,
                reference=reference,
                deviation=rel,
                abs_deviation=abs_dev,
                scale=float(scale),
                error=error,
                zscore=abs_dev / error if error else None,
                rtol=tol.rtol,
                error_covers=tol.error_covers,
                covered=None if error is None else bool(abs_dev <= error),
                ok=tol.passes(rel, abs_dev, error),
                status=status,
                n_evals=result.n_evals,
                seconds=seconds,
            )
        )
    return rows


class _StderrProgress:
    """A one-line counter on stderr: rewritten in place on a terminal, one line per task otherwise."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()

    def __call__(self, index: int, total: int, task: Task) -> None:
        line = f"[{index}/{total}] {task.label}"
        if self._tty:
            end = "\n" if index == total else ""
            sys.stderr.write(f"\r\033[K{line}{end}")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def run_suite(
    *,
    quick: bool = False,
    cases: Sequence[str] | None = None,
    strategies: Sequence[str] | None = None,
    progress: bool | Callable[[int, int, Task], None] = False,
) -> SuiteResult:
    """Run the validation suite in this process and return its rows.

    Parameters
    ----------
    quick : bool, default False
        Only the first point of each case.
    cases : sequence of str, optional
        Shell-style patterns of case names (default: every case).
    strategies : sequence of str, optional
        Strategy names (default: every registered strategy that provides a gradient).
    progress : bool or callable, default False
        True prints a counter to stderr; a callable gets ``(index, total, task)``.

    Raises
    ------
    ValueError
        If a case pattern matches nothing, or a strategy is unknown or provides no gradient.

    Examples
    --------
    >>> from validation.runner import run_suite
    >>> result = run_suite(quick=True, cases=["exp_large"], strategies=["autodiff"])
    >>> result.ok
    True
    """
    chosen = select(list(cases) if cases else None)
    names = _check_strategies(strategies)
    tasks = plan(chosen, names, quick=quick)
    report = _StderrProgress() if progress is True else (progress or None)
    start = time.perf_counter()
    rows: list[Row] = []
    previous_case = None
    for index, task in enumerate(tasks, 1):
        if report is not None:
            report(index, len(tasks), task)
        if task.case != previous_case:
            # every task builds a fresh function, so traces of earlier cases can never be hit again
            zgrad.run.clear_graph_cache()
            previous_case = task.case
        rows.extend(run_task(task))
    zgrad.run.clear_graph_cache()
    return SuiteResult(
        rows=rows,
        cases=[c.name for c in chosen],
        strategies=names,
        quick=quick,
        seconds=time.perf_counter() - start,
        options={"quick": quick, "cases": list(cases or []), "strategies": list(strategies or [])},
    )
