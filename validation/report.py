"""Summaries of a suite run: a table for the terminal and ``report.json``.

``report.json`` (schema version :data:`SCHEMA_VERSION`) holds:

- ``schema_version`` (int), ``created`` (UTC, ISO 8601), ``ok`` (bool), ``seconds``;
- ``environment``: versions of Python, zgrad, TensorFlow, numdifftools, NumPy, SciPy, and the platform;
- ``options``: what was asked for (``quick``, ``cases`` patterns, ``strategies``);
- ``cases``: each case's description, dtype, parameters (limits, step size) and points;
- ``strategies``: the strategies that ran;
- ``summary``: one entry per case and strategy (see :func:`summarize`);
- ``rows``: one entry per derivative component (the fields of :class:`validation.runner.Row`).

Non-finite numbers are written as the strings ``"nan"``, ``"inf"`` and ``"-inf"`` so the file
stays strict JSON.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import zgrad
from validation.cases import CASES, LEVELS
from validation.runner import Row, SuiteResult

__all__ = ["SCHEMA_VERSION", "environment", "format_table", "print_table", "summarize", "to_json", "write"]

#: Bumped whenever a field of ``report.json`` changes meaning or disappears.
SCHEMA_VERSION = 1

_TABLE_COLUMNS = (
    ("case", "<", 18),
    ("strategy", "<", 9),
    ("rows", ">", 4),
    ("fail", ">", 4),
    ("worst grad", ">", 10),
    ("worst hess", ">", 10),
    ("by err", ">", 6),
    ("evals g/h", ">", 9),
    ("time", ">", 6),
    ("result", "<", 6),
)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Return the versions and machine facts a report should be read with."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not available on every platform
        cores = os.cpu_count()
    return {
        "python": platform.python_version(),
        "zgrad": zgrad.__version__,
        "tensorflow": _version("tensorflow"),
        "numdifftools": _version("numdifftools"),
        "numpy": _version("numpy"),
        "scipy": _version("scipy"),
        "platform": platform.platform(),
        "cpu_cores": cores,
    }


def _worst(rows: list[Row], level: str) -> float | None:
    values = [math.inf if r.deviation is None else r.deviation for r in rows if r.level == level]
    values = [math.inf if math.isnan(v) else v for v in values]
    return max(values) if values else None


def _max_evals(rows: list[Row], level: str) -> int | None:
    values = [r.n_evals for r in rows if r.level == level and r.n_evals is not None]
    return max(values) if values else None


def summarize(result: SuiteResult) -> list[dict[str, Any]]:
    """Return one entry per case and strategy.

    Each entry has ``case``, ``strategy``, ``points``, ``rows``, ``failed``, ``worst_gradient``
    and ``worst_hessian`` (largest relative deviation; ``inf`` where a call failed),
    ``by_error`` (rows that pass only because the error estimate covers the true error),
    ``evals_gradient`` and ``evals_hessian`` (most evaluations one call used), ``seconds``
    and ``ok``.
    """
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in result.rows:
        groups.setdefault((row.case, row.strategy), []).append(row)
    summary = []
    for (case, strategy), rows in groups.items():
        calls = {(r.point, r.level): r.seconds for r in rows}  # rows of one call share its time
        summary.append(
            {
                "case": case,
                "strategy": strategy,
                "points": len({r.point for r in rows}),
                "rows": len(rows),
                "failed": sum(not r.ok for r in rows),
                "worst_gradient": _worst(rows, "gradient"),
                "worst_hessian": _worst(rows, "hessian"),
                "by_error": sum(r.ok and r.deviation is not None and not r.deviation <= r.rtol for r in rows),
                "evals_gradient": _max_evals(rows, "gradient"),
                "evals_hessian": _max_evals(rows, "hessian"),
                "seconds": sum(calls.values()),
                "ok": all(r.ok for r in rows),
            }
        )
    return summary


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "FAILED" if math.isinf(value) else f"{value:.1e}"
    return str(value)


def format_table(result: SuiteResult, *, max_failures: int = 20) -> str:
    """Return the summary table, a totals line and the first ``max_failures`` failing rows."""
    header = "  ".join(f"{name:{align}{width}}" for name, align, width in _TABLE_COLUMNS).rstrip()
    lines = [header, "-" * len(header)]
    for entry in summarize(result):
        evals = f"{_cell(entry['evals_gradient'])}/{_cell(entry['evals_hessian'])}"
        cells = (
            entry["case"],
            entry["strategy"],
            entry["rows"],
            entry["failed"],
            _cell(entry["worst_gradient"]),
            _cell(entry["worst_hessian"]),
            entry["by_error"],
            evals,
            f"{entry['seconds']:.1f}s",
            "pass" if entry["ok"] else "FAIL",
        )
        lines.append(
            "  ".join(
                f"{str(c):{align}{width}}" for c, (_, align, width) in zip(cells, _TABLE_COLUMNS, strict=True)
            ).rstrip()
        )
    lines.append("-" * len(header))
    failures = result.failures
    verdict = "all passed" if result.ok else f"{len(failures)} FAILED"
    lines.append(
        f"{len(result.rows)} rows ({_count(result.cases, 'case')} x {_count(result.strategies, 'strategy')} "
        f"x points x {'/'.join(LEVELS)}) in {result.seconds:.1f} s: {verdict}"
    )
    if not result.rows:
        lines.append("no rows: nothing was compared")
    for row in failures[:max_failures]:
        lines.append(_failure_line(row))
    if len(failures) > max_failures:
        lines.append(f"... and {len(failures) - max_failures} more failing rows in report.json")
    return "\n".join(lines)


def _count(items: list, noun: str) -> str:
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{len(items)} {noun if len(items) == 1 else plural}"


def _failure_line(row: Row) -> str:
    where = f"  FAIL {row.case}/{row.point} {row.strategy} {row.level} {row.param}"
    if row.message:
        return f"{where}: {row.message}"
    return (
        f"{where}: value {row.value:.10g}, reference {row.reference:.10g}, relative deviation "
        f"{_cell(row.deviation)} > rtol {row.rtol:.0e}, error estimate {_cell(row.error)}"
    )


def _strict(value: Any) -> Any:
    # json.dumps would write NaN/Infinity, which strict JSON parsers reject
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _case_entry(name: str) -> dict[str, Any]:
    case = CASES[name]
    return {
        "name": case.name,
        "description": case.description,
        "dtype": case.dtype,
        "hard": case.hard,
        "params": [
            {"name": p.name, "lower": p.lower, "upper": p.upper, "step_size": p.step_size}
            for p in case.params
        ],
        "points": [{"label": label, "values": list(values)} for label, values in case.points],
    }


def to_json(result: SuiteResult) -> dict[str, Any]:
    """Return the content of ``report.json`` as a dict of plain, strictly JSON-serialisable values."""
    return _strict(
        {
            "schema_version": SCHEMA_VERSION,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "ok": result.ok,
            "seconds": result.seconds,
            "environment": environment(),
            "options": dict(result.options),
            "cases": [_case_entry(name) for name in result.cases],
            "strategies": list(result.strategies),
            "summary": summarize(result),
            "rows": [row.to_dict() for row in result.rows],
        }
    )


def write(result: SuiteResult, directory: str | os.PathLike) -> Path:
    """Write ``report.json`` into ``directory`` (created if needed) and return its path."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "report.json"
    text = json.dumps(to_json(result), indent=1, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def print_table(result: SuiteResult, file: Any = None) -> None:
    """Print :func:`format_table` to ``file`` (default stdout)."""
    print(format_table(result), file=file or sys.stdout)
