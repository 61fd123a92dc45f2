"""Minimizer adapters that ask the gradient policy which gradient to use.

Both adapters follow one template (``_adapter.Adapter.minimize``: choose and check the
gradient, run the minimizer through the ``_minimize`` hook, assess the end point, build the
result). A :class:`FitResult` is data; :meth:`FitResult.minos` and :meth:`FitResult.hesse`
ask the adapter that made it (:class:`~zgrad.typing.ErrorAnalysis`), and one helper builds
every ``iminuit.Minuit`` object, for the fit and for MINOS alike.

Examples
--------
>>> import zgrad
>>> zgrad.minimize.Minuit(gradient=False).gradient
False
"""

from __future__ import annotations

from zgrad.minimize.minuit import Minuit
from zgrad.minimize.result import FitResult, ParamMap
from zgrad.minimize.scipy import Scipy

__all__ = ["FitResult", "Minuit", "ParamMap", "Scipy"]
