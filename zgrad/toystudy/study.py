"""``ToyStudy``: the numbers of a toy study, as plain data (NumPy arrays, dicts, strings).

A study holds no TensorFlow object and no model: it pickles, and its methods only
read its arrays. :func:`zgrad.toys` makes one; :meth:`ToyStudy.to_json` and
:meth:`ToyStudy.to_html` write it out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zgrad.checks.report import json_safe
from zgrad.toystudy import _page

__all__ = ["SCHEMA_VERSION", "ToyStudy", "ToySummary", "pull_statistics"]

#: Version of the document :meth:`ToyStudy.to_json` writes.
SCHEMA_VERSION = 1


def pull_statistics(pulls: Any) -> dict[str, float | int]:
    """Return ``n``, the ``mean`` and ``width`` (sample standard deviation) of ``pulls``, with errors.

    ``mean_error = width / sqrt(n)`` and ``width_error = width / sqrt(2 (n - 1))`` (Gaussian
    pulls); every statistic is NaN when fewer than two pulls are given (one pull has no width).

    Examples
    --------
    >>> from zgrad.toystudy.study import pull_statistics
    >>> stats = pull_statistics([-1.0, 0.0, 1.0])
    >>> stats["n"], stats["mean"], stats["width"], stats["width_error"]
    (3, 0.0, 1.0, 0.5)
    """
    pulls = np.asarray(pulls, dtype=float)
    n = int(pulls.size)
    if n < 2:
        nan = math.nan
        return {"n": n, "mean": nan, "mean_error": nan, "width": nan, "width_error": nan}
    width = float(pulls.std(ddof=1))
    return {
        "n": n,
        "mean": float(pulls.mean()),
        "mean_error": width / math.sqrt(n),
        "width": width,
        "width_error": width / math.sqrt(2 * (n - 1)),
    }


class ToySummary(dict):
    """Per parameter: pull mean and width with their uncertainties, counts of valid and at-limit fits.

    A plain dict (``name -> dict``) that prints as a table.
    """

    _COLUMNS = ("param", "valid", "at limit", "pull mean", "pull width")

    def __str__(self) -> str:
        rows = [self._COLUMNS]
        for name, s in self.items():
            rows.append(
                (
                    name,
                    f"{s['n_valid']}/{s['n_toys']}",
                    str(s["n_at_limit"]),
                    f"{s['pull_mean']:+.3f} ± {s['pull_mean_error']:.3f}",
                    f"{s['pull_width']:.3f} ± {s['pull_width_error']:.3f}",
                )
            )
        widths = [max(len(r[k]) for r in rows) for k in range(len(self._COLUMNS))]
        lines = [
            "  ".join(c.rjust(w) if k else c.ljust(w) for k, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows
        ]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(line.rstrip() for line in lines)


@dataclass(frozen=True, eq=False)
class ToyStudy:
    """The result of :func:`zgrad.toys`: one entry per toy in every array.

    Attributes
    ----------
    names : tuple of str
        The floating parameters that were fitted.
    truth : dict
        Parameter name -> the value every toy was drawn at (fixed parameters included).
    values, errors : dict of str to ndarray
        Best-fit values and Hesse errors per parameter; NaN where a toy has no fit result
        (sampling, the loss or the fit raised). An invalid fit keeps its numbers.
    valid : ndarray of bool
        Whether the toy's fit was valid (and its values and errors finite).
    at_limit : list of tuple of str
        Per toy: the parameters the fit reported at a limit (``FitResult.at_limit``).
    nfcn : ndarray of float
        Loss evaluations of each fit; NaN where a toy has no fit result.
    seconds : ndarray of float
        Wall time per toy: sampling, building the loss and fitting.
    seed : ndarray of int64
        The seed each toy was drawn with (derived from ``base_seed``).
    base_seed : int
        The ``seed`` given to :func:`zgrad.toys`.
    n_events : ndarray of int64
        Events per toy.
    messages : list of str
        Per toy: why it is invalid (the exception or the fit's message); ``''`` or the fit's
        message otherwise.
    strategy : str or None
        The gradient strategy the fits ran under (None: the policy in force).

    Examples
    --------
    >>> import zgrad
    >>> obs = zgrad.Space("x", limits=(-5.0, 5.0))
    >>> mu = zgrad.Parameter("mu", 0.0, -1.0, 1.0)
    >>> sigma = zgrad.Parameter("sigma", 1.0, 0.5, 2.0)
    >>> model = zgrad.models.Gauss(obs=obs, mu=mu, sigma=sigma)
    >>> study = zgrad.toys(model, 3, n_events=200, seed=1, progress=False)
    >>> study.names, study.valid.tolist(), study.n_events.tolist()
    (('mu', 'sigma'), [True, True, True], [200, 200, 200])
    >>> study.pulls("mu").shape
    (3,)
    """

    names: tuple[str, ...]
    truth: dict[str, float]
    values: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    valid: np.ndarray
    at_limit: list[tuple[str, ...]]
    nfcn: np.ndarray
    seconds: np.ndarray
    seed: np.ndarray
    base_seed: int
    n_events: np.ndarray
    messages: list[str]
    strategy: str | None = None

    @property
    def n_toys(self) -> int:
        """How many toys the study has (valid or not)."""
        return int(self.valid.size)

    def _name(self, name: Any) -> str:
        name = getattr(name, "name", name)
        if name not in self.names:
            raise KeyError(
                f"no fitted parameter named {name!r}; the study's parameters are {list(self.names)}."
            )
        return name

    def pulls(self, name: Any) -> np.ndarray:
        """Return ``(value - truth) / error`` of parameter ``name`` (or a Parameter) over the valid toys."""
        name = self._name(name)
        keep = self.valid
        return (self.values[name][keep] - self.truth[name]) / self.errors[name][keep]

    def summary(self) -> ToySummary:
        """Return per parameter the pull statistics and the counts of valid and at-limit fits.

        Each entry has ``n_toys``, ``n_valid``, ``n_at_limit`` (valid fits that report the
        parameter at a limit), ``pull_mean``, ``pull_mean_error``, ``pull_width`` and
        ``pull_width_error`` (see :func:`pull_statistics`).
        """
        out = ToySummary()
        for name in self.names:
            stats = pull_statistics(self.pulls(name))
            out[name] = {
                "n_toys": self.n_toys,
                "n_valid": int(self.valid.sum()),
                "n_at_limit": sum(
                    1 for ok, names in zip(self.valid, self.at_limit, strict=True) if ok and name in names
                ),
                "pull_mean": stats["mean"],
                "pull_mean_error": stats["mean_error"],
                "pull_width": stats["width"],
                "pull_width_error": stats["width_error"],
            }
        return out

    def __str__(self) -> str:
        median = float(np.median(self.seconds)) if self.n_toys else math.nan
        head = (
            f"ToyStudy: {self.n_toys} toys, {int(self.valid.sum())} valid, seed {self.base_seed}, "
            f"median {median:.3g} s per toy"
        )
        return f"{head}\n{self.summary()}"

    def __repr__(self) -> str:
        return f"<ToyStudy {self.n_toys} toys of {list(self.names)}, {int(self.valid.sum())} valid>"

    def to_dict(self) -> dict[str, Any]:
        """Return the study as a dict of plain Python values (lists, floats, strings; NaN kept)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "names": list(self.names),
            "truth": dict(self.truth),
            "base_seed": self.base_seed,
            "strategy": self.strategy,
            "n_toys": self.n_toys,
            "seed": self.seed.tolist(),
            "n_events": self.n_events.tolist(),
            "valid": self.valid.tolist(),
            "at_limit": [list(names) for names in self.at_limit],
            "nfcn": self.nfcn.tolist(),
            "seconds": self.seconds.tolist(),
            "messages": list(self.messages),
            "values": {n: self.values[n].tolist() for n in self.names},
            "errors": {n: self.errors[n].tolist() for n in self.names},
            "summary": dict(self.summary()),
        }

    def to_json(self, indent: int | None = None) -> str:
        """Return the study as strict JSON: non-finite numbers as strings ``'nan'``, ``'inf'``, ``'-inf'``."""
        return json.dumps(json_safe(self.to_dict()), indent=indent, allow_nan=False)

    def to_html(self, path: str | Path) -> Path:
        """Write a self-contained page: a pull histogram per parameter over the unit Gaussian, the summary.

        ``path`` is a new file, or an existing folder to hold ``toys.html``. An existing file is
        never overwritten, and an unwritable place is refused, before anything is drawn.

        Returns
        -------
        Path
            The file written.

        Raises
        ------
        FileExistsError
            If the target file exists.
        PermissionError
            If the target's folder cannot be written.
        """
        return _page.write_html(self, path)


def from_rows(plan: Any, rows: Sequence[Any]) -> ToyStudy:
    """Assemble a :class:`ToyStudy` from a plan and its rows (one per toy, in toy order)."""
    if [r.index for r in rows] != list(range(plan.seeds.size)):
        raise RuntimeError(f"expected one row per toy in order; got rows for toys {[r.index for r in rows]}.")

    def column(values: Any, dtype: Any) -> np.ndarray:
        array = np.asarray(values, dtype=dtype).reshape(len(rows))
        array.setflags(write=False)
        return array

    return ToyStudy(
        names=plan.names,
        truth=dict(plan.truth),
        values={n: column([r.values[k] for r in rows], float) for k, n in enumerate(plan.names)},
        errors={n: column([r.errors[k] for r in rows], float) for k, n in enumerate(plan.names)},
        valid=column([r.valid for r in rows], bool),
        at_limit=[tuple(r.at_limit) for r in rows],
        nfcn=column([r.nfcn for r in rows], float),
        seconds=column([r.seconds for r in rows], float),
        seed=plan.seeds,
        base_seed=plan.base_seed,
        n_events=plan.n_events,
        messages=[r.message for r in rows],
        strategy=plan.strategy,
    )
