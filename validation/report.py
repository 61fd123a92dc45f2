"""Summaries of a suite run: tables for the terminal and ``report.json``.

``report.json``, schema version :data:`SCHEMA_VERSION` (2), holds:

- ``schema_version`` (int, 2), ``created`` (UTC, ISO 8601), ``ok`` (bool: every part below
  passed), ``seconds`` (wall time of the run);
- ``environment``: versions of Python, zgrad, TensorFlow, numdifftools, iminuit, matplotlib,
  NumPy, SciPy, the platform and ``cpu_cores``;
- ``options``: what was asked for (``quick``, ``cases`` patterns, ``strategies``, ``toys``, ``fits``);
- ``executor``: where the tasks ran: ``kind`` (``"in-process"``, ``"processes"`` with ``workers``,
  ``"dask"`` with ``scheduler`` and ``workers``);
- ``cases``: each case's ``name``, ``description``, ``kind`` (``"function"`` or ``"model"``),
  ``loss`` (model cases), ``dtype``, ``hard``, ``hessian_source``, ``params`` (limits, step
  size), ``points`` and, for model cases, ``truth`` and ``n_events``;
- ``strategies`` (checked at derivative level) and ``fit_strategies``;
- ``summary``: one entry per case and strategy (see :func:`summarize`);
- ``rows``: one entry per derivative component: the fields of :class:`validation.derivatives.Row`;
- ``reference_checks``: the closed forms against the stored numbers: ``rtol`` and ``checks``,
  one entry per case and point (``case``, ``point``, ``max_deviation``, ``ok``, ``message``);
- ``fits``: ``rows`` (one per case and strategy: the fields of :class:`validation.fits.FitRow`),
  ``verdicts`` (per case: ``reference`` strategy, ``max_shift`` per strategy in units of the
  reference's errors, ``invalid``, ``threshold``, ``ok``);
- ``toys``: ``n`` (per case), ``rows`` (one per toy and strategy: :class:`validation.fits.ToyRow`, from
  ``zgrad.toys``: ``seed`` is the toy's own seed, derived from ``validation.fits.TOY_SEED``),
  ``pulls`` (per case, strategy and parameter: ``n``, ``n_invalid``, ``mean``, ``mean_error``,
  ``width``, ``width_error``, ``ok``).

Version 2 added ``kind``, ``loss``, ``hessian_source``, ``truth`` and ``n_events`` to cases,
``reference_error`` to rows, and ``executor``, ``fit_strategies``, ``reference_checks``, ``fits``
and ``toys``. Missing numbers are ``null``; non-finite ones the strings ``"nan"``, ``"inf"``
and ``"-inf"``, so the file stays strict JSON.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from validation.cases import CASES, LEVELS
from validation.derivatives import Row
from validation.fits import FIT_AGREEMENT
from validation.reference import RTOL
from validation.runner import SuiteResult
from zgrad import _files
from zgrad.checks import report as _checks_report

__all__ = [
    "SCHEMA_VERSION",
    "format_fits",
    "format_report",
    "format_table",
    "format_toys",
    "print_table",
    "render",
    "summarize",
    "to_json",
    "write",
    "write_file",
]

#: Bumped whenever a field of ``report.json`` changes meaning or disappears.
SCHEMA_VERSION = 2

_TABLE_COLUMNS = (
    ("case", "<", 19),
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
    ``by_error`` (rows that pass only because an error estimate covers the true error),
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


def _line(cells: tuple, columns: tuple) -> str:
    return "  ".join(
        f"{str(c):{align}{width}}" for c, (_, align, width) in zip(cells, columns, strict=True)
    ).rstrip()


def format_table(result: SuiteResult, *, max_failures: int = 20) -> str:
    """Return the derivative summary table, a totals line and the first ``max_failures`` failing rows."""
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
        lines.append(_line(cells, _TABLE_COLUMNS))
    lines.append("-" * len(header))
    failures = result.failures
    verdict = "all passed" if not failures else f"{len(failures)} FAILED"
    lines.append(
        f"{len(result.rows)} rows ({_count(result.cases, 'case')} x {_count(result.strategies, 'strategy')} "
        f"x points x {'/'.join(LEVELS)}): {verdict}"
    )
    if not result.rows:
        lines.append("no rows: nothing was compared")
    for row in failures[:max_failures]:
        lines.append(_failure_line(row))
    if len(failures) > max_failures:
        lines.append(f"... and {len(failures) - max_failures} more failing rows in report.json")
    return "\n".join(lines)


def format_fits(result: SuiteResult) -> str:
    """Return the fit table: per case and strategy, validity, shift from the reference fit, calls, time."""
    if not result.fits:
        return ""
    verdicts = {v["case"]: v for v in result.fit_verdicts}
    cols = (
        ("fit case", "<", 19),
        ("strategy", "<", 9),
        ("valid", "<", 5),
        ("shift/err", ">", 9),
        ("nfcn", ">", 5),
        ("ngrad", ">", 5),
        ("time", ">", 7),
        ("result", "<", 6),
    )
    lines = [_line(tuple(c[0] for c in cols), cols)]
    lines.append("-" * len(lines[0]))
    for row in result.fits:
        verdict = verdicts[row.case]
        shift = verdict["max_shift"].get(row.strategy)
        good = row.valid and shift is not None and shift <= verdict["threshold"]
        cells = (
            row.case,
            row.strategy,
            "yes" if row.valid else "NO",
            _cell(shift),
            _cell(row.nfcn),
            _cell(row.ngrad),
            f"{row.wall_time:.2f}s",
            "pass" if good else "FAIL",
        )
        lines.append(_line(cells, cols))
    failed = [v["case"] for v in verdicts.values() if not v["ok"]]
    lines.append(
        f"fits agree within {FIT_AGREEMENT:.0%} of an error and are valid: "
        + ("all cases" if not failed else f"FAILED for {', '.join(failed)}")
    )
    for row in result.fits:
        if not row.valid:
            lines.append(f"  INVALID {row.case} {row.strategy}: {row.message}")
    return "\n".join(lines)


def format_toys(result: SuiteResult) -> str:
    """Return the pull table of the toy study (empty when no toys ran)."""
    if not result.toys:
        return ""
    cols = (
        ("toy case", "<", 19),
        ("strategy", "<", 9),
        ("param", "<", 8),
        ("n", ">", 4),
        ("pull mean", ">", 15),
        ("pull width", ">", 15),
        ("result", "<", 6),
    )
    lines = [_line(tuple(c[0] for c in cols), cols)]
    lines.append("-" * len(lines[0]))
    for p in result.pulls:
        cells = (
            p["case"],
            p["strategy"],
            p["param"],
            p["n"],
            f"{p['mean']:+.2f} ± {p['mean_error']:.2f}",
            f"{p['width']:.2f} ± {p['width_error']:.2f}",
            "pass" if p["ok"] else "FAIL",
        )
        lines.append(_line(cells, cols))
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


def format_report(result: SuiteResult) -> str:
    """Return every table of the run and the overall verdict, as printed at the end of the main job."""
    parts = [format_table(result)]
    bad = [c for c in result.reference_checks if not c.ok]
    parts.append(
        f"stored reference numbers: {len(result.reference_checks) - len(bad)}/{len(result.reference_checks)} "
        f"points agree (rtol {RTOL:g})" + "".join(f"\n  FAIL {c.case}/{c.point}: {c.message}" for c in bad)
    )
    parts += [text for text in (format_fits(result), format_toys(result)) if text]
    parts.append(
        f"{'ALL PASSED' if result.ok else 'FAILED'} in {result.seconds:.1f} s ({result.executor['kind']})"
    )
    return "\n\n".join(parts)


def _case_entry(name: str) -> dict[str, Any]:
    case = CASES[name]
    entry = {
        "name": case.name,
        "description": case.description,
        "kind": case.kind,
        "loss": None if case.model is None else case.model.loss,
        "dtype": case.dtype,
        "hard": case.hard,
        "hessian_source": case.hessian_source,
        "params": [
            {"name": p.name, "lower": p.lower, "upper": p.upper, "step_size": p.step_size}
            for p in case.params
        ],
        "points": [{"label": label, "values": list(values)} for label, values in case.points],
    }
    if case.model is not None:
        entry["truth"] = list(case.model.truth)
        entry["n_events"] = case.model.n_events
    return entry


def to_json(result: SuiteResult) -> dict[str, Any]:
    """Return the content of ``report.json`` as a dict of plain, strictly JSON-serialisable values."""
    toys_per_case: dict[str, int] = {}
    for row in result.toys:
        toys_per_case[row.case] = max(toys_per_case.get(row.case, 0), row.toy + 1)
    return _checks_report.json_safe(
        {
            "schema_version": SCHEMA_VERSION,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "ok": result.ok,
            "seconds": result.seconds,
            "environment": _checks_report.environment(cpu_cores=True),
            "options": dict(result.options),
            "executor": dict(result.executor),
            "cases": [_case_entry(name) for name in result.cases],
            "strategies": list(result.strategies),
            "fit_strategies": list(result.fit_strategies),
            "summary": summarize(result),
            "rows": [row.to_dict() for row in result.rows],
            "reference_checks": {"rtol": RTOL, "checks": [c.to_dict() for c in result.reference_checks]},
            "fits": {"rows": [r.to_dict() for r in result.fits], "verdicts": result.fit_verdicts},
            "toys": {"n": toys_per_case, "rows": [r.to_dict() for r in result.toys], "pulls": result.pulls},
        }
    )


def render(result: SuiteResult) -> str:
    """Return the text of ``report.json`` (strict JSON)."""
    return json.dumps(to_json(result), indent=1, allow_nan=False) + "\n"


def write(result: SuiteResult, directory: str | os.PathLike) -> Path:
    """Write ``report.json`` into ``directory`` (created if needed, atomically) and return its path."""
    return write_file(Path(directory) / "report.json", render(result))


def write_file(path: str | os.PathLike, content: str) -> Path:
    """Write ``content`` to ``path`` atomically, with zgrad's one report writer, and return the path.

    The suite's modules write through this function: it is their one use of zgrad's private
    file helpers.
    """
    return _files.write_text(path, content)


def print_table(result: SuiteResult, file: Any = None) -> None:
    """Print :func:`format_report` to ``file`` (default stdout)."""
    print(format_report(result), file=file or sys.stdout)
