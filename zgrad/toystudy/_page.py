"""The toy study's HTML page: one pull histogram per parameter, the summary table, failed toys.

Figures are drawn with matplotlib's object API on the Agg canvas (the user's pyplot state is
never touched) and embedded as PNG data URIs, with :mod:`zgrad.checks.plots`.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from zgrad import _files
from zgrad.checks import plots

__all__ = ["pull_png", "target_path", "write_html"]

#: Pulls are histogrammed over [-_RANGE, _RANGE]; those beyond are counted in the caption.
_RANGE = 4.0
#: At most this many failed toys are listed on the page.
_MAX_FAILED = 50

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1000px; color: #222;
  padding: 0 1em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td.text { text-align: left; white-space: normal; }
figure { margin: 0.8em 0; display: inline-block; } img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #444; max-width: 480px; }
"""


def target_path(path: str | os.PathLike) -> Path:
    """Return the file to write for ``path``; refuse an existing file or an unwritable folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "toys.html"
    if path.exists() or path.is_symlink():
        raise FileExistsError(f"{str(path)!r} exists; to_html never overwrites a file: give a new path.")
    folder = path.parent
    while not folder.exists():  # the folders to be created: the first existing one must be writable
        folder = folder.parent
    try:
        if not folder.is_dir():
            raise _files.OutputPathError(f"{str(folder)!r} is a file")
        _files.check_writable(folder)
    except _files.OutputPathError:
        message = f"cannot write {str(path)!r}: {str(folder)!r} is not a writable folder."
        raise PermissionError(message) from None
    return path


def pull_png(pulls: np.ndarray, name: str, stats: dict[str, Any]) -> bytes:
    """Histogram of ``pulls`` with the unit Gaussian expected from ``pulls.size`` toys, as PNG bytes."""
    fig = plots.new_figure(4.6, 3.4)
    ax = fig.add_subplot()
    edges = np.linspace(-_RANGE, _RANGE, 33)
    ax.hist(
        np.clip(pulls, -_RANGE, _RANGE), bins=edges, color="C0", alpha=0.6, label=f"{pulls.size} valid toys"
    )
    x = np.linspace(-_RANGE, _RANGE, 401)
    scale = pulls.size * (edges[1] - edges[0]) / math.sqrt(2 * math.pi)
    ax.plot(x, scale * np.exp(-0.5 * x**2), color="black", label="unit Gaussian")
    ax.set_xlabel(f"pull of {name}: (fit - truth) / error")
    ax.set_ylabel("toys per bin")
    ax.set_title(
        f"{name}: mean {stats['pull_mean']:+.3f} ± {stats['pull_mean_error']:.3f}, "
        f"width {stats['pull_width']:.3f} ± {stats['pull_width_error']:.3f}",
        fontsize="medium",
    )
    ax.legend(fontsize="small")
    return plots.to_png(fig)


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        cells.append(
            "<tr>"
            + "".join(f'<td class="text">{c}</td>' if k == 0 else f"<td>{c}</td>" for k, c in enumerate(row))
            + "</tr>"
        )
    return "<table>" + "".join(cells) + "</table>"


def _summary(study: Any, summary: dict[str, Any]) -> str:
    rows = [
        [
            html.escape(name),
            html.escape(f"{study.truth[name]:.6g}"),
            f"{s['n_valid']}/{s['n_toys']}",
            str(s["n_at_limit"]),
            f"{s['pull_mean']:+.3f} ± {s['pull_mean_error']:.3f}",
            f"{s['pull_width']:.3f} ± {s['pull_width_error']:.3f}",
        ]
        for name, s in summary.items()
    ]
    return _table(["parameter", "truth", "valid fits", "at limit", "pull mean", "pull width"], rows)


def _failed(study: Any) -> str:
    bad = np.flatnonzero(~study.valid)
    if bad.size == 0:
        return "<p>Every toy's fit is valid.</p>"
    rows = [
        [str(k), str(study.seed[k]), str(study.n_events[k]), html.escape(study.messages[k])]
        for k in bad[:_MAX_FAILED]
    ]
    more = f"<p>... and {bad.size - _MAX_FAILED} more.</p>" if bad.size > _MAX_FAILED else ""
    return _table(["toy", "seed", "events", "message"], rows) + more


def _figures(study: Any, summary: dict[str, Any]) -> str:
    parts = []
    for name in study.names:
        pulls = study.pulls(name)
        outside = int(np.sum(np.abs(pulls) > _RANGE))
        caption = (
            f"Pulls of {name} over the valid toys; {outside} beyond ±{_RANGE:g} are drawn in the edge bins."
        )
        image = plots.embed_png(pull_png(pulls, name, summary[name]), f"pulls of {name}")
        parts.append(f"<figure>{image}<figcaption>{html.escape(caption)}</figcaption></figure>")
    return "".join(parts)


def write_html(study: Any, path: str | os.PathLike) -> Path:
    """Write the page for ``study`` (see ``ToyStudy.to_html``) and return its path."""
    target = target_path(path)
    summary = study.summary()
    figures = _figures(study, summary)  # first: a missing matplotlib fails before anything is written
    median = float(np.median(study.seconds)) if study.n_toys else math.nan
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>zgrad toy study</title><style>{_CSS}</style></head><body>"
        "<h1>zgrad toy study</h1>"
        f"<p>{study.n_toys} toys (seed {study.base_seed}, events per toy {int(study.n_events.min())}-"
        f"{int(study.n_events.max())}), {int(study.valid.sum())} valid fits, median {median:.3g} s per toy "
        f"(sampling, loss and fit). Pull = (fit - truth) / Hesse error.</p>"
        f"<h2>Summary</h2>{_summary(study, summary)}"
        f"<h2>Pulls</h2>{figures}"
        f"<h2>Failed toys</h2>{_failed(study)}</body></html>\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    return _files.write_text(target, page)  # atomic: never a partial page under the final name
