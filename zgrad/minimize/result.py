"""``FitResult``: what a minimizer adapter returns, as data.

A result imports no minimizer: it keeps the adapter that made it (an
:class:`~zgrad.typing.ErrorAnalysis`, a small object of options) and hands ``minos`` and
``hesse`` to it, as iminuit keeps ``FMin`` and ``MError`` apart from ``Minuit``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from zgrad._values import set_values
from zgrad.typing import ErrorAnalysis

if TYPE_CHECKING:
    import iminuit

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

    @staticmethod
    def name_of(key: Any) -> Any:
        """Return the name a key stands for: a string itself, a Parameter its ``name``.

        Examples
        --------
        >>> import zgrad
        >>> ParamMap.name_of(zgrad.Parameter("mu", 0.2)), ParamMap.name_of("mu")
        ('mu', 'mu')
        """
        return key if isinstance(key, str) else getattr(key, "name", key)

    def __getitem__(self, key: Any) -> Any:
        name = self.name_of(key)
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
        Whether the fit converged: the minimizer reached its tolerance on the EDM (for
        Minuit: MIGRAD's own verdict, no call limit) and the Hessian at the minimum is
        positive definite (for Minuit: HESSE's covariance, neither failed nor forced positive
        definite; an exact Hessian from zgrad is checked itself). The same answer whichever
        strategy supplied the gradient and Hessian. A parameter at a limit does not make a fit
        invalid (as in iminuit and RooFit): see ``at_limit``.
    message : str
        Why the fit is not valid (a singular Hessian names the parameters the loss does not
        constrain), and the parameters at a limit; '' when there is nothing to say.
    nfcn, ngrad : int
        Loss evaluations and gradient evaluations requested by the minimizer.
    wall_time : float
        Seconds spent in the minimizer and in the error computation.
    gradient_strategy, hessian_strategy : str or None
        Which strategy provided the gradient (None: the minimizer's own) and the Hessian.
    gradient_check : dict or None
        The directional check of a user-provided gradient against finite differences.
    at_limit : list of str
        Names of the Parameters whose best-fit value lies at a limit or within a tenth of its
        error of one (their errors are unreliable). Also named in ``message``; not part of ``valid``.
    adapter : ErrorAnalysis or None
        The minimizer adapter that made the result (its options only); :meth:`minos` and
        :meth:`hesse` are its methods, applied to this result.
    minuit : iminuit.Minuit or None
        The Minuit that ran the fit (also ``info['minuit']``), where MINOS continues; None for
        other minimizers and for a copy.

    Notes
    -----
    A FitResult pickles and deep-copies together with its loss and Parameters, except the live
    ``iminuit.Minuit`` (it holds the fitting objective's bound methods): the copy leaves it out,
    and its :meth:`minos` starts a new Minuit at the best fit instead.
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
    at_limit: list = field(default_factory=list)
    adapter: ErrorAnalysis | None = field(default=None, repr=False, compare=False)
    minuit: iminuit.Minuit | None = field(default=None, repr=False, compare=False)

    def minos(self, *params: Any, cl: float | None = None) -> ParamMap:
        """Return asymmetric ``(lower, upper)`` errors from a profile-likelihood scan (iminuit's MINOS).

        Parameters
        ----------
        *params : str, Parameter, or a list or tuple of them
            Which parameters: ``minos("mu", "n_sig")`` or, as zfit writes it,
            ``minos(["mu", "n_sig"])``; all floating ones if none are given.
        cl : float, optional
            Confidence level or number of sigmas, as iminuit's ``minos`` takes it (default 1 sigma).

        Returns
        -------
        ParamMap
            ``name -> (lower, upper)``, lower negative. The Parameters are left at the best fit.

        Raises
        ------
        ValueError
            If a name is not one of the fit's parameters, or the result holds no loss or no adapter.

        See Also
        --------
        zgrad.minimize.Minuit.minos : what this calls, with the adapter that made the result.
        """
        return self._error_analysis("minos").minos(self, *params, cl=cl)

    def hesse(self, *, strategy: Any = None) -> ParamMap:
        """Recompute the symmetric errors at the best fit from a Hessian, as ``2 errordef H^-1``.

        ``errors`` already holds the Hesse errors of the fit (zfit computed them on
        ``result.hesse()``); this computes them again, with the Hessian of ``strategy``, to
        compare strategies or to get errors after a fit whose covariance failed. The result
        itself is not changed, and the Parameters keep the values they had.

        Parameters
        ----------
        strategy : str or strategy object, optional
            Which strategy's Hessian (``'autodiff'``, ``'numerical'``, ...); by default the
            active strategy, read at call time. ``'minuit'`` has no Hessian to give.

        Returns
        -------
        ParamMap
            ``name -> error``.

        Raises
        ------
        ValueError
            If the result holds no loss or no adapter, or the Hessian at the best fit is not
            positive definite (the message names the parameters it leaves free).
        zgrad.errors.GradientError
            If the strategy provides no Hessian.

        See Also
        --------
        zgrad.minimize.Minuit.hesse : what this calls, with the adapter that made the result.
        """
        return self._error_analysis("hesse").hesse(self, strategy=strategy)

    def _error_analysis(self, method: str) -> ErrorAnalysis:
        if not isinstance(self.adapter, ErrorAnalysis):
            raise ValueError(
                f"{method}: this FitResult holds no minimizer adapter to compute errors with (adapter="
                f"{self.adapter!r}); results of zgrad.minimize.Minuit and Scipy hold the one that made them."
            )
        return self.adapter

    def update_params(self) -> FitResult:
        """Set the fit's Parameters to the best-fit ``values`` and return this result.

        A fit already leaves them there; call this after they were moved (a scan, another
        fit, a toy). The counterpart of zfit's ``result.update_params()``; see also
        :func:`zgrad.set_values`, which takes a result too and can restore on exit.

        Raises
        ------
        ValueError
            If a best-fit value lies outside its Parameter's limits (nothing is changed then).
        """
        set_values(self.params, self.values)
        return self

    def __getstate__(self) -> dict:
        # the live Minuit holds bound methods of the fitting objective: leave it out
        state = dict(self.__dict__)
        state["info"] = {key: value for key, value in self.info.items() if key != "minuit"}
        state["minuit"] = None
        return state

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
