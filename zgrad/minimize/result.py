"""``FitResult``: what a minimizer adapter returns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FitResult", "ParamMap"]


class ParamMap(Mapping):
    """A read-only mapping keyed by parameter name; a Parameter works as a key too.

    Examples
    --------
    >>> from zgrad.minimize.result import ParamMap
    >>> m = ParamMap({"mu": 0.2})
    >>> m["mu"], dict(m)
    (0.2, {'mu': 0.2})
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: Any) -> Any:
        name = key if isinstance(key, str) else getattr(key, "name", key)
        try:
            return self._data[name]
        except KeyError:
            raise KeyError(f"No parameter named {name!r}; parameters are {list(self._data)}.") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ParamMap({self._data!r})"


@dataclass
class FitResult:
    """The outcome of a fit.

    Attributes
    ----------
    params : list of Parameter
        The floating Parameters, in the order of ``covariance``; after the fit they hold
        the best-fit values.
    values, errors : ParamMap
        Best-fit values and Hesse errors by parameter name (a Parameter works as key).
    covariance : ndarray or None
        ``2 * errordef * H^-1`` (what iminuit's HESSE gives); None when it could not be computed.
    fmin, edm : float
        Loss at the minimum and its estimated distance to the minimum (``g^T H^-1 g / 2``).
    valid : bool
        Whether the fit converged to a valid minimum; ``message`` says why not.
    nfcn, ngrad : int
        Loss evaluations and gradient evaluations requested by the minimizer.
    wall_time : float
        Seconds spent in the minimizer and in the error computation.
    gradient_strategy, hessian_strategy : str or None
        Which strategy provided the gradient (None: the minimizer's own) and the Hessian.
    gradient_check : dict or None
        The directional check of a user-provided gradient against finite differences.
    """

    params: list
    values: ParamMap
    errors: ParamMap
    covariance: np.ndarray | None
    fmin: float
    edm: float
    valid: bool
    message: str
    nfcn: int
    ngrad: int
    wall_time: float
    gradient_strategy: str | None
    hessian_strategy: str | None
    minimizer: str
    loss: Any = field(repr=False, default=None)
    gradient_check: dict | None = None
    info: dict = field(default_factory=dict, repr=False)

    def minos(self, *params: Any, cl: float | None = None) -> ParamMap:
        """Return asymmetric ``(lower, upper)`` errors from a profile-likelihood scan (iminuit's MINOS).

        Parameters
        ----------
        *params : str or Parameter
            Which parameters; all floating ones if none are given.
        cl : float, optional
            Confidence level or number of sigmas, as iminuit's ``minos`` takes it (default 1 sigma).

        Returns
        -------
        ParamMap
            ``name -> (lower, upper)``, lower negative. The Parameters are left at the best fit.
        """
        from zgrad.minimize._minos import run_minos  # iminuit is imported only when MINOS is asked for

        return run_minos(self, params, cl)

    def __str__(self) -> str:
        lines = [f"FitResult({self.minimizer}): valid={self.valid} fmin={self.fmin:.6g} edm={self.edm:.3g}"]
        for name, value in self.values.items():
            lines.append(f"  {name:>12} = {value:.6g} +- {self.errors[name]:.3g}")
        lines.append(
            f"  nfcn={self.nfcn} ngrad={self.ngrad} gradient={self.gradient_strategy} "
            f"hessian={self.hessian_strategy} time={self.wall_time:.3f}s"
        )
        if self.message:
            lines.append(f"  message: {self.message}")
        return "\n".join(lines)


def names_of(params: Sequence[Any]) -> list[str]:
    """Names of the Parameters, in order."""
    return [p.name for p in params]
