"""What every toy of a study needs, checked up front: the plan that travels to the workers.

:func:`plan` validates the arguments of :func:`zgrad.toys` before anything is changed or
computed, derives the per-toy seeds and event counts, and returns a :class:`ToyPlan`: plain
data (names, numbers, NumPy arrays, the minimizer object) that pickles, so a spawned process
or a Dask worker gets exactly what the serial loop uses.

Seeds: toy ``k`` gets ``seed_k = SeedSequence(seed).generate_state(n_toys, uint64)[k] >> 1``
(a non-negative int64; the first ``m`` toys of a longer study are the toys of a study of
``m``). Its events come from ``model.sample(n_k, seed=seed_k)``; on an extended model with
``n_events=None``, ``n_k`` is a Poisson number drawn with ``numpy.random.default_rng((seed_k,
1))`` around the expected yield at the truth.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from zgrad import _strategy_table

__all__ = ["ToyPlan", "check_where", "plan"]

#: Second word of the per-toy Poisson generator's seed: a stream apart from the sampling one.
_POISSON_STREAM = 1


@dataclass(frozen=True, eq=False)
class ToyPlan:
    """Everything a worker needs besides the model: one entry per toy in the arrays."""

    names: tuple[str, ...]
    truth: dict[str, float]
    seeds: np.ndarray
    n_events: np.ndarray
    extended: bool
    minimizer: Any
    strategy: str | None
    base_seed: int


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}.")
    return int(value)


def check_where(workers: Any, scheduler: Any) -> None:
    """Check ``workers`` (None or a positive int) and ``scheduler`` (None, an address or a Client)."""
    if workers is not None and scheduler is not None:
        raise ValueError(
            f"give either workers= (local processes) or scheduler= (a Dask cluster), not both; "
            f"got workers={workers!r} and scheduler={scheduler!r}."
        )
    if workers is not None:
        _positive_int("workers", workers)
    if scheduler is not None and not isinstance(scheduler, str) and not _is_dask_client(scheduler):
        raise TypeError(
            f"scheduler must be None, a Dask scheduler address (str) or a distributed.Client; got "
            f"{scheduler!r} ({type(scheduler).__name__})."
        )


def _is_dask_client(obj: Any) -> bool:
    try:
        import distributed
    except ImportError:  # then obj cannot be a Client
        return False
    return isinstance(obj, distributed.Client)


def _check_options(minimizer: Any, strategy: Any, seed: Any) -> None:
    if minimizer is not None and not callable(getattr(minimizer, "minimize", None)):
        raise TypeError(
            f"minimizer must be None (zgrad.minimize.Minuit()) or an object with a minimize(loss) method "
            f"returning a FitResult; got {minimizer!r} ({type(minimizer).__name__})."
        )
    known = isinstance(strategy, str) and _strategy_table.is_registered(strategy)
    if strategy is not None and not known:
        raise ValueError(
            f"strategy must be None (the policy in force) or a registered gradient strategy name, one of "
            f"{list(_strategy_table.names())}; got {strategy!r}."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}.")


def _model_params(model: Any) -> dict[str, Any]:
    if not all(hasattr(model, a) for a in ("sample", "get_params", "is_extended")):
        raise TypeError(
            f"model must be a zgrad model (with sample, get_params and is_extended); got {model!r} "
            f"({type(model).__name__})."
        )
    return {p.name: p for p in model.get_params(floating=None)}


def _checked_truth(params: Mapping[str, Any], truth: Any) -> dict[str, float]:
    values = {name: float(p.numpy()) for name, p in params.items()}
    if truth is None:
        return values
    if not isinstance(truth, Mapping):
        raise TypeError(f"truth must be None or a dict of parameter name -> value; got {truth!r}.")
    for name, value in truth.items():
        if name not in params:
            raise ValueError(
                f"truth names {name!r}, which is not a parameter of the model; allowed: {list(params)}."
            )
        with params[name].set_value(value):  # the Parameter's own check of type, finiteness and limits
            pass
        values[name] = float(value)
    return values


def _expected_events(model: Any, params: Mapping[str, Any], truth: Mapping[str, float]) -> float:
    with contextlib.ExitStack() as stack:
        for name, value in truth.items():
            stack.enter_context(params[name].set_value(value))
        expected = float(np.asarray(model.expected_events()))
    if not (math.isfinite(expected) and expected > 0):
        raise ValueError(
            f"the model's expected number of events at the truth is {expected}; it must be positive."
        )
    return expected


def _event_counts(model: Any, params: Any, truth: Any, n_events: Any, seeds: np.ndarray) -> np.ndarray:
    if n_events is not None:
        return np.full(seeds.size, _positive_int("n_events", n_events), dtype=np.int64)
    if not model.is_extended:
        raise ValueError(
            f"n_events=None draws a Poisson number of events around the expected yield, but {model!r} is "
            "not extended (it has no yield): pass n_events=<number of events per toy>."
        )
    expected = _expected_events(model, params, truth)
    counts = [np.random.default_rng((int(s), _POISSON_STREAM)).poisson(expected) for s in seeds]
    return np.asarray(counts, dtype=np.int64)


def plan(
    model: Any, n_toys: Any, n_events: Any, truth: Any, minimizer: Any, strategy: Any, seed: Any
) -> ToyPlan:
    """Validate the arguments of :func:`zgrad.toys` and return the study's plan.

    The model's Parameters are left exactly as they were, also when an argument is refused.
    """
    n_toys = _positive_int("n_toys", n_toys)
    _check_options(minimizer, strategy, seed)
    params = _model_params(model)
    values = _checked_truth(params, truth)
    seeds = np.random.SeedSequence(int(seed)).generate_state(n_toys, dtype=np.uint64) >> np.uint64(1)
    seeds = seeds.astype(np.int64)
    counts = _event_counts(model, params, values, n_events, seeds)
    for array in (seeds, counts):
        array.setflags(write=False)
    return ToyPlan(
        names=tuple(p.name for p in model.get_params(floating=True)),
        truth=values,
        seeds=seeds,
        n_events=counts,
        extended=bool(model.is_extended),
        minimizer=minimizer,
        strategy=strategy,
        base_seed=int(seed),
    )
