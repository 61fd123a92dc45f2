"""The numbers of a cross-check: rows, precision scans, and the report's data.

Everything here is plain data (floats, strings, NumPy arrays): :func:`zgrad.crosscheck`
computes and builds it, :mod:`zgrad.checks.report` renders it, and nothing in it evaluates
the function that was checked. A report therefore pickles and copies as its numbers.

Examples
--------
>>> import numpy as np
>>> from zgrad.checks.result import CrossCheckData, CrossCheckRow
>>> row = CrossCheckRow(point=0, param="x", strategy="autodiff", value=2.0, error=None,
...                     reference=2.0, deviation=0.0, zscore=None, tolerance=2e-8, ok=True,
...                     n_evals=1, seconds=0.01)
>>> data = CrossCheckData([row], params=("x",), points=(np.array([1.0]),), strategies=("autodiff",),
...                       rtols={"autodiff": 1e-8}, reference_source="closed form")
>>> data.ok, data.failures
(True, ())
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from zgrad.checks._rule import ERROR_COVERED, SCALE_FLOOR
from zgrad.errors import GradientError

__all__ = [
    "INCONCLUSIVE",
    "SCAN_PARAMS",
    "SCAN_POINTS",
    "SCAN_WIDTH",
    "CrossCheckData",
    "CrossCheckRow",
    "PrecisionScan",
    "ScanFailure",
]

#: A row's ``message`` starts with this word when its error estimates were too large to judge it.
INCONCLUSIVE = "inconclusive"
#: The level of the rows that compare a user Hessian with the numerical Jacobian of the user gradient.
CONSISTENCY = "consistency"
#: The report's note when it holds such rows.
CONSISTENCY_NOTE = (
    "level 'consistency': the user Hessian against the numerical Jacobian of the user gradient "
    "(row i: the accurate numerical gradient of component i), entry by entry"
)
#: ``crosscheck`` scans the first this many parameters for the precision plots ...
SCAN_PARAMS = 5
#: ... over this many values ...
SCAN_POINTS = 15
#: ... within this many step sizes on either side of the first point.
SCAN_WIDTH = 3.0


@dataclass(frozen=True)
class CrossCheckRow:
    """One derivative component of one strategy at one point, compared with the reference.

    Attributes
    ----------
    point : int
        Index of the point in the report's ``points``.
    param : str
        Parameter name; ``'a,b'`` for the Hessian entry of ``a`` and ``b``.
    strategy : str
        Strategy name.
    value : float or None
        The strategy's derivative; None if the strategy raised.
    error : float or None
        The strategy's own error estimate; None where it gives none (exact strategies).
    reference : float or None
        The reference derivative.
    deviation : float or None
        ``value - reference``.
    zscore : float or None
        ``|deviation| / error`` where an error estimate exists.
    tolerance : float or None
        The largest ``|deviation|`` that passes (see :mod:`zgrad.checks.compare`).
    ok : bool
        The verdict.
    n_evals : int or None
        Function evaluations the strategy used for this point and level.
    seconds : float
        Wall time of that call.
    level : str
        ``'gradient'`` or ``'hessian'``; ``'consistency'`` for the user Hessian of a function of
        a vector compared with the numerical Jacobian of the user gradient (``reference``).
    scale : float or None
        The scale the relative tolerance multiplies.
    message : str
        Why a row failed without a value (the exception), or a non-``'ok'`` numerical status.

    Examples
    --------
    >>> from zgrad.checks import CrossCheckRow
    >>> row = CrossCheckRow(point=0, param="x", strategy="autodiff", value=2.0, error=None,
    ...                     reference=2.0, deviation=0.0, zscore=None, tolerance=2e-8, ok=True,
    ...                     n_evals=1, seconds=0.01)
    >>> row.level, row.relative_deviation
    ('gradient', None)
    """

    point: int
    param: str
    strategy: str
    value: float | None
    error: float | None
    reference: float | None
    deviation: float | None
    zscore: float | None
    tolerance: float | None
    ok: bool
    n_evals: int | None
    seconds: float
    level: str = "gradient"
    scale: float | None = None
    message: str = ""

    @property
    def relative_deviation(self) -> float | None:
        """``|deviation| / scale``, or None where either is missing or the scale is zero."""
        if self.deviation is None or not self.scale:
            return None
        return abs(self.deviation) / self.scale

    def as_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict (what the JSON report holds per row)."""
        return asdict(self)


@dataclass(frozen=True)
class PrecisionScan:
    """The numerical derivative along one parameter, next to the reference.

    Attributes
    ----------
    param : str
        The scanned parameter.
    x : ndarray
        The scanned values of the parameter (those of the grid inside its limits).
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
    n_points : int
        The values of the grid before those outside the limits were dropped.
    width : float
        The half-width of the grid in step sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad.checks.result import PrecisionScan
    >>> scan = PrecisionScan(param="x", x=np.array([0.9, 1.0, 1.1]), x0=1.0, step=0.1,
    ...                      numerical=np.array([1.8, 2.0, 2.2 + 1e-9]), error=np.full(3, 1e-8),
    ...                      reference=np.array([1.8, 2.0, 2.2]), reference_source="closed form",
    ...                      eps=2.0**-52, n_points=3, width=1.0)
    >>> bool(scan.deviation[2] < scan.error[2]), bool(scan.resolution[1] == 2.0 * 2.0**-52)
    (True, True)
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
    n_points: int = SCAN_POINTS
    width: float = SCAN_WIDTH

    @property
    def deviation(self) -> np.ndarray:
        """``|numerical - reference|`` at each ``x``."""
        return np.abs(self.numerical - self.reference)

    @property
    def resolution(self) -> np.ndarray:
        """``eps * |reference|``: the spacing of floating-point numbers at the derivative's size."""
        return self.eps * np.abs(self.reference)


@dataclass(frozen=True)
class ScanFailure:
    """A precision scan that could not be made, and why (the message of the error raised).

    Examples
    --------
    >>> from zgrad.checks.result import ScanFailure
    >>> ScanFailure("x", "no closed form and autodiff failed").message
    'no closed form and autodiff failed'
    """

    param: str
    message: str


def utc_now() -> str:
    """Return the current UTC time in ISO 8601, to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


class CrossCheckData:
    """The numbers of a cross-check: rows, points, tolerances and the precision scans.

    :class:`~zgrad.checks.CrossCheckReport` adds the renderings; this base holds no function
    and computes nothing.

    Attributes
    ----------
    rows : tuple of CrossCheckRow
        One per point, parameter and strategy, then the Hessian entries where requested.
    params : tuple of str
        Parameter names, in the order of the values in ``points``.
    points : tuple of ndarray
        The parameter values of each point.
    strategies : tuple of str
        The strategies checked.
    rtols : dict
        The relative tolerance used per strategy.
    reference_source : str
        ``'closed form'``, ``'autodiff'`` or ``'numerical (accurate)'``; where levels or points
        differ, each source followed by its level.
    hessian : bool
        Whether Hessian rows were requested.
    notes : tuple of str
        Remarks on what could not be compared (e.g. a strategy without a Hessian), and on the kind
        of function checked (its ``errordef`` for an iminuit cost).
    errordef : float or None
        The ``errordef`` of the loss or iminuit cost checked; None where it has none.
    scans : dict or None
        Parameter name -> :class:`PrecisionScan` (or :class:`ScanFailure`) for the first
        :data:`SCAN_PARAMS` parameters at the first point; None where none were computed.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad.checks.result import CrossCheckData
    >>> data = CrossCheckData([], params=("x",), points=(np.array([1.0]),), strategies=(),
    ...                       rtols={}, reference_source="closed form")
    >>> data.ok, data.scale_floor, data.scans is None
    (False, 0.001, True)
    """

    def __init__(
        self,
        rows: Sequence[CrossCheckRow],
        *,
        params: tuple[str, ...],
        points: tuple[np.ndarray, ...],
        strategies: tuple[str, ...],
        rtols: Mapping[str, float],
        reference_source: str,
        hessian: bool = False,
        notes: tuple[str, ...] = (),
        errordef: float | None = None,
        scans: Mapping[str, PrecisionScan | ScanFailure] | None = None,
    ) -> None:
        self.rows = tuple(rows)
        self.params = tuple(params)
        self.points = tuple(np.array(x, dtype=float) for x in points)
        self.strategies = tuple(strategies)
        self.rtols = dict(rtols)
        self.reference_source = reference_source
        self.hessian = hessian
        self.notes = tuple(notes)
        self.created = utc_now()
        self.scale_floor = SCALE_FLOOR
        self.error_covered = ERROR_COVERED
        self.errordef = errordef
        self.scans = None if scans is None else dict(scans)

    def __getstate__(self) -> dict:
        # a report travels as its rows: the scans stay behind, so a pickled or copied report's
        # page has no precision plots (as when the report kept the function instead of its scans)
        state = dict(self.__dict__)
        state["scans"] = None
        return state

    @property
    def ok(self) -> bool:
        """Whether there are rows and every one of them passed."""
        return bool(self.rows) and all(row.ok for row in self.rows)

    @property
    def failures(self) -> tuple[CrossCheckRow, ...]:
        """The rows that did not pass (failed or inconclusive), in order."""
        return tuple(row for row in self.rows if not row.ok)

    @property
    def inconclusive(self) -> tuple[CrossCheckRow, ...]:
        """The rows whose error estimates were too large to judge them (a subset of :attr:`failures`)."""
        return tuple(row for row in self.rows if row.message.startswith(INCONCLUSIVE))

    def precision_scan(
        self, param: Any, n_points: int = SCAN_POINTS, width: float = SCAN_WIDTH
    ) -> PrecisionScan:
        """Return the stored scan of ``param`` around the first point (see :class:`PrecisionScan`).

        ``crosscheck`` scans the first :data:`SCAN_PARAMS` parameters over
        ``n_points=SCAN_POINTS`` values within ``width=SCAN_WIDTH`` step sizes on either side
        (inside the limits), the other Parameters at the first point.

        Raises
        ------
        ValueError
            If the report holds no scans (it was not made by crosscheck, or was pickled or
            copied), for an unknown parameter, or for a scan that was not computed (another
            ``n_points`` or ``width``, or a parameter beyond the first :data:`SCAN_PARAMS`).
        zgrad.errors.GradientError
            If the scan failed, e.g. without a closed form when autodiff fails: the message says why.
        """
        if self.scans is None:
            raise ValueError(
                "This report holds no function to scan and no stored scans: it was made with "
                "crosscheck(..., scans=False), or not by crosscheck, or it was pickled or copied (a copy "
                "carries its rows only)."
            )
        name = param if isinstance(param, str) else getattr(param, "name", param)
        if name not in self.params:
            raise ValueError(f"Unknown parameter {name!r}; the report's parameters are {list(self.params)}.")
        if name not in self.scans:
            raise ValueError(
                f"No precision scan of {name!r} was computed: crosscheck scans the first {SCAN_PARAMS} "
                f"parameters, {list(self.scans)}."
            )
        scan = self.scans[name]
        if isinstance(scan, ScanFailure):
            raise GradientError(scan.message)
        if (n_points, width) != (scan.n_points, scan.width):
            raise ValueError(
                f"No precision scan with n_points={n_points!r}, width={width!r} was computed; the report "
                f"holds the scans crosscheck makes: n_points={scan.n_points}, width={scan.width:g}."
            )
        return scan
