"""Renderings of a cross-check report: a terminal table, JSON, and a self-contained HTML page.

JSON schema, version :data:`SCHEMA_VERSION` (``report.to_json()``); a change that removes or
renames a key raises the major version, one that only adds keys the minor version:

- ``schema_version`` (str, ``"1.0"``), ``kind`` (``"zgrad.crosscheck"``), ``created`` (UTC, ISO 8601);
- ``ok`` (bool): every row passed;
- ``reference_source`` (str): ``"closed form"``, ``"autodiff"`` or ``"numerical (accurate)"``;
  where levels or points differ, each distinct source followed by its level;
- ``params`` (list of str); ``points`` (list of objects ``name -> value``);
- ``strategies`` (list of str); ``hessian`` (bool); ``notes`` (list of str);
- ``tolerances``: ``rtol`` (object ``strategy -> rtol``), ``scale_floor`` (1e-3),
  ``error_covered`` (strategies whose own error estimate may cover a deviation), ``rule`` (text);
- ``summary``: ``ok``, ``n_rows``, ``n_failures``, ``failures`` (list of
  ``"strategy: param @ point (level)"``), and ``strategies``: per strategy ``rtol``, ``n_rows``,
  ``n_failures``, ``max_relative_deviation``, ``max_zscore``, ``n_evals``, ``seconds`` (sums
  over the calls made);
- ``rows``: one object per row with the fields of :class:`~zgrad.checks.CrossCheckRow`
  (``point``, ``param``, ``strategy``, ``level``, ``value``, ``error``, ``reference``,
  ``deviation``, ``zscore``, ``tolerance``, ``scale``, ``ok``, ``n_evals``, ``seconds``, ``message``);
- ``environment``: versions of Python, zgrad, NumPy, SciPy, TensorFlow, numdifftools,
  iminuit and matplotlib (``null`` where not installed), and the platform.

Missing numbers are ``null``; non-finite ones are the strings ``"inf"``, ``"-inf"`` and
``"nan"``, so the document stays strict JSON.
"""

from __future__ import annotations

import html
import json
import math
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from zgrad import _files
from zgrad._version import __version__
from zgrad.checks import plots
from zgrad.checks._rule import RULE
from zgrad.checks.result import CONSISTENCY, SCAN_PARAMS, CrossCheckData

__all__ = [
    "SCHEMA_VERSION",
    "CrossCheckReport",
    "environment",
    "format_table",
    "render_html",
    "summarize",
    "to_json",
    "write_html",
]

#: Version of the JSON document written by ``CrossCheckReport.to_json()``.
SCHEMA_VERSION = "1.0"
#: At most this many parameters get a precision plot in the HTML page (those crosscheck scans).
MAX_PRECISION_PLOTS = SCAN_PARAMS
_COLUMNS = (
    "point",
    "level",
    "param",
    "strategy",
    "value",
    "reference",
    "deviation",
    "error",
    "zscore",
    "tolerance",
    "ok",
    "n_evals",
    "seconds",
)


def environment(cpu_cores: bool = False) -> dict[str, Any]:
    """Return the versions of Python, the platform and the packages a check depends on.

    Parameters
    ----------
    cpu_cores : bool
        Also give ``cpu_cores``: the cores this process may use (its CPU affinity where the
        platform has one, else all cores), a fact to read timings with.

    Examples
    --------
    >>> from zgrad.checks.report import environment
    >>> sorted(environment())[:3]
    ['iminuit', 'matplotlib', 'numdifftools']
    >>> environment(cpu_cores=True)["cpu_cores"] >= 1
    True
    """
    versions: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("zgrad", "numpy", "scipy", "tensorflow", "numdifftools", "iminuit", "matplotlib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    if versions["zgrad"] is None:  # a source checkout that was never installed
        versions["zgrad"] = __version__
    if cpu_cores:
        try:
            versions["cpu_cores"] = len(os.sched_getaffinity(0))
        except AttributeError:  # not available on every platform
            versions["cpu_cores"] = os.cpu_count()
    return versions


def summarize(report: CrossCheckData) -> dict[str, Any]:
    """Return the ``summary`` section of the JSON document for ``report``."""
    per_strategy = {}
    for name in report.strategies:
        rows = [r for r in report.rows if r.strategy == name]
        calls = {(r.point, r.level): (r.n_evals, r.seconds) for r in rows}
        relative = [r.relative_deviation for r in rows if r.relative_deviation is not None]
        zscores = [r.zscore for r in rows if r.zscore is not None]
        per_strategy[name] = {
            "rtol": report.rtols[name],
            "n_rows": len(rows),
            "n_failures": sum(not r.ok for r in rows),
            "max_relative_deviation": max(relative, default=None),
            "max_zscore": max(zscores, default=None),
            "n_evals": sum(n for n, _ in calls.values() if n is not None) if calls else None,
            "seconds": sum(s for _, s in calls.values()),
        }
    return {
        "ok": report.ok,
        "n_rows": len(report.rows),
        "n_failures": len(report.failures),
        "failures": [f"{r.strategy}: {r.param} @ {r.point} ({r.level})" for r in report.failures],
        "strategies": per_strategy,
    }


def _document(report: CrossCheckData) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "zgrad.crosscheck",
        "created": report.created,
        "ok": report.ok,
        "reference_source": report.reference_source,
        "params": list(report.params),
        "points": [dict(zip(report.params, map(float, x), strict=True)) for x in report.points],
        "strategies": list(report.strategies),
        "hessian": report.hessian,
        "notes": list(report.notes),
        "tolerances": {
            "rtol": dict(report.rtols),
            "scale_floor": report.scale_floor,
            "error_covered": sorted(report.error_covered),
            "rule": RULE,
        },
        "summary": summarize(report),
        "rows": [row.as_dict() for row in report.rows],
        "environment": environment(),
    }


def json_safe(value: Any) -> Any:
    """Return ``value`` with non-finite floats as the strings ``'nan'``, ``'inf'``, ``'-inf'``.

    ``json.dumps`` would write ``NaN``/``Infinity``, which strict JSON parsers reject.

    Examples
    --------
    >>> from zgrad.checks.report import json_safe
    >>> json_safe({"a": [1.0, float("inf")]})
    {'a': [1.0, 'inf']}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def to_json(report: CrossCheckData, indent: int | None = 2) -> str:
    """Return ``report`` as a strict JSON document (see the module docstring for the schema)."""
    return json.dumps(json_safe(_document(report)), indent=indent, allow_nan=False)


# --- terminal -----------------------------------------------------------------------------------


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "-"
    if column == "ok":
        return "ok" if value else "FAIL"
    if column == "seconds":
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:.6g}" if column in ("value", "reference") else f"{value:.2e}"
    return str(value)


def format_table(report: CrossCheckData) -> str:
    """Return the terminal table: a header, one line per row, the failures' messages, a summary line."""
    lines = [
        f"zgrad crosscheck: {'OK' if report.ok else 'FAILED'}  reference: {report.reference_source}",
        "rtol: " + ", ".join(f"{k}={v:g}" for k, v in report.rtols.items()),
    ]
    cells = [[_cell(getattr(row, c), c) for c in _COLUMNS] for row in report.rows]
    widths = [max([len(c), *(len(line[k]) for line in cells)]) for k, c in enumerate(_COLUMNS)]
    lines.append("  ".join(c.rjust(w) for c, w in zip(_COLUMNS, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    grouped: dict[tuple, list[str]] = {}
    for r in report.rows:
        if r.message:
            grouped.setdefault((r.strategy, r.point, r.level, r.message), []).append(r.param)
    if grouped:
        lines.append("messages:")
        lines += [
            f"  {s} @ point {p} ({lvl}; {', '.join(ps)}): {m}" for (s, p, lvl, m), ps in grouped.items()
        ]
    lines += [f"note: {note}" for note in report.notes]
    lines.append(f"{len(report.rows)} rows, {len(report.failures)} failed")
    return "\n".join(lines)


# --- HTML ---------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.verdict { display: inline-block; padding: 0.2em 0.8em; border-radius: 4px; color: white; font-weight: bold; }
.pass { background: #2a7d2e; } .failed { background: #b3261e; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.5em; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
tr.fail td { background: #fde2e0; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #444; max-width: 900px; }
img { max-width: 100%; }
"""

_PRECISION_CAPTION = (
    "Precision plot (after jacobi's): the parameter is scanned over {n} values within three step sizes "
    "of the checked point (inside its limits), the other parameters held fixed. Dots: |numerical - "
    "reference| of the accurate numerical derivative; shaded band: the numerical strategy's own error "
    "estimate, which should lie above the dots; dashed line: eps·|reference|, the spacing of "
    "floating-point numbers ({eps:.2g}, the function value's dtype) at the size of the derivative, the "
    "best any method can reach. Finite differences usually sit above that line because rounding in f is "
    "amplified by 1/step. Exact agreement is drawn at 1e-18."
)


def _summary_html(report: CrossCheckData) -> str:
    summary = summarize(report)
    verdict = "pass" if report.ok else "failed"
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "strategy",
            "rtol",
            "rows",
            "failures",
            "max |dev|/scale",
            "max z",
            "evaluations",
            "seconds",
        )
    )
    body = "".join(
        f'<tr><td class="text">{html.escape(name)}</td>'
        + "".join(
            f"<td>{_cell(s[k], k if k == 'seconds' else 'x')}</td>"
            for k in (
                "rtol",
                "n_rows",
                "n_failures",
                "max_relative_deviation",
                "max_zscore",
                "n_evals",
                "seconds",
            )
        )
        + "</tr>"
        for name, s in summary["strategies"].items()
    )
    points = "".join(
        f"<tr><td>{k}</td>" + "".join(f"<td>{v:.8g}</td>" for v in x) + "</tr>"
        for k, x in enumerate(report.points)
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    return (
        f'<p><span class="verdict {verdict}">{"OK" if report.ok else "FAILED"}</span> '
        f"{summary['n_rows']} rows, {summary['n_failures']} failed. Reference: "
        f"<b>{html.escape(report.reference_source)}</b>. Created {html.escape(report.created)}.</p>"
        f"<p>Verdict rule: {html.escape(RULE)}.</p>"
        f"<table><tr>{head}</tr>{body}</table>"
        f"<h3>Points</h3><table><tr><th>point</th>"
        + "".join(f"<th>{html.escape(p)}</th>" for p in report.params)
        + f"</tr>{points}</table>"
        + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "")
    )


def _rows_html(report: CrossCheckData) -> str:
    head = "".join(f"<th>{c}</th>" for c in (*_COLUMNS, "message"))
    lines = []
    for row in report.rows:
        cells = "".join(
            f"<td{' class=text' if c in ('param', 'strategy', 'level') else ''}>"
            f"{html.escape(_cell(getattr(row, c), c))}</td>"
            for c in _COLUMNS
        )
        lines.append(
            f'<tr class="{"ok" if row.ok else "fail"}">{cells}'
            f'<td class="text">{html.escape(row.message)}</td></tr>'
        )
    return f"<table><tr>{head}</tr>{''.join(lines)}</table>"


def _plots_html(report: CrossCheckData) -> str:
    parts = []
    levels = ("gradient", "hessian") if report.hessian else ("gradient",)
    if any(r.level == CONSISTENCY for r in report.rows):
        levels = (*levels, CONSISTENCY)
    for level in levels:
        labels = tuple(dict.fromkeys(r.param for r in report.rows if r.level == level))
        if labels:
            parts.append(
                "<figure>"
                + plots.embed_png(
                    plots.deviation_png(report.rows, report.strategies, labels, level),
                    f"{level} deviation chart",
                )
                + "<figcaption>Largest |deviation| / scale over the points, per parameter and strategy "
                "(log scale). Black ticks: the tolerance of that bar, divided by the same scale; a red "
                "outline marks a failure.</figcaption></figure>"
            )
    for name in report.params[:MAX_PRECISION_PLOTS]:
        try:
            scan = report.precision_scan(name)  # the stored scan: rendering computes nothing
        except ValueError as exc:  # no scans held, or the scan failed (GradientError)
            parts.append(f"<p>No precision plot for {html.escape(name)}: {html.escape(str(exc))}</p>")
            continue
        caption = _PRECISION_CAPTION.format(n=scan.x.size, eps=scan.eps)
        parts.append(
            f"<figure>{plots.embed_png(plots.precision_png(scan), f'precision plot {name}')}"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    if len(report.params) > MAX_PRECISION_PLOTS:
        parts.append(f"<p>Precision plots are drawn for the first {MAX_PRECISION_PLOTS} parameters only.</p>")
    return "".join(parts)


def write_html(report: CrossCheckData, path: str | os.PathLike) -> Path:
    """Write the self-contained HTML page for ``report`` to ``path`` (a file, or a folder for index.html).

    The page is rendered first and written atomically (a temporary file renamed into place), so
    a failure part-way never leaves a partial or an earlier page under the final name.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    return _files.write_text(path, render_html(report))


def render_html(report: CrossCheckData) -> str:
    """Return the self-contained HTML page for ``report`` (tables and embedded PNG plots)."""
    figures = _plots_html(report)  # first: a missing matplotlib fails before anything is written
    env = "".join(
        f"<tr><td class=text>{html.escape(k)}</td><td class=text>{html.escape(str(v))}</td></tr>"
        for k, v in environment().items()
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>zgrad crosscheck report</title><style>{_CSS}</style></head><body>"
        "<h1>zgrad gradient cross-check</h1>"
        f"<h2>Summary</h2>{_summary_html(report)}"
        f"<h2>Plots</h2>{figures}"
        f"<h2>Rows</h2>{_rows_html(report)}"
        "<p>Columns: value (the strategy's derivative), reference, deviation = value - reference, error "
        "(the strategy's own error estimate; - where exact), zscore = |deviation| / error, tolerance (the "
        "largest |deviation| that passes), n_evals (function evaluations), seconds (wall time of the call)."
        "</p>"
        f"<h2>Environment</h2><table>{env}</table></body></html>\n"
    )
    return page


class CrossCheckReport(CrossCheckData):
    """The outcome of :func:`~zgrad.checks.crosscheck`: its numbers, verdict, and renderings.

    The numbers are those of :class:`~zgrad.checks.result.CrossCheckData` (``rows``,
    ``params``, ``points``, ``strategies``, ``rtols``, ``reference_source``, ``hessian``,
    ``notes``, ``errordef``, and the precision ``scans``); ``ok``, ``failures``,
    ``inconclusive`` and :meth:`precision_scan` read them. ``str(report)`` is a terminal
    table; :meth:`to_json` and :meth:`to_html` write the same content for machines and for
    people (see :mod:`zgrad.checks.report` for the JSON schema). Rendering computes nothing:
    the precision plots draw the scans ``crosscheck`` made.

    Examples
    --------
    >>> import zgrad
    >>> from zgrad.checks import crosscheck
    >>> x = zgrad.Parameter("x", 2.0)
    >>> report = crosscheck(lambda: x**3, [x], strategies=["autodiff"], reference=lambda v: [3 * v[0] ** 2])
    >>> report.ok, len(report.rows), report.failures
    (True, 1, ())
    >>> report.rows[0].value, report.rows[0].reference
    (12.0, 12.0)
    >>> report.precision_scan("x").x.size
    15
    """

    def summary(self) -> dict[str, Any]:
        """Return counts, the largest relative deviation and z-score, cost and time per strategy."""
        return summarize(self)

    def __str__(self) -> str:
        return format_table(self)

    def __repr__(self) -> str:
        return f"<CrossCheckReport ok={self.ok} rows={len(self.rows)} failures={len(self.failures)}>"

    def to_json(self, indent: int | None = 2) -> str:
        """Return the report as a JSON document (schema :data:`zgrad.checks.report.SCHEMA_VERSION`)."""
        return to_json(self, indent=indent)

    def to_html(self, path: str | os.PathLike) -> Path:
        """Write one self-contained HTML page (tables and embedded PNG plots); return its path.

        ``path`` is the file to write, or an existing directory to write ``index.html`` into.
        Rendering needs matplotlib and draws the precision scans ``crosscheck`` stored; a pickled
        or copied report holds only its rows, so its page has no precision plots.
        """
        return write_html(self, path)
