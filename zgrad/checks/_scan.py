"""The precision scans: the accurate numerical derivative along one parameter, next to the reference.

This is computation (it moves the Parameters and evaluates the function); the data it returns,
:class:`~zgrad.checks.result.PrecisionScan`, is drawn by :func:`zgrad.checks.plots.precision_png`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from zgrad import _convert, _policy
from zgrad.checks import _inputs
from zgrad.checks.result import SCAN_PARAMS, SCAN_POINTS, SCAN_WIDTH, PrecisionScan, ScanFailure
from zgrad.errors import GradientError
from zgrad.gradients import _api
from zgrad.typing import limits_of

__all__ = ["ScanTarget", "precision_scan", "scan_parameters"]


class ScanTarget(Protocol):
    """What a scan differentiates: a zero-argument function of Parameters, and the closed form if any."""

    func: Callable[[], Any]
    params: Sequence[Any]
    reference_gradient: Callable[[np.ndarray], Any] | None


def scan_parameters(target: ScanTarget, x0: np.ndarray) -> dict[str, PrecisionScan | ScanFailure]:
    """Scan each of the first :data:`SCAN_PARAMS` parameters around ``x0``, as the HTML page shows them.

    A scan that raises is kept as a :class:`ScanFailure` with the error's message, so the
    check's rows are reported whatever happens to a scan.
    """
    scans: dict[str, PrecisionScan | ScanFailure] = {}
    for index, param in enumerate(target.params[:SCAN_PARAMS]):
        try:
            scans[param.name] = precision_scan(target, x0, index, SCAN_POINTS, SCAN_WIDTH)
        except Exception as exc:  # the page says why this plot is missing
            message = str(exc) if isinstance(exc, GradientError) else f"{type(exc).__name__}: {exc}"
            scans[param.name] = ScanFailure(param.name, message)
    return scans


def precision_scan(
    target: ScanTarget, x0: np.ndarray, index: int, n_points: int, width: float
) -> PrecisionScan:
    """Scan parameter ``index`` of ``target`` around ``x0``; every Parameter is restored afterwards.

    Raises
    ------
    ValueError
        For ``n_points`` that is not an int >= 2, or a ``width`` that is not positive and finite.
    zgrad.errors.GradientError
        Without a closed form, when autodiff fails: there is no independent reference.
    """
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 2:
        raise ValueError(f"n_points must be an int >= 2; got {n_points!r}.")
    if not (np.isfinite(width) and width > 0):
        raise ValueError(f"width must be positive and finite; got {width!r}.")
    params = target.params
    param = params[index]
    step = float(getattr(param, "step_size", 0.0) or 0.01 * max(abs(x0[index]), 1.0))
    grid = _inside(param, x0[index] + np.linspace(-width, width, n_points) * step)
    originals = [p.numpy() for p in params]
    try:
        _inputs.assign(params, x0)
        eps = float(np.finfo(np.asarray(_convert.to_numpy(target.func())).dtype).eps)
        columns = np.array([_scan_point(target, x0, index, v) for v in grid], dtype=float).reshape(-1, 3)
    finally:
        for p, original in zip(params, originals, strict=True):
            p.assign(original)
    return PrecisionScan(
        param=param.name,
        x=grid,
        x0=float(x0[index]),
        step=step,
        numerical=columns[:, 0],
        error=columns[:, 1],
        reference=columns[:, 2],
        reference_source="closed form" if target.reference_gradient is not None else "autodiff",
        eps=eps,
        n_points=n_points,
        width=float(width),
    )


def _inside(param: Any, grid: np.ndarray) -> np.ndarray:
    low, high = limits_of(param)
    return grid[(grid >= low) & (grid <= high)]


def _scan_point(target: ScanTarget, x0: np.ndarray, index: int, value: float) -> tuple[float, float, float]:
    """Return ``(numerical derivative, its error, reference)`` with parameter ``index`` at ``value``."""
    x = x0.copy()
    x[index] = value
    _inputs.assign(target.params, x)
    with _policy.set_mode(autograd="numerical"):
        result = _api.derivatives(target.func, [target.params[index]], strategy="numerical")
    return result.gradient[0], result.error[0], _reference(target, x, index)


def _reference(target: ScanTarget, x: np.ndarray, index: int) -> float:
    if target.reference_gradient is not None:
        return float(np.asarray(target.reference_gradient(x.copy()), dtype=float).reshape(-1)[index])
    try:
        with _policy.set_mode(autograd="autodiff"):
            gradient = _api.derivatives(target.func, target.params, strategy="autodiff").gradient
    except Exception as exc:  # say why the plot is missing instead of comparing numerical with itself
        raise GradientError(
            f"No independent reference for the precision plot: there is no closed form and autodiff failed "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    return float(gradient[index])
