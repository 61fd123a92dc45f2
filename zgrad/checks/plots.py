"""Figures drawn from the numbers of a check: a blank figure, PNG bytes, deviation and precision plots.

Every function here draws data it is given and computes nothing about the function checked.
matplotlib is imported only when a figure is made, and only through its object-oriented API
with the Agg canvas: drawing never changes the user's pyplot backend or state.

Examples
--------
>>> from zgrad.checks import plots
>>> fig = plots.new_figure(3.0, 2.0)
>>> _ = fig.add_subplot().plot([0, 1], [1, 0])
>>> plots.to_png(fig)[1:4]
b'PNG'
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from zgrad.checks.result import PrecisionScan

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["LOG_FLOOR", "ChartRow", "deviation_png", "embed_png", "new_figure", "precision_png", "to_png"]

#: Values below this are drawn at this height on the logarithmic axes (exact agreement).
LOG_FLOOR = 1e-18


class ChartRow(Protocol):
    """What :func:`deviation_png` reads of a row (a :class:`~zgrad.checks.CrossCheckRow` has it all)."""

    strategy: str
    param: str
    level: str
    ok: bool
    tolerance: float | None
    scale: float | None

    @property
    def relative_deviation(self) -> float | None:
        """``|deviation| / scale``, or None where the row has no value."""


def new_figure(width: float, height: float) -> Figure:
    """Return a matplotlib ``Figure`` of ``width`` x ``height`` inches on its own Agg canvas.

    Raises
    ------
    ImportError
        If matplotlib is not installed, saying how to install it.

    Examples
    --------
    >>> from zgrad.checks.plots import new_figure
    >>> fig = new_figure(4.0, 3.0)
    >>> [float(v) for v in fig.get_size_inches()], float(fig.dpi)
    ([4.0, 3.0], 100.0)
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # optional dependency: say how to get it
        raise ImportError(
            "The HTML report draws its plots with matplotlib, which is not installed: pip install matplotlib"
        ) from exc
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    """Return ``fig`` encoded as PNG bytes.

    Examples
    --------
    >>> from zgrad.checks.plots import new_figure, to_png
    >>> to_png(new_figure(1.0, 1.0))[1:4]
    b'PNG'
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def embed_png(png: bytes, alt: str) -> str:
    """Return an HTML ``<img>`` element that holds ``png`` as a data URI, with ``alt`` escaped.

    Examples
    --------
    >>> from zgrad.checks.plots import embed_png
    >>> embed_png(b"PNG", "a < b")
    '<img alt="a &lt; b" src="data:image/png;base64,UE5H">'
    """
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def deviation_png(
    rows: Sequence[ChartRow], strategies: Sequence[str], labels: Sequence[str], level: str
) -> bytes:
    """Bar chart of the largest ``|deviation| / scale`` over the points, per component and strategy.

    A short black tick over each bar marks that row's ``tolerance / scale``; bars of failing
    components are outlined in red; a strategy that raised gets a red cross instead of a bar.

    Parameters
    ----------
    rows : sequence of CrossCheckRow
        The rows to draw (anything with the attributes of :class:`ChartRow`).
    strategies : sequence of str
        One bar per strategy, in this order.
    labels : sequence of str
        The components (parameter names, or ``'a,b'`` Hessian entries) along the axis.
    level : str
        ``'gradient'`` or ``'hessian'``: only rows of this level are drawn.

    Returns
    -------
    bytes
        The chart as PNG.

    Examples
    --------
    >>> from zgrad.checks import CrossCheckRow
    >>> from zgrad.checks.plots import deviation_png
    >>> row = CrossCheckRow(point=0, param="x", strategy="numerical", value=2.0 + 1e-9, error=1e-8,
    ...                     reference=2.0, deviation=1e-9, zscore=0.1, tolerance=1e-8, ok=True,
    ...                     n_evals=31, seconds=0.01, scale=2.0)
    >>> deviation_png([row], ["numerical"], ["x"], "gradient")[1:4]
    b'PNG'
    """
    fig = new_figure(max(7.5, 0.9 * len(labels) * max(1, len(strategies)) ** 0.5 + 3.5), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(strategies))
    labelled: set[str] = set()
    for k, name in enumerate(strategies):
        for i, label in enumerate(labels):
            mine = [r for r in rows if r.strategy == name and r.param == label and r.level == level]
            _bar(ax, mine, i - 0.4 + (k + 0.5) * width, width, f"C{k % 10}", name, labelled)
    ax.plot([], [], color="black", label="tolerance / scale")
    ax.set_yscale("log")
    ax.set_ylim(LOG_FLOOR / 2, 10.0)
    ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 6 else 0)
    ax.set_ylabel("|deviation| / scale")
    ax.set_title(f"{level}: largest |deviation| / scale over the points", fontsize="medium")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return to_png(fig)


def _bar(
    ax: Axes, mine: list[ChartRow], pos: float, width: float, color: str, name: str, labelled: set[str]
) -> None:
    """Draw one strategy's bar (or cross) for one component at ``pos``; label each kind once."""
    measured = [r for r in mine if r.relative_deviation is not None]
    if mine and not measured:
        label = None if "no value" in labelled else "no value"
        ax.plot(pos, 1.0, marker="x", color="red", markersize=9, linestyle="none", label=label)
        labelled.add("no value")
        return
    if not measured:
        return
    failed = any(not r.ok for r in mine)
    height = max(max(r.relative_deviation for r in measured), LOG_FLOOR)
    ax.bar(
        pos,
        height,
        width * 0.9,
        color=color,
        edgecolor="red" if failed else color,
        linewidth=2.0 if failed else 0.5,
        label=None if name in labelled else name,
    )
    labelled.add(name)
    tol = max(r.tolerance / r.scale for r in measured)
    ax.hlines(tol, pos - width * 0.45, pos + width * 0.45, color="black", linewidth=1.5)


def precision_png(scan: PrecisionScan) -> bytes:
    """Draw the precision plot: ``|numerical - reference|`` along the scan, error band, float resolution.

    Parameters
    ----------
    scan : PrecisionScan
        The scan to draw (``report.precision_scan(name)``).

    Returns
    -------
    bytes
        The plot as PNG.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad.checks.plots import precision_png
    >>> from zgrad.checks.result import PrecisionScan
    >>> scan = PrecisionScan(param="x", x=np.array([0.9, 1.0, 1.1]), x0=1.0, step=0.1,
    ...                      numerical=np.array([1.8, 2.0, 2.2]), error=np.full(3, 1e-8),
    ...                      reference=np.array([1.8, 2.0, 2.2]), reference_source="closed form",
    ...                      eps=2.0**-52)
    >>> precision_png(scan)[1:4]
    b'PNG'
    """
    fig = new_figure(6.0, 3.8)
    ax = fig.add_subplot()
    t = (scan.x - scan.x0) / scan.step
    ax.fill_between(
        t,
        LOG_FLOOR,
        np.maximum(scan.error, LOG_FLOOR),
        color="C0",
        alpha=0.25,
        label="numerical error estimate",
    )
    ax.plot(t, np.maximum(scan.deviation, LOG_FLOOR), "o-", color="C0", label="|numerical - reference|")
    ax.plot(
        t, np.maximum(scan.resolution, LOG_FLOOR), "--", color="0.4", label="float resolution eps·|reference|"
    )
    ax.set_yscale("log")
    ax.set_xlabel(f"({scan.param} - {scan.x0:.6g}) / step size   [step = {scan.step:.3g}]")
    ax.set_ylabel(f"absolute error of d/d{scan.param}")
    ax.set_title(f"d/d{scan.param}: numerical vs {scan.reference_source}", fontsize="medium")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return to_png(fig)
