"""What ``crosscheck`` differentiates: any function it accepts, made into one :class:`Target`.

A zgrad loss or a callable of Parameters is used as given; a zfit loss, an iminuit cost and a
function of a vector go through :mod:`zgrad.checks._adapters`, which gives them Parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zgrad.checks import _adapters, _inputs
from zgrad.checks._rule import NUMERICAL_REFERENCE
from zgrad.gradients import registry

__all__ = ["Target", "errordef_note", "make_target"]


@dataclass(frozen=True)
class Target:
    """What the check differentiates: the function, its Parameters, closed forms and local strategies."""

    func: Callable[[], Any]
    params: tuple
    reference_gradient: Callable[[np.ndarray], Any] | None
    reference_hessian: Callable[[np.ndarray], Any] | None
    #: strategies that exist only for this check (the user's derivatives), by name
    local: Mapping[str, Any] = field(default_factory=dict)
    #: the strategies tried, in order, for a reference when there is no closed form
    references: tuple[tuple[str, str], ...] = (("autodiff", "autodiff"), ("numerical", NUMERICAL_REFERENCE))

    def strategy(self, name: str) -> Any:
        """Return the strategy object of ``name``: a local one, else the registered one."""
        return self.local[name] if name in self.local else registry.get(name)


def make_target(
    obj: Any, params: Any, strategies: Any, points: Any, reference: Any, vector: dict
) -> tuple[Target, tuple[str, ...], float | None, list[str]]:
    """Return ``(target, strategy names, errordef, notes)`` for any kind of function crosscheck takes."""
    ref_grad, ref_hess = _inputs.resolve_reference(reference)
    if _adapters.is_zfit_loss(obj):  # its own Parameters: zgrad's strategies, the reference, and 'zfit'
        adapted = _adapters.adapt_zfit(obj, params, vector)
        names = _adapters.resolve_zfit_strategies(strategies)
        target = Target(adapted.func, adapted.params, ref_grad, ref_hess, {_adapters.ZFIT: adapted.user})
        notes = [f"checked a {adapted.kind}: 'zfit' is zfit's own loss.value_gradient (and loss.hessian)"]
        return target, names, adapted.errordef, [*notes, errordef_note(adapted)]
    if not _adapters.wants_adapter(
        obj, params, **{k: vector[k] for k in ("x0", "gradient", "names", "limits")}
    ):
        if vector["hessian"] is not None:
            raise TypeError(
                "hessian= as a callable (the user's Hessian) is for a function of a vector or an iminuit "
                "cost; for a zgrad loss or a callable of Parameters pass hessian=True and reference=."
            )
        func, params = _inputs.resolve_target(obj, params)
        names = _inputs.resolve_strategies(strategies)
        return Target(func, params, ref_grad, ref_hess), names, getattr(obj, "errordef", None), []
    adapted = _adapters.adapt(obj, points=points, **vector)
    names = _adapters.resolve_strategies(strategies, adapted, ref_grad is not None)
    local = {} if adapted.user is None else {_adapters.USER: adapted.user}
    target = Target(
        adapted.func, adapted.params, ref_grad, ref_hess, local, (("numerical", NUMERICAL_REFERENCE),)
    )
    notes = [f"checked a {adapted.kind}: automatic differentiation cannot see through it"]
    if adapted.errordef is not None:
        notes.append(errordef_note(adapted))
    return target, names, adapted.errordef, notes


def errordef_note(adapted: _adapters.Adapted) -> str:
    """Return the note that says where ``errordef`` came from and that it does not enter the comparison."""
    return (
        f"errordef = {adapted.errordef:g} (from the {adapted.kind}): the derivatives are those of the "
        "cost as given; errordef scales the parameter errors, not this comparison"
    )
