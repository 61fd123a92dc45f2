"""``index.html``: the suite's report as one self-contained page (plots embedded as PNG data URIs).

The figures reuse zgrad's public plotting module (:mod:`zgrad.checks.plots`): the
precision plot after jacobi's (``|numerical - closed form|`` along a parameter scan, with
the error-estimate band and the float-resolution line) and the per-parameter deviation
chart; the toy pull chart is drawn here on the same matplotlib canvas (Agg, object API:
the user's pyplot state is never touched).
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from validation.cases import CASES
from validation.fits import FIT_AGREEMENT, PULL_SIGMAS
from validation.reference import RTOL
from validation.report import summarize, write_file
from validation.runner import SuiteResult
from zgrad.checks import plots
from zgrad.checks.report import environment

__all__ = ["render_html", "write_html"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1150px; color: #222;
  padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { margin-top: 1.4em; border-bottom: 1px solid #ccc; }
.verdict { display: inline-block; padding: 0.15em 0.7em; border-radius: 4px; color: white;
  font-weight: bold; }
.pass { background: #2a7d2e; } .failed { background: #b3261e; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.45em; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td.text { text-align: left; white-space: normal; min-width: 7em; }
tr.fail td { background: #fde2e0; font-weight: bold; } td.ok { color: #2a7d2e; } td.bad { color: #b3261e; }
figure { margin: 0.8em 0; } figcaption { font-size: 0.82em; color: #444; max-width: 900px; }
img { max-width: 100%; } details { margin: 0.3em 0; } summary { cursor: pointer; }
.meta { color: #555; font-size: 0.9em; }
"""

_PRECISION_CAPTION = (
    "Precision plot: {case}, d/d{param} scanned over {n} values within {width:g} step sizes of the point "
    "'{point}' (inside the limits), the other parameters fixed. Dots: |numerical - closed form| of the "
    "accurate numerical derivative; band: the numerical strategy's own error estimate (it should lie "
    "above the dots); dashed: eps·|closed form| = float resolution ({eps:.2g}), the best any method can "
    "reach."
)


def _fmt(value: Any, spec: str = ".1e") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "FAILED"
        return format(value, spec)
    return html.escape(str(value))


def _table(head: list[str], rows: list[tuple[bool, list[str]]]) -> str:
    """``rows``: (ok, cells already escaped); a failing row is highlighted. Text cells start with '|'."""
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for ok, cells in rows:
        tds = "".join(
            f'<td class="text">{c[1:]}</td>' if c.startswith("|") else f"<td>{c}</td>" for c in cells
        )
        out.append(f'<tr class="{"ok" if ok else "fail"}">{tds}</tr>')
    return "".join(out) + "</table>"


def _verdict(ok: bool) -> str:
    return '<td class="ok">pass</td>' if ok else '<td class="bad">FAIL</td>'


def _summary(result: SuiteResult) -> str:
    """One row per case: worst deviations and verdict per strategy, fit and stored-number verdicts."""
    entries = {(e["case"], e["strategy"]): e for e in summarize(result)}
    fits = {v["case"]: v for v in result.fit_verdicts}
    stored: dict[str, bool] = {}
    for check in result.reference_checks:
        stored[check.case] = stored.get(check.case, True) and check.ok
    head = ["case", "kind", "points"]
    for name in result.strategies:
        head += [f"{html.escape(name)}<br>worst grad", "worst Hessian", "evals g/h", "result"]
    head += ["fits", "stored numbers"]
    rows = []
    for name in result.cases:
        case = CASES[name]
        cells = [f"|{html.escape(name)}", f"|{case.kind}&nbsp;{case.dtype}"]
        ok = True
        mine = [entries.get((name, s)) for s in result.strategies]
        cells.append(str(max((e["points"] for e in mine if e), default=0)))
        for e in mine:
            if e is None:
                cells += ["-", "-", "-", "-"]
                continue
            ok = ok and e["ok"]
            cells += [
                _fmt(e["worst_gradient"]),
                _fmt(e["worst_hessian"]),
                f"{_fmt(e['evals_gradient'])}/{_fmt(e['evals_hessian'])}",
                "pass" if e["ok"] else "FAIL",
            ]
        fit = fits.get(name)
        ok = ok and (fit is None or fit["ok"]) and stored.get(name, True)
        cells.append("-" if fit is None else ("pass" if fit["ok"] else "FAIL"))
        cells.append("-" if name not in stored else ("pass" if stored[name] else "FAIL"))
        rows.append((ok, cells))
    return (
        "<p>Worst |deviation| / scale over the case's points and components, per strategy; evals: the most "
        "function evaluations one gradient / Hessian call used. A failing case is highlighted.</p>"
        + _table(head, rows)
    )


def _failures(result: SuiteResult, limit: int = 50) -> str:
    failures = result.failures
    if not failures:
        return "<p>No derivative component failed.</p>"
    rows = [
        (
            False,
            [
                f"|{html.escape(r.case)}/{html.escape(r.point)}",
                f"|{html.escape(r.strategy)}",
                f"|{r.level}",
                f"|{html.escape(r.param)}",
                _fmt(r.value, ".10g"),
                _fmt(r.reference, ".10g"),
                _fmt(r.deviation),
                _fmt(r.rtol, ".0e"),
                _fmt(r.error),
                _fmt(r.reference_error),
                f"|{html.escape(r.message)}",
            ],
        )
        for r in failures[:limit]
    ]
    head = [
        "case/point",
        "strategy",
        "level",
        "component",
        "value",
        "reference",
        "|dev|/scale",
        "rtol",
        "error",
        "reference error",
        "message",
    ]
    more = f"<p>... and {len(failures) - limit} more in report.json.</p>" if len(failures) > limit else ""
    return _table(head, rows) + more


def _chart_rows(result: SuiteResult, case: str) -> list[Any]:
    # zgrad's deviation chart reads crosscheck rows: relative_deviation and an absolute tolerance
    return [
        SimpleNamespace(
            strategy=r.strategy,
            param=r.param,
            level=r.level,
            relative_deviation=None if r.deviation is None or math.isnan(r.deviation) else r.deviation,
            ok=r.ok,
            tolerance=r.rtol * (r.scale or 1.0),
            scale=r.scale or 1.0,
        )
        for r in result.rows
        if r.case == case
    ]


def _deviation_charts(result: SuiteResult) -> str:
    parts = []
    strategies = tuple(result.strategies)
    for k, name in enumerate(result.cases):
        rows = _chart_rows(result, name)
        figures = []
        for level in ("gradient", "hessian"):
            labels = tuple(dict.fromkeys(r.param for r in rows if r.level == level))
            if labels:
                png = plots.deviation_png(rows, strategies, labels, level)
                figures.append(f"<figure>{plots.embed_png(png, f'{name} {level} deviation chart')}</figure>")
        failed = any(not r.ok for r in rows)
        flag = ' <b style="color:#b3261e">FAIL</b>' if failed else ""
        opened = " open" if (k == 0 or failed) else ""
        parts.append(
            f"<details{opened}><summary>{html.escape(name)}: {html.escape(CASES[name].description)}{flag}"
            f"</summary>{''.join(figures)}</details>"
        )
    return (
        "<p>Largest |deviation| / scale over the points, per component and strategy (log scale); black "
        "ticks: the relative tolerance; a red outline marks a failure.</p>" + "".join(parts)
    )


def _precision(result: SuiteResult) -> str:
    parts = []
    for task, scan in result.scans:
        caption = _PRECISION_CAPTION.format(
            case=task.case, param=task.param, n=scan.x.size, width=task.width, point=task.point, eps=scan.eps
        )
        image = plots.embed_png(plots.precision_png(scan), f"precision plot {task.case} {task.param}")
        parts.append(f"<figure>{image}<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "".join(parts) or "<p>No precision scan ran (no strategy with a gradient was selected).</p>"


def _fits(result: SuiteResult) -> str:
    if not result.fits:
        return "<p>No fits ran (no float64 model case selected, or fits were switched off).</p>"
    verdicts = {v["case"]: v for v in result.fit_verdicts}
    rows = []
    for r in result.fits:
        v = verdicts[r.case]
        shift = v["max_shift"].get(r.strategy)
        ok = r.valid and shift is not None and shift <= v["threshold"]
        values = ", ".join(f"{n} = {r.values[n]:.5g} ± {r.errors[n]:.2g}" for n in r.values) or "-"
        rows.append(
            (
                ok,
                [
                    f"|{html.escape(r.case)}",
                    f"|{html.escape(r.strategy)}",
                    "yes" if r.valid else "NO",
                    _fmt(shift, ".2e"),
                    f"|{html.escape(values)}",
                    _fmt(r.nfcn),
                    _fmt(r.ngrad),
                    f"{r.wall_time:.3f}",
                    f"|{html.escape(r.message)}",
                ],
            )
        )
    head = [
        "case",
        "strategy",
        "valid",
        "max |shift| / error",
        "best fit ± Hesse error",
        "nfcn",
        "ngrad",
        "seconds",
        "message",
    ]
    return (
        f"<p>Each model case's data fitted with zgrad.minimize.Minuit per strategy from the case's second "
        f"point. Pass: every fit valid and every value within {FIT_AGREEMENT:.0%} of the first strategy's "
        f"error of that strategy's value (the shift column).</p>" + _table(head, rows)
    )


def _pull_png(pulls: list[dict[str, Any]]) -> bytes:
    fig = plots.new_figure(8.0, 0.32 * len(pulls) + 1.4)
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(pulls))[::-1]
    for ax, key, target, title in (
        (axes[0], "mean", 0.0, "pull mean"),
        (axes[1], "width", 1.0, "pull width"),
    ):
        for yi, p in zip(y, pulls, strict=True):
            color = "C0" if p["ok"] else "red"
            ax.errorbar(p[key], yi, xerr=p[f"{key}_error"], fmt="o", color=color, capsize=3)
        ax.axvline(target, color="0.4", linestyle="--")
        ax.set_title(title, fontsize="medium")
        ax.grid(alpha=0.3)
    axes[0].set_yticks(y, [f"{p['case']} {p['strategy']} {p['param']}" for p in pulls], fontsize="small")
    return plots.to_png(fig)


def _toys(result: SuiteResult) -> str:
    if not result.toys:
        return "<p>No toy study ran (use --toys N).</p>"
    pulls = result.pulls
    rows = [
        (
            p["ok"],
            [
                f"|{html.escape(p['case'])}",
                f"|{html.escape(p['strategy'])}",
                f"|{html.escape(p['param'])}",
                str(p["n"]),
                str(p["n_invalid"]),
                f"{p['mean']:+.3f} ± {p['mean_error']:.3f}",
                f"{p['width']:.3f} ± {p['width_error']:.3f}",
                "pass" if p["ok"] else "FAIL",
            ],
        )
        for p in pulls
    ]
    head = ["case", "strategy", "param", "fits", "invalid", "pull mean", "pull width", "result"]
    return (
        f"<p>Pull = (fit - truth) / Hesse error over seeded toy data sets drawn from the model at its true "
        f"values. Pass: all fits valid, |mean| &lt; {PULL_SIGMAS:g} and |width - 1| &lt; {PULL_SIGMAS:g} "
        f"uncertainties.</p>"
        + _table(head, rows)
        + f"<figure>{plots.embed_png(_pull_png(pulls), 'toy pulls')}</figure>"
    )


def _stored(result: SuiteResult) -> str:
    bad = [c for c in result.reference_checks if not c.ok]
    text = (
        f"<p>Closed-form gradients recomputed now against validation/data/reference.json: "
        f"{len(result.reference_checks) - len(bad)} of {len(result.reference_checks)} case points agree "
        f"(rtol {RTOL:g}).</p>"
    )
    if bad:
        text += _table(
            ["case", "point", "max deviation", "message"],
            [
                (
                    False,
                    [
                        f"|{html.escape(c.case)}",
                        f"|{html.escape(c.point)}",
                        _fmt(c.max_deviation),
                        f"|{html.escape(c.message)}",
                    ],
                )
                for c in bad
            ],
        )
    return text


def write_html(result: SuiteResult, directory: str | Path) -> Path:
    """Write ``index.html`` for ``result`` into ``directory`` (atomically) and return its path."""
    return write_file(Path(directory) / "index.html", render_html(result))


def render_html(result: SuiteResult) -> str:
    """Return the page ``index.html`` for ``result``."""
    sections = [
        ("Summary: cases x strategies", _summary(result)),
        ("Failures", _failures(result)),
        ("Precision", _precision(result)),
        ("Fits", _fits(result)),
        ("Toys", _toys(result)),
        ("Stored reference numbers", _stored(result)),
        ("Deviation per parameter", _deviation_charts(result)),
    ]
    env = "".join(
        f'<tr><td class="text">{html.escape(k)}</td><td class="text">{html.escape(str(v))}</td></tr>'
        for k, v in environment(cpu_cores=True).items()
    )
    verdict = "pass" if result.ok else "failed"
    ex = result.executor
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>zgrad validation report</title><style>{_CSS}</style></head><body>"
        f'<h1>zgrad validation <span class="verdict {verdict}">{"PASSED" if result.ok else "FAILED"}'
        "</span></h1>"
        f'<p class="meta">{len(result.cases)} cases, strategies {", ".join(result.strategies) or "-"} '
        f"(fits: {', '.join(result.fit_strategies) or '-'}), {len(result.rows)} derivative rows, "
        f"{len(result.fits)} fits, {len(result.toys)} toy fits; {'quick' if result.quick else 'full'} run in "
        f"{result.seconds:.1f} s on {html.escape(str(ex.get('kind')))}"
        f"{' x ' + str(ex['workers']) if 'workers' in ex else ''}.</p>"
        + "".join(f"<h2>{title}</h2>{body}" for title, body in sections)
        + f"<h2>Environment</h2><table>{env}</table></body></html>\n"
    )
    return page
