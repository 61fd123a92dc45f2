"""Models: analytic shapes normalised in closed form, SciPy template shapes, and sums of them.

Examples
--------
>>> import zgrad
>>> obs = zgrad.Space("x", limits=(-5.0, 5.0))
>>> g = zgrad.models.Gauss(obs=obs, mu=zgrad.Parameter("mu", 0.2), sigma=zgrad.Parameter("sigma", 0.8))
>>> g.get_params()[0].name
'mu'
"""

from __future__ import annotations

from zgrad.models._base import BasePDF
from zgrad.models.analytic import CrystalBall, DoubleCrystalBall, Exponential, Gauss, Polynomial
from zgrad.models.sum import Sum
from zgrad.models.template import KDEShape, SplineShape

__all__ = [
    "BasePDF",
    "CrystalBall",
    "DoubleCrystalBall",
    "Exponential",
    "Gauss",
    "KDEShape",
    "Polynomial",
    "SplineShape",
    "Sum",
]
