"""The registry of gradient strategies: a dict behind ``register``, ``get``, ``available``, ``unregister``.

A strategy is any object with

- ``is_autograd`` (bool): what ``zgrad.run.current_policy_autograd()`` answers while it is active;
- ``provides_gradient`` (bool): False means the minimizer differentiates by itself;
- ``value_gradient(func, params)``: a :class:`~zgrad.gradients.GradientResult` or a plain
  ``(value, gradient)`` pair, where ``func`` is a zero-argument callable reading the Parameters;
- optionally ``hessian(func, params)``: a GradientResult with ``hessian`` set, or the matrix.

No base class is needed: :class:`zgrad.typing.GradientStrategy` and
:class:`~zgrad.typing.HessianStrategy` name these members. The built-ins ``'autodiff'``,
``'numerical'`` and ``'minuit'`` are loaded on first use and cannot be unregistered.
"""

from __future__ import annotations

from typing import Any

from zgrad import _policy, _strategy_table
from zgrad.typing import GradientStrategy

__all__ = ["available", "get", "register", "unregister", "check_strategy"]


def check_strategy(strategy: Any, name: str = "strategy") -> Any:
    """Return ``strategy`` if it satisfies the protocol, else raise ``TypeError`` saying what is missing."""
    if isinstance(strategy, type):
        # a class passes the attribute checks, then fails at call time with a confusing argument error
        raise TypeError(
            f"{name} = {strategy.__name__} is a class; register an instance, e.g. {strategy.__name__}()."
        )
    # the protocol says which names a strategy has; their types it cannot see, so they are checked too
    problems = _problems(strategy)
    if isinstance(strategy, GradientStrategy) and not problems:
        return strategy
    # no problem named: the members exist only through __getattr__, which protocols do not see
    missing = ", ".join(problems) or "real attributes 'is_autograd', 'provides_gradient', 'value_gradient'"
    raise TypeError(
        f"{name} = {strategy!r} ({type(strategy).__name__}) is not a gradient strategy: it lacks "
        f"{missing}. See zgrad.gradients for the protocol."
    )


def _problems(strategy: Any) -> list[str]:
    """Return what ``strategy`` lacks of :class:`~zgrad.typing.GradientStrategy`, each as a phrase."""
    problems = []
    for attr in ("is_autograd", "provides_gradient"):
        if not isinstance(getattr(strategy, attr, None), bool):
            problems.append(f"attribute {attr!r} (bool)")
    if not callable(getattr(strategy, "value_gradient", None)):
        problems.append("method 'value_gradient(func, params)'")
    hessian = getattr(strategy, "hessian", None)
    if hessian is not None and not callable(hessian):
        problems.append("a callable 'hessian' (optional, but it must be a method if present)")
    return problems


def register(name: str, strategy: Any, *, overwrite: bool = False) -> None:
    """Register a gradient strategy under ``name`` so ``set_mode(autograd=name)`` can select it.

    Parameters
    ----------
    name : str
        A short lowercase name, e.g. ``'central'``.
    strategy : object
        Any object satisfying the strategy protocol (see :mod:`zgrad.gradients`).
    overwrite : bool, default False
        Replace an existing user strategy of that name. Built-ins cannot be replaced.

    Raises
    ------
    ValueError
        If the name is taken (and ``overwrite`` is False), names a built-in, or is empty.
    TypeError
        If ``name`` is not a string or ``strategy`` does not satisfy the protocol.

    Examples
    --------
    >>> import zgrad
    >>> class Constant:
    ...     is_autograd = False
    ...     provides_gradient = True
    ...     def value_gradient(self, func, params):
    ...         return float(func()), [0.0 for _ in params]
    >>> zgrad.gradients.register("constant", Constant())
    >>> "constant" in zgrad.gradients.available()
    True
    >>> zgrad.gradients.unregister("constant")
    """
    if not isinstance(name, str):
        raise TypeError(f"A strategy name must be a str; got {name!r} ({type(name).__name__}).")
    if not name or name != name.strip():
        raise ValueError(f"A strategy name must be non-empty without surrounding spaces; got {name!r}.")
    if name in _strategy_table.BUILTIN_STRATEGIES:
        raise ValueError(
            f"{name!r} is a built-in strategy and cannot be replaced; built-ins are "
            f"{list(_strategy_table.BUILTIN_STRATEGIES)}. Register yours under another name."
        )
    check_strategy(strategy)
    _strategy_table.add(name, strategy, overwrite=overwrite)


def get(name: str) -> Any:
    """Return the strategy registered as ``name`` (built-ins are imported on first use).

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the registered names.

    Examples
    --------
    >>> import zgrad
    >>> zgrad.gradients.get("autodiff").is_autograd
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"A strategy name must be a str; got {name!r} ({type(name).__name__}).")
    return _strategy_table.lookup(name)


def available() -> tuple[str, ...]:
    """Return the registered strategy names, built-ins first.

    Examples
    --------
    >>> import zgrad
    >>> zgrad.gradients.available()[:3]
    ('autodiff', 'numerical', 'minuit')
    """
    return _strategy_table.names()


def unregister(name: str) -> None:
    """Remove a user-registered strategy.

    Raises
    ------
    ValueError
        If ``name`` is not registered, is a built-in, or is selected by the process
        default or the caller's scoped mode (switch away from it first).
    """
    if name in _strategy_table.BUILTIN_STRATEGIES:
        raise ValueError(f"{name!r} is a built-in strategy and cannot be unregistered.")
    if name in _policy.names_in_use():
        raise ValueError(
            f"Cannot unregister {name!r}: it is the active gradient strategy; select another one first "
            "(e.g. zgrad.run.set_mode(autograd=True))."
        )
    _strategy_table.remove(name)
