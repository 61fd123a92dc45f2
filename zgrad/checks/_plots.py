"""The figures of the HTML cross-check report, and the parameter scan behind the precision plot.

matplotlib is imported only when a figure is drawn, and only through its object-oriented API
with the Agg canvas: drawing a report never changes the user's pyplot backend or state.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from zgrad._runmanager import run
from zgrad.checks import _inputs
from zgrad.errors import GradientError
from zgrad.gradients import _api

__all__ = ["PrecisionScan", "deviation_png", "precision_png", "precision_scan"]

#: Values below this are drawn at this height on the logarithmic axes (exact agreement).
_LOG_FLOOR = 1e-18


@dataclass(frozen=True)
class PrecisionScan:
    """The numerical derivative along one parameter, next to the reference.

    Attributes
    ----------
    param : str
    x : ndarray
        The scanned values of the parameter.
    x0 : float
        The value the scan is centred on (the first point of the check).
    step : float
        The parameter's step size: the scan spans ``width`` steps on either side.
    numerical, error : ndarray
        The accurate numerical derivative and its error estimate at each ``x``.
    reference : ndarray
        The reference derivative at each ``x``.
    reference_source : str
        ``'closed form'`` or ``'autodiff'``.
    eps : float
        Machine epsilon of the function value's dtype.
    """

    param: str
    x: np.ndarray
    x0: float
    step: float
    numerical: np.ndarray
    error: np.ndarray
    reference: np.ndarray
    reference_source: str
    eps: float

    @property
    def deviation(self) -> np.ndarray:
        """``|numerical - reference|`` at each ``x``."""
        return np.abs(self.numerical - self.reference)

    @property
    def resolution(self) -> np.ndarray:
        """``eps * |reference|``: the spacing of floating-point numbers at the derivative's size."""
        return self.eps * np.abs(self.reference)


def precision_scan(target: Any, x0: np.ndarray, index: int, n_points: int, width: float) -> PrecisionScan:
    """Scan parameter ``index`` of ``target`` around ``x0``; every Parameter is restored afterwards."""
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"n_points must be an int >= 2; got {n_points!r}.")
    if not (np.isfinite(width) and width > 0):
        raise ValueError(f"width must be positive and finite; got {width!r}.")
    params = target.params
    param = params[index]
    step = float(getattr(param, "step_size", 0.0) or 0.01 * max(abs(x0[index]), 1.0))
    grid = x0[index] + np.linspace(-width, width, n_points) * step
    lower, upper = getattr(param, "lower", None), getattr(param, "upper", None)
    grid = grid[
        (grid >= (-np.inf if lower is None else lower)) & (grid <= (np.inf if upper is None else upper))
    ]
    originals = [p.numpy() for p in params]
    numerical, error, reference = [], [], []
    try:
        _inputs.assign(params, x0)
        eps = float(np.finfo(np.asarray(run(target.func())).dtype).eps)
        for value in grid:
            x = x0.copy()
            x[index] = value
            _inputs.assign(params, x)
            with run.set_mode(autograd="numerical"):
                result = _api.derivatives(target.func, [param], strategy="numerical")
            numerical.append(result.gradient[0])
            error.append(result.error[0])
            reference.append(_reference(target, x, index))
    finally:
        for p, original in zip(params, originals, strict=True):
            p.assign(original)
    source = "closed form" if target.reference_gradient is not None else "autodiff"
    return PrecisionScan(
        param=param.name,
        x=grid,
        x0=float(x0[index]),
        step=step,
        numerical=np.array(numerical),
        error=np.array(error),
        reference=np.array(reference),
        reference_source=source,
        eps=eps,
    )


def _reference(target: Any, x: np.ndarray, index: int) -> float:
    if target.reference_gradient is not None:
        return float(np.asarray(target.reference_gradient(x.copy()), dtype=float).reshape(-1)[index])
    try:
        with run.set_mode(autograd="autodiff"):
            gradient = _api.derivatives(target.func, target.params, strategy="autodiff").gradient
    except Exception as exc:  # say why the plot is missing instead of comparing numerical with itself
        raise GradientError(
            f"No independent reference for the precision plot: there is no closed form and autodiff failed "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    return float(gradient[index])


# --- drawing ------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
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


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def deviation_png(rows: Any, strategies: tuple[str, ...], labels: tuple[str, ...], level: str) -> bytes:
    """Bar chart of the largest ``|deviation| / scale`` over the points, per component and strategy.

    A short black tick over each bar marks that row's ``tolerance / scale``; bars of failing
    components are outlined in red; a strategy that raised gets a red cross instead of a bar.
    """
    fig = _figure(max(7.5, 0.9 * len(labels) * max(1, len(strategies)) ** 0.5 + 3.5), 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(strategies))
    labelled: set[str] = set()
    for k, name in enumerate(strategies):
        color = f"C{k % 10}"
        for i, label in enumerate(labels):
            mine = [r for r in rows if r.strategy == name and r.param == label and r.level == level]
            pos = i - 0.4 + (k + 0.5) * width
            measured = [r for r in mine if r.relative_deviation is not None]
            if mine and not measured:
                ax.plot(
                    pos,
                    1.0,
                    marker="x",
                    color="red",
                    markersize=9,
                    linestyle="none",
                    label=None if "no value" in labelled else "no value",
                )
                labelled.add("no value")
                continue
            if not measured:
                continue
            failed = any(not r.ok for r in mine)
            ax.bar(
                pos,
                max(max(r.relative_deviation for r in measured), _LOG_FLOOR),
                width * 0.9,
                color=color,
                edgecolor="red" if failed else color,
                linewidth=2.0 if failed else 0.5,
                label=None if name in labelled else name,
            )
            labelled.add(name)
            tol = max(r.tolerance / r.scale for r in measured)
            ax.hlines(tol, pos - width * 0.45, pos + width * 0.45, color="black", linewidth=1.5)
    ax.plot([], [], color="black", label="tolerance / scale")
    ax.set_yscale("log")
    ax.set_ylim(_LOG_FLOOR / 2, 10.0)
    ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 6 else 0)
    ax.set_ylabel("|deviation| / scale")
    ax.set_title(f"{level}: largest |deviation| / scale over the points", fontsize="medium")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def precision_png(scan: PrecisionScan) -> bytes:
    """Draw the precision plot: ``|numerical - reference|`` along the scan, error band, float resolution."""
    fig = _figure(6.0, 3.8)
    ax = fig.add_subplot()
    t = (scan.x - scan.x0) / scan.step
    ax.fill_between(
        t,
        _LOG_FLOOR,
        np.maximum(scan.error, _LOG_FLOOR),
        color="C0",
        alpha=0.25,
        label="numerical error estimate",
    )
    ax.plot(t, np.maximum(scan.deviation, _LOG_FLOOR), "o-", color="C0", label="|numerical - reference|")
    ax.plot(
        t,
        np.maximum(scan.resolution, _LOG_FLOOR),
        "--",
        color="0.4",
        label="float resolution eps·|reference|",
    )
    ax.set_yscale("log")
    ax.set_xlabel(f"({scan.param} - {scan.x0:.6g}) / step size   [step = {scan.step:.3g}]")
    ax.set_ylabel(f"absolute error of d/d{scan.param}")
    ax.set_title(f"d/d{scan.param}: numerical vs {scan.reference_source}", fontsize="medium")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return _png(fig)
