"""Gradient strategies: a registry users can extend, and the result they return.

A strategy is any object with ``is_autograd`` (bool), ``provides_gradient`` (bool),
``value_gradient(func, params)`` and optionally ``hessian(func, params)``; see
:mod:`zgrad.gradients.registry`. Built-ins: ``'autodiff'`` (TensorFlow's
GradientTape), ``'numerical'`` (finite differences with error estimates, two
budgets) and ``'minuit'`` (no gradient: the minimizer differentiates itself).

Examples
--------
>>> import zgrad
>>> zgrad.gradients.available()[:3]
('autodiff', 'numerical', 'minuit')
"""

from __future__ import annotations

from zgrad.gradients.registry import available, get, register, unregister
from zgrad.gradients.result import GradientResult

__all__ = ["GradientResult", "available", "get", "register", "unregister"]
