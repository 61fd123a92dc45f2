"""``zgrad.crosscheck``: compare gradient strategies with each other and with a reference.

For every point, parameter and strategy the check records the derivative, the strategy's
own error estimate, the deviation from a reference and a verdict. The reference is a closed
form when the caller gives one, otherwise the most trustworthy strategy available:
``'autodiff'`` where it succeeds, else ``'numerical'`` (accurate budget).

The verdict of a row is ``|deviation| <= tolerance`` with

- ``scale = max(|reference_i|, 1e-3 * max_j |reference_j|)`` over the components of the same
  level (gradient, or Hessian entries) at the same point, so a component that is tiny next
  to its siblings is judged on the scale of the whole vector rather than on its own;
- ``tolerance = max(rtol * scale, cover)``, where ``rtol`` is the strategy's relative
  tolerance (``'autodiff'`` 1e-8, ``'numerical'`` 1e-6, any other strategy 1e-6 unless
  given) and ``cover`` the error estimates that vouch for the difference: the numerical
  strategy's own error estimate, plus the reference's error estimate when the reference is
  itself numerical.

A row that passes only because of its combined error estimates ``cover`` (``|deviation| >
rtol * scale``), where those exceed :data:`INCONCLUSIVE_FRACTION` (10 %) of its scale, is
*inconclusive*: such errors could vouch for almost any value, so the row does not
pass (``ok`` is False, which makes ``report.ok`` False) and its ``message`` starts with
``'inconclusive'``; :attr:`CrossCheckReport.inconclusive` lists these rows. Where a whole
level's reference is exactly zero (scale 0) there is no scale to compare with and the rule
does not apply. The JSON schema is unchanged: such rows are failures with that message.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from zgrad import _policy
from zgrad.checks import _inputs, _scan
from zgrad.checks._adapters import USER, UserStrategy
from zgrad.checks._rule import (
    CLOSED_FORM,
    DEFAULT_RTOL,
    ERROR_COVERED,
    INCONCLUSIVE_FRACTION,
    OTHER_RTOL,
    SCALE_FLOOR,
)
from zgrad.checks._target import Target, make_target
from zgrad.checks.report import CrossCheckReport
from zgrad.checks.result import CONSISTENCY, CONSISTENCY_NOTE, INCONCLUSIVE, CrossCheckRow
from zgrad.gradients import _api

__all__ = [
    "CrossCheckReport",
    "CrossCheckRow",
    "crosscheck",
    "DEFAULT_RTOL",
    "ERROR_COVERED",
    "INCONCLUSIVE_FRACTION",
    "SCALE_FLOOR",
]


def crosscheck(
    loss_or_callable: Any,
    params: Sequence[Any] | None = None,
    *,
    strategies: Sequence[str] | None = None,
    points: Sequence[Any] | None = None,
    reference: Callable[[np.ndarray], Any] | Mapping[str, Callable] | None = None,
    tolerances: float | Mapping[str, float] | None = None,
    hessian: bool | Callable[[np.ndarray], Any] = False,
    x0: Sequence[float] | np.ndarray | None = None,
    gradient: Callable[[np.ndarray], Any] | None = None,
    names: Sequence[str] | None = None,
    limits: Sequence[tuple[float | None, float | None] | None] | None = None,
    scans: bool = True,
) -> CrossCheckReport:
    """Compare the derivatives of gradient strategies with a reference, component by component.

    Parameters
    ----------
    loss_or_callable : loss or callable
        A zgrad loss (anything with ``.params``) or a zero-argument callable returning a scalar
        that reads the Parameters; also a function of a vector, an iminuit cost, or a zfit loss
        (``zfit.loss.ZfitLoss``: its floating Parameters, with zfit's own derivatives checked as
        the strategy ``'zfit'`` beside zgrad's).
    params : sequence of Parameter, optional
        The Parameters to differentiate; default ``loss.params``. Required for a plain callable.
    strategies : sequence of str, optional
        Registered strategy names; default every registered strategy that provides a gradient.
    points : sequence, optional
        Where to compare: each a dict ``name -> value`` (unnamed Parameters keep their current
        value) or an array of all values in ``params`` order. Default: the current values.
        The Parameters are restored exactly afterwards.
    reference : callable or dict, optional
        The closed-form gradient, ``f(values) -> (n,)`` array, or a dict with the keys
        ``'gradient'`` and optionally ``'hessian'`` (``g(values) -> (n, n)``). Default: the
        most trustworthy strategy available, stated in ``report.reference_source``.
    tolerances : float or dict, optional
        Relative tolerance for every strategy, or a dict ``strategy -> rtol`` overriding the
        defaults (1e-8 for ``'autodiff'``, 1e-6 for the others).
    hessian : bool or callable, default False
        Also compare the Hessian (rows with ``level='hessian'``, one per entry ``i <= j``). For a
        function of a vector or an iminuit cost it may be the user's Hessian, ``h(x) -> (n, n)``
        (symmetric), which then joins the ``'user'`` strategy and turns the Hessian rows on.
    x0 : array, optional
        Keyword only. Start values of a function of a vector ``fcn(x) -> float`` (iminuit's
        array-call convention) or of an iminuit cost (``iminuit.cost.Cost``); default
        ``points[0]`` when that is an array. Giving ``x0``, ``gradient``, ``names`` or ``limits``,
        or passing a callable of exactly one required argument without ``params``, selects this
        kind: one Parameter per component, evaluated from Python. Automatic differentiation
        cannot see through NumPy code, so the strategies default to ``'numerical'`` (also the
        reference) and ``'user'``.
    gradient : callable, optional
        Keyword only. The user's gradient ``g(x) -> (n,)`` of a function of a vector, checked as
        the strategy ``'user'``; an iminuit cost's own ``grad`` is used where it has one.
    names : sequence of str, optional
        Keyword only. Parameter names of a function of a vector (default ``x0``, ``x1``, ...;
        for an iminuit cost ``iminuit.util.describe(cost)``).
    limits : sequence of (lower, upper), optional
        Keyword only. One pair per parameter (None or an infinity for no limit); the numerical
        strategy never steps outside them.
    scans : bool, default True
        Keyword only. Also compute the precision scans that the HTML page draws (for a small
        loss they cost more than the check itself: about 0.5 s against 0.03 s for a 400-event
        NLL of two parameters). False when only the verdict and the rows are wanted; the page
        then says that no scan was made.

    Returns
    -------
    CrossCheckReport
        ``ok``, ``rows``, ``failures``; prints as a table; ``to_json()``, ``to_html(path)``.
        It holds numbers only, including the precision scans its HTML page draws (the first
        five parameters, 15 values within three step sizes of the first point), which are
        computed here unless ``scans=False``: rendering evaluates nothing.

    Raises
    ------
    ValueError
        For a callable without ``params``, an unknown strategy or parameter name, a point
        outside the limits, or a reference of the wrong shape; for a function of a vector
        without ``x0`` (or array ``points``), ``names`` or ``limits`` of the wrong length, a
        function that does not return a real scalar, or nothing to compare (no ``gradient`` and
        no ``reference``).
    TypeError
        For arguments of the wrong type.
    RuntimeError
        Inside a trace.

    Notes
    -----
    Each strategy runs in its own ``with zgrad.run.set_mode(autograd=name):`` scope and is
    also passed as ``strategy=name``, so the caller's mode is the same afterwards. A strategy
    that raises yields failing rows carrying the error message instead of stopping the check.

    Examples
    --------
    >>> import zgrad
    >>> from zgrad.checks import crosscheck
    >>> x, y = zgrad.Parameter("x", 1.5), zgrad.Parameter("y", -0.5)
    >>> report = crosscheck(lambda: x**2 * y, [x, y], reference=lambda v: [2 * v[0] * v[1], v[0] ** 2])
    >>> report.ok, report.reference_source, sorted({row.strategy for row in report.rows})
    (True, 'closed form', ['autodiff', 'numerical'])
    >>> float(x.value()), float(y.value())
    (1.5, -0.5)

    A function of a vector with the user's own gradient (the strategy ``'user'``):

    >>> import numpy as np
    >>> report = crosscheck(lambda v: float(v @ v), x0=[1.0, -2.0], gradient=lambda v: 2 * v)
    >>> report.ok, report.strategies, report.params, report.reference_source
    (True, ('numerical', 'user'), ('x0', 'x1'), 'numerical (accurate)')
    """
    if _policy.in_trace():
        raise RuntimeError(
            "crosscheck evaluates the function from Python: call it eagerly, not inside a trace."
        )
    user_hessian, hessian = (hessian, True) if callable(hessian) else (None, hessian)
    if not isinstance(hessian, bool):
        raise TypeError(
            "hessian must be True, False or the user's Hessian (a callable of the values array); "
            f"got {hessian!r}."
        )
    if not isinstance(scans, bool):
        raise TypeError(f"scans must be True or False; got {scans!r} ({type(scans).__name__}).")
    vector = dict(x0=x0, gradient=gradient, hessian=user_hessian, names=names, limits=limits)
    target, names, errordef, notes = make_target(
        loss_or_callable, params, strategies, points, reference, vector
    )
    params = target.params
    rtols = _resolve_tolerances(tolerances, names)
    values = _inputs.resolve_points(points, params)

    rows: list[CrossCheckRow] = []
    sources: list[tuple[str, str]] = []
    originals = [p.numpy() for p in params]
    try:
        for index, x in enumerate(values):
            _Checker(target, index, x, names, rtols).run(rows, sources, notes, hessian)
        # the data of the page's precision plots
        scanned = _scan.scan_parameters(target, values[0]) if scans else None
    finally:
        for p, original in zip(params, originals, strict=True):
            p.assign(original)
    return CrossCheckReport(
        rows,
        params=tuple(p.name for p in params),
        points=tuple(values),
        strategies=names,
        rtols=rtols,
        reference_source=_describe_sources(sources),
        hessian=hessian,
        notes=tuple(dict.fromkeys(notes)),
        errordef=errordef,
        scans=scanned,
    )


class _Checker:
    """All strategies at one point: runs them, obtains the reference, builds the rows."""

    def __init__(self, target: Target, index: int, x: np.ndarray, names: tuple, rtols: dict) -> None:
        self.target = target
        self.index = index
        self.x = x
        self.names = names
        self.rtols = rtols
        self._cache: dict[tuple[str, bool], tuple[Any, float]] = {}

    def outcome(self, name: str, hessian: bool) -> tuple[Any, float]:
        """Return ``(GradientResult or the exception raised, seconds)``, computed once per level."""
        key = (name, hessian)
        if key not in self._cache:
            # a misbehaving strategy must not move the next one's point
            _inputs.assign(self.target.params, self.x)
            start = time.perf_counter()
            try:
                if name in self.target.local:  # not registered: passed as the object, no mode to set
                    result: Any = _api.derivatives(
                        self.target.func,
                        self.target.params,
                        strategy=self.target.local[name],
                        hessian=hessian,
                    )
                else:
                    with _policy.set_mode(autograd=name):
                        result = _api.derivatives(
                            self.target.func, self.target.params, strategy=name, hessian=hessian
                        )
            except Exception as exc:  # a failing strategy becomes failing rows, not a crash
                result = exc
            self._cache[key] = (result, time.perf_counter() - start)
        return self._cache[key]

    def reference(self, hessian: bool) -> tuple[str, np.ndarray | None, np.ndarray | None, str]:
        """Return ``(source, values, errors, failure message)`` of the reference at this point."""
        closed = self.target.reference_hessian if hessian else self.target.reference_gradient
        n = len(self.target.params)
        if closed is not None:
            values = _inputs.closed_form(closed, self.x, (n, n) if hessian else (n,), hessian)
            return CLOSED_FORM, values, None, ""
        messages = []
        for name, source in self.target.references:
            result, _ = self.outcome(name, hessian)
            if not isinstance(result, Exception):
                values = result.hessian if hessian else result.gradient
                errors = result.hessian_error if hessian else result.error
                return source, np.asarray(values, float), _optional_array(errors), ""
            messages.append(f"{name}: {_describe_exception(result)}")
        return "none", None, None, "no reference could be computed (" + "; ".join(messages) + ")"

    def run(self, rows: list, sources: list, notes: list, hessian: bool) -> None:
        """Append this point's rows (gradient, then Hessian) to ``rows``."""
        for level in (False, True) if hessian else (False,):
            source, ref, ref_err, problem = self.reference(level)
            sources.append(("hessian" if level else "gradient", source))
            for name in self.names:
                if level and not callable(getattr(self.target.strategy(name), "hessian", None)):
                    notes.append(f"strategy {name!r} has no 'hessian' method: no Hessian rows for it")
                    continue
                result, seconds = self.outcome(name, level)
                rows.extend(self._rows(name, level, result, seconds, ref, ref_err, problem))
        user = self.target.local.get(USER)
        if hessian and isinstance(user, UserStrategy) and callable(user.hessian):
            rows.extend(self._consistency(user))
            notes.append(CONSISTENCY_NOTE)

    def _consistency(self, user: UserStrategy) -> list[CrossCheckRow]:
        """Return rows of the user Hessian against the numerical Jacobian of the user gradient."""
        result, seconds = self.outcome(USER, True)
        start = time.perf_counter()
        try:
            _inputs.assign(self.target.params, self.x)
            jacobian, errors = user.gradient_jacobian(self.target.params)
        except Exception as exc:  # the Jacobian failed: failing rows that say why
            result = exc
            jacobian = errors = None
        rows = self._rows(USER, True, result, seconds + time.perf_counter() - start, jacobian, errors,
                          "the numerical Jacobian of the user gradient could not be computed")  # fmt: skip
        return [dataclasses.replace(row, level=CONSISTENCY) for row in rows]

    def _rows(
        self, name: str, level: bool, result: Any, seconds: float, ref: Any, ref_err: Any, problem: str
    ) -> list[CrossCheckRow]:
        names = [p.name for p in self.target.params]
        pairs = _indices(len(names), level)
        labels = [f"{names[i]},{names[j]}" if level else names[i] for i, j in pairs]
        level_name = "hessian" if level else "gradient"
        failed = isinstance(result, Exception)
        n_evals = None if failed else result.n_evals
        common = dict(point=self.index, strategy=name, seconds=seconds, level=level_name, n_evals=n_evals)
        if failed or ref is None:
            message = _describe_exception(result) if failed else problem
            return [
                CrossCheckRow(param=label, value=None, error=None, reference=_at(ref, ij, level), ok=False,
                              deviation=None, zscore=None, tolerance=None, message=message, **common)
                for label, ij in zip(labels, pairs, strict=True)
            ]  # fmt: skip
        values = np.asarray(result.hessian if level else result.gradient, float)
        errors = _optional_array(result.hessian_error if level else result.error)
        # the scale floor is taken over the components of this level: the gradient, or the Hessian's entries
        floor = SCALE_FLOOR * float(np.max(np.abs(ref))) if ref.size else 0.0
        status = result.status if not level and len(result.status) == len(names) else ("ok",) * len(pairs)
        rows = []
        for label, ij, state in zip(labels, pairs, status, strict=True):
            compared = (
                _at(values, ij, level),
                _at(errors, ij, level),
                _at(ref, ij, level),
                _at(ref_err, ij, level),
            )
            rows.append(_row(name, *compared, floor, self.rtols[name], state, dict(common, param=label)))
        return rows


def _at(values: np.ndarray | None, ij: tuple[int, int], hessian: bool) -> float | None:
    if values is None:
        return None
    return float(values[ij] if hessian else values[ij[0]])


def _row(
    name: str, value: float, error: float | None, reference: float, ref_error: float | None,
    floor: float, rtol: float, status: str, common: dict,
) -> CrossCheckRow:  # fmt: skip
    deviation = value - reference
    scale = max(abs(reference), floor)
    cover = (error if name in ERROR_COVERED and error is not None else 0.0) + (ref_error or 0.0)
    tolerance = max(rtol * scale, cover)
    if error is None:
        zscore = None
    elif error > 0:
        zscore = abs(deviation) / error
    else:
        zscore = 0.0 if deviation == 0 else math.inf
    ok = bool(math.isfinite(value) and abs(deviation) <= tolerance)
    message = "" if status == "ok" else f"status: {status}"
    if ok and abs(deviation) > rtol * scale and cover > INCONCLUSIVE_FRACTION * scale > 0:
        ok = False
        message = "; ".join(
            m for m in (f"{INCONCLUSIVE}: error estimates {cover:.3g} exceed {INCONCLUSIVE_FRACTION:.0%} "
                        f"of the scale {scale:.3g}", message) if m
        )  # fmt: skip
    return CrossCheckRow(
        value=value, error=error, reference=reference, deviation=deviation, zscore=zscore,
        tolerance=tolerance, ok=ok, scale=scale, message=message, **common,
    )  # fmt: skip


def _indices(n: int, hessian: bool) -> list[tuple[int, int]]:
    if hessian:
        return [(i, j) for i in range(n) for j in range(i, n)]
    return [(i, 0) for i in range(n)]


def _resolve_tolerances(tolerances: Any, names: tuple) -> dict[str, float]:
    rtols = {name: DEFAULT_RTOL.get(name, OTHER_RTOL) for name in names}
    if tolerances is None:
        return rtols
    if isinstance(tolerances, Mapping):
        unknown = sorted(set(tolerances) - set(names))
        if unknown:
            raise ValueError(
                f"tolerances names strategies that are not checked: {unknown}; checked: {list(names)}."
            )
        for name, value in tolerances.items():
            rtols[name] = _inputs.check_rtol(value, f"tolerances[{name!r}]")
        return rtols
    rtol = _inputs.check_rtol(tolerances, "tolerances")
    return dict.fromkeys(names, rtol)


def _optional_array(values: Any) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=float)


def _describe_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _describe_sources(sources: list[tuple[str, str]]) -> str:
    """Return one source where all agree, else each distinct ``source (level)``, in order."""
    unique = list(dict.fromkeys(source for _, source in sources))
    if len(unique) == 1:
        return unique[0]
    return "; ".join(dict.fromkeys(f"{source} ({level})" for level, source in sources))
