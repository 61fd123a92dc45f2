"""The ``'minuit'`` strategy: zgrad provides no gradient, the minimizer computes its own."""

from __future__ import annotations

from typing import Any

from zgrad.errors import GradientError


class MinuitStrategy:
    """Leave differentiation to the minimizer (Minuit's own numerical gradient).

    Minimizer adapters that see ``provides_gradient = False`` pass no gradient to
    the minimizer. Asking this strategy for a gradient directly is an error, since
    it has none to give.

    Examples
    --------
    >>> import zgrad
    >>> s = zgrad.gradients.get("minuit")
    >>> s.provides_gradient, s.is_autograd
    (False, False)
    """

    name = "minuit"
    is_autograd = False
    provides_gradient = False

    def value_gradient(self, func: Any, params: Any) -> Any:
        """Raise :class:`~zgrad.errors.GradientError`: this strategy has no gradient to give."""
        raise GradientError(
            "The 'minuit' strategy provides no gradient: with it, the minimizer (Minuit) differentiates "
            "the loss numerically by itself. To obtain a gradient from zgrad, pass strategy='autodiff' or "
            "strategy='numerical', or select one with zgrad.run.set_mode(autograd=...)."
        )

    def hessian(self, func: Any, params: Any) -> Any:
        """Raise :class:`~zgrad.errors.GradientError`: this strategy has no Hessian to give."""
        raise GradientError(
            "The 'minuit' strategy provides no Hessian: Minuit's HESSE computes one itself during a fit. "
            "For a Hessian from zgrad, pass strategy='autodiff' or strategy='numerical'."
        )

    def __repr__(self) -> str:
        return "<zgrad strategy 'minuit'>"
