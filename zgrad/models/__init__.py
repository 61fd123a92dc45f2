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

import importlib
from typing import TYPE_CHECKING, Any

from zgrad.models._base import BasePDF
from zgrad.models.analytic import CrystalBall, DoubleCrystalBall, Exponential, Gauss, Polynomial
from zgrad.models.sum import Sum

# The template shapes pull in scipy.interpolate and scipy.stats (about 0.5 s and 50 MB):
# they are imported when first used, not with every model.
_LAZY = {"KDEShape": "zgrad.models.template", "SplineShape": "zgrad.models.template"}

if TYPE_CHECKING:  # pragma: no cover
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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zgrad.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
