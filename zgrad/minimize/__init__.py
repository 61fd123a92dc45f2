"""Minimizer adapters that ask the gradient policy which gradient to use.

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
