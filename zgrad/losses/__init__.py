"""Likelihood and least-squares losses whose derivatives follow the gradient policy.

Examples
--------
>>> import zgrad
>>> x = zgrad.Parameter("x", 2.0)
>>> loss = zgrad.losses.SimpleLoss(lambda: x**2, [x], errordef=1.0)
>>> (loss + loss).value()
8.0
"""

from __future__ import annotations

from zgrad.losses._base import BaseLoss, GaussianConstraint, SumLoss
from zgrad.losses.binned import BinnedNLL, Chi2, SimpleLoss
from zgrad.losses.unbinned import ExtendedUnbinnedNLL, UnbinnedNLL

__all__ = [
    "BaseLoss",
    "BinnedNLL",
    "Chi2",
    "ExtendedUnbinnedNLL",
    "GaussianConstraint",
    "SimpleLoss",
    "SumLoss",
    "UnbinnedNLL",
]
