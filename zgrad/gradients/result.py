"""The result every built-in strategy returns: values, derivatives, error estimates, cost."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The per-component status codes are defined by the ground layer that computes them.
from zgrad._finite import STATUS_NEAR_LIMIT, STATUS_NONFINITE, STATUS_OK, STATUS_ONE_SIDED, STATUS_ROUNDING

__all__ = [
    "GradientResult",
    "STATUS_NEAR_LIMIT",
    "STATUS_NONFINITE",
    "STATUS_OK",
    "STATUS_ONE_SIDED",
    "STATUS_ROUNDING",
    "symmetrize",
]


@dataclass(frozen=True)
class GradientResult:
    """Value and derivatives of a scalar function of Parameters, with their cost and accuracy.

    Attributes
    ----------
    value : float or tensor
        The function value at the current Parameter values.
    gradient : ndarray or tensor, shape (n,)
    hessian : ndarray or tensor, shape (n, n), or None
        Present when requested; exactly symmetric.
    error : ndarray, shape (n,), or None
        Estimated absolute error of each gradient component; None where the result is exact
        (automatic differentiation).
    hessian_error : ndarray, shape (n, n), or None
        Estimated absolute error of each Hessian entry, where the strategy provides one.
    n_evals : int or None
        Evaluations of the function used (value included); None where a user strategy did not say.
    strategy : str
        Name of the strategy that produced the result.
    status : tuple of str
        Per gradient component: ``'ok'``, ``'rounding-limited'``, ``'one-sided'``, ``'near-limit'``
        (the estimate that resolves the scale of the distance to a limit was kept) or ``'non-finite'``.
    params : tuple of str
        Names of the Parameters, in the order of the components.

    Examples
    --------
    >>> import numpy as np
    >>> from zgrad.gradients import GradientResult
    >>> r = GradientResult(value=1.0, gradient=np.array([2.0]), strategy="demo", n_evals=3)
    >>> r.status
    ('ok',)
    """

    value: Any
    gradient: Any
    hessian: Any = None
    error: Any = None
    hessian_error: Any = None
    n_evals: int | None = None
    strategy: str = ""
    status: tuple[str, ...] = field(default=())
    params: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.status:
            n = int(np.shape(self.gradient)[0]) if np.ndim(self.gradient) else 1
            object.__setattr__(self, "status", (STATUS_OK,) * n)

    @property
    def ok(self) -> bool:
        """Whether every component has status ``'ok'``."""
        return all(s == STATUS_OK for s in self.status)


def symmetrize(hessian: Any) -> Any:
    """Return ``(H + H.T) / 2``: exactly symmetric, for NumPy arrays and tensors alike."""
    if isinstance(hessian, np.ndarray):
        return 0.5 * (hessian + hessian.T)
    tf = sys.modules["tensorflow"]  # a tensor was given, so TensorFlow is already imported
    return 0.5 * (hessian + tf.transpose(hessian))
