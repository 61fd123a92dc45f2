"""Derivative-level work: one :class:`Task` per case, point, strategy and level, giving :class:`Row` s.

Each task builds fresh Parameters at its point, asks ``zgrad.derivatives`` for the
derivatives inside ``with zgrad.run.set_mode(autograd=strategy)`` (and passes the
strategy explicitly too), and compares every component with the case's reference.
Tasks name everything by string, so a worker process rebuilds the case from its name.
:class:`ScanTask` draws the data for a precision plot the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import tensorflow as tf

import zgrad
from validation import cases as _cases
from validation.spec import Case, Tolerance
from zgrad.checks import _scan
from zgrad.checks.result import PrecisionScan

__all__ = ["Row", "ScanTask", "Task", "parameters", "reference", "run_task"]


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

    def run(self) -> list[Row]:
        """Run the task (see :func:`run_task`)."""
        return run_task(self)


@dataclass(frozen=True)
class Row:
    """The comparison of one derivative component with its reference.

    ``deviation`` is relative: ``|value - reference| / scale``, where ``scale`` is the
    larger of ``|reference|`` and the component's natural size (``|H_ii| * step_i`` for
    gradient component ``i``, ``sqrt(|H_ii H_jj|)`` for Hessian entry ``(i, j)``), so a
    component whose exact value is zero still gets a meaningful relative measure.
    ``param`` is a parameter name for gradient rows and ``'name_i,name_j'`` for Hessian
    rows; a row with ``param='*'`` records a call that failed (``message`` says why).
    ``reference_error`` is the error estimate of a numerical reference (None for a closed form).
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
    reference_error: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the row as a plain dict."""
        return asdict(self)


def parameters(case: Case, values: Sequence[float]) -> tuple:
    """Return fresh Parameters of ``case`` (its dtype, limits and step sizes) at ``values``."""
    dtype = tf.as_dtype(case.dtype)
    return tuple(
        zgrad.Parameter(s.name, v, lower=s.lower, upper=s.upper, step_size=s.step_size, dtype=dtype)
        for s, v in zip(case.params, values, strict=True)
    )


# the reference of a model case costs a numerical Jacobian: computed once per process and point
_REFERENCE_CACHE: dict[tuple[int, str], tuple] = {}


def reference(case: Case, point: str) -> tuple:
    """Return ``(x, data, gradient, hessian, hessian_error)`` of ``case`` at ``point``, cached.

    ``x`` are the point's values as the case's dtype stores them, in float64; ``data`` the
    case's data in its dtype. The cache is keyed by the case object, so a replaced case
    (as tests do) is computed afresh.
    """
    key = (id(case), point)
    hit = _REFERENCE_CACHE.get(key)
    if hit is not None and hit[0] is case:
        return hit[1]
    data = case.data(np.dtype(case.dtype))
    values = dict(case.points)[point]
    # the reference is taken at the values actually stored, i.e. rounded to the case's dtype
    x = np.asarray(values, dtype=case.dtype).astype(np.float64)
    data64 = {k: np.asarray(v, dtype=np.float64) for k, v in data.items()}
    result = (x, data, *case.reference(x, data64))
    if len(_REFERENCE_CACHE) > 256:
        _REFERENCE_CACHE.clear()
    _REFERENCE_CACHE[key] = (case, result)
    return result


def run_task(task: Task) -> list[Row]:
    """Run one task and return its rows (one per gradient component or Hessian entry).

    A call that raises becomes a single failing row with ``param='*'`` and the error in
    ``message``: the suite reports every failure rather than stopping at the first.
    """
    case = _cases.CASES[task.case]
    x, data, ref_grad, ref_hess, hess_error = reference(case, task.point)
    params = parameters(case, dict(case.points)[task.point])
    func = case.build(params, data)
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

    rows = _compare(task, params, result, (ref_grad, ref_hess, hess_error), tol, seconds)
    after = np.array([p.numpy() for p in params], dtype=np.float64)
    if not np.array_equal(after, x):
        rows.append(
            _failed_row(fail, seconds, f"Parameter values not restored: {x.tolist()} -> {after.tolist()}")
        )
    return rows


def _failed_row(fields: dict, seconds: float, message: str) -> Row:
    empty = dict.fromkeys(
        ("value", "reference", "deviation", "abs_deviation", "scale", "error", "zscore", "covered", "status")
    )
    return Row(**fields, **empty, param="*", ok=False, n_evals=None, seconds=seconds, message=message)


def _entries(level: str, params: tuple, result: Any, ref: tuple) -> list[tuple]:
    """Return ``(param, value, reference, scale, error, reference_error, status)`` per component."""
    ref_grad, ref_hess, hess_error = ref
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
                None,
                result.status[i],
            )
            for i in range(n)
        ]
    errors = np.full((n, n), None) if result.hessian_error is None else np.asarray(result.hessian_error)
    ref_errors = np.full((n, n), None) if hess_error is None else np.asarray(hess_error)
    return [
        (
            f"{names[i]},{names[j]}",
            result.hessian[i, j],
            ref_hess[i, j],
            max(abs(ref_hess[i, j]), math.sqrt(diag[i] * diag[j])),
            errors[i, j],
            ref_errors[i, j],
            None,
        )
        for i in range(n)
        for j in range(i, n)
    ]


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def _relative(abs_dev: float, scale: float) -> float:
    if scale > 0:
        return float(abs_dev / scale)
    return 0.0 if abs_dev == 0 else math.inf


def _compare(task: Task, params: tuple, result: Any, ref: tuple, tol: Tolerance, seconds: float) -> list[Row]:
    rows = []
    for param, value, reference_value, scale, error, ref_error, status in _entries(
        task.level, params, result, ref
    ):
        value, reference_value, error, ref_error = (
            float(value),
            float(reference_value),
            _float(error),
            _float(ref_error),
        )
        abs_dev = abs(value - reference_value)
        rel = _relative(abs_dev, scale) if math.isfinite(abs_dev) else math.nan
        rows.append(
            Row(
                case=task.case,
                point=task.point,
                param=param,
                strategy=task.strategy,
                level=task.level,
                value=value,
                reference=reference_value,
                deviation=rel,
                abs_deviation=abs_dev,
                scale=float(scale),
                error=error,
                zscore=abs_dev / error if error else None,
                rtol=tol.rtol,
                error_covers=tol.error_covers,
                covered=None if error is None else bool(abs_dev <= error),
                ok=tol.passes(rel, abs_dev, error, ref_error),
                status=status,
                n_evals=result.n_evals,
                seconds=seconds,
                reference_error=ref_error,
            )
        )
    return rows


@dataclass(frozen=True)
class ScanTask:
    """The data of a precision plot: the numerical derivative along one parameter of a case."""

    case: str
    point: str
    param: str
    n_points: int = 13
    width: float = 3.0

    @property
    def label(self) -> str:
        """``case/point scan param``."""
        return f"{self.case}/{self.point} scan {self.param}"

    def run(self) -> PrecisionScan:
        """Scan ``param`` over ``width`` step sizes on either side; return zgrad's ``PrecisionScan``."""
        case = _cases.CASES[self.case]
        x, data, *_ = reference(case, self.point)
        params = parameters(case, dict(case.points)[self.point])
        data64 = {k: np.asarray(v, dtype=np.float64) for k, v in data.items()}
        target = SimpleNamespace(
            params=params,
            func=case.build(params, data),
            reference_gradient=lambda values: case.gradient(np.asarray(values, dtype=np.float64), data64),
        )
        index = [p.name for p in params].index(self.param)
        return _scan.precision_scan(target, x.astype(case.dtype), index, self.n_points, self.width)
