"""``zgrad.toys``: draw toy data sets from a model, fit each, and collect the numbers."""

from __future__ import annotations

from typing import Any

from zgrad._progress import ProgressBar, wants_bar
from zgrad.toystudy import _execute, _spec
from zgrad.toystudy.study import ToyStudy, from_rows

__all__ = ["toys"]


def toys(
    model: Any,
    n_toys: int,
    *,
    n_events: int | None = None,
    truth: dict[str, float] | None = None,
    minimizer: Any = None,
    strategy: str | None = None,
    seed: int = 0,
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool | None = None,
) -> ToyStudy:
    """Draw ``n_toys`` data sets from ``model`` at ``truth``, fit each, and return a :class:`ToyStudy`.

    Each toy resets the model's Parameters to the truth, draws its events with its own seed
    (``model.sample(n, seed=...)``), builds an :class:`~zgrad.losses.ExtendedUnbinnedNLL`
    (extended model) or :class:`~zgrad.losses.UnbinnedNLL`, and fits it from the truth. A toy
    that fails (an exception while sampling or fitting, an invalid fit, a non-finite value or
    error) is a row with ``valid=False`` and its message; the study goes on.

    Parameters
    ----------
    model : zgrad model
        The model to draw from and to fit; its floating Parameters are fitted.
    n_toys : int
        Number of toys (positive).
    n_events : int, optional
        Events per toy. None: a Poisson number around ``model.expected_events()`` at the truth,
        per toy (extended models only; a non-extended model needs ``n_events``).
    truth : dict of str to float, optional
        Parameter values to draw at, by name; parameters not named keep their current value.
        Default: the current values. Afterwards every Parameter holds the value it had before
        the call, also after an error or an interrupt.
    minimizer : optional
        Any object with ``minimize(loss)`` returning a :class:`~zgrad.minimize.FitResult`;
        default ``zgrad.minimize.Minuit()``. It is pickled to the workers.
    strategy : str, optional
        A registered gradient strategy (``'autodiff'``, ``'numerical'``, ``'minuit'``, ...):
        every toy runs under ``zgrad.run.set_mode(autograd=strategy)``, a scoped policy that a
        minimizer with ``gradient=None`` follows. None: the policy in force (in a worker
        process: the process default). A strategy registered at run time must be registered
        in the workers too, or their toys fail with a message.
    seed : int, default 0
        Base seed (non-negative); toy ``k`` is drawn with ``study.seed[k]``, derived from it
        with :class:`numpy.random.SeedSequence`. The same seed gives the same numbers serially,
        with ``workers`` and on Dask.
    workers : int, optional
        Run the toys in this many spawned local processes (contiguous blocks of toys, the model
        pickled to each). The model and the minimizer must pickle.
    scheduler : str or distributed.Client, optional
        Run the toys on a Dask cluster: a scheduler address or a connected client (one block per
        worker thread). Needs ``pip install zgrad[dask]``. Not together with ``workers``.
    progress : bool, optional
        Draw a progress bar on stderr; None: only when stderr is a terminal.

    Returns
    -------
    ToyStudy

    Raises
    ------
    ValueError
        For a non-positive ``n_toys``, ``n_events`` or ``workers``, a negative ``seed``, an
        unknown ``strategy`` or ``truth`` name, a ``truth`` value outside its limits, both
        ``workers`` and ``scheduler``, a malformed ``scheduler`` address (refused before any
        connection is tried), or ``n_events=None`` on a non-extended model.
    TypeError
        For a ``model`` or ``minimizer`` of the wrong kind, a ``scheduler`` that is neither an
        address nor a client, a non-bool ``progress``, or a model that does not pickle when
        ``workers`` or ``scheduler`` is given.
    ImportError
        If ``scheduler`` is given and dask.distributed is not installed.

    Examples
    --------
    >>> import zgrad
    >>> obs = zgrad.Space("x", limits=(-5.0, 5.0))
    >>> mu = zgrad.Parameter("mu", 0.0, -1.0, 1.0)
    >>> sigma = zgrad.Parameter("sigma", 1.0, 0.5, 2.0)
    >>> model = zgrad.models.Gauss(obs=obs, mu=mu, sigma=sigma)
    >>> study = zgrad.toys(model, 4, n_events=300, truth={"mu": 0.2}, seed=7, progress=False)
    >>> study.truth, bool(study.valid.all())
    ({'mu': 0.2, 'sigma': 1.0}, True)
    >>> float(mu.value())  # left as it was found
    0.0
    """
    _spec.check_where(workers, scheduler)
    show = wants_bar(progress)
    plan = _spec.plan(model, n_toys, n_events, truth, minimizer, strategy, seed)
    model_bytes = None
    if workers is not None or scheduler is not None:
        model_bytes = _execute.pickled_model(model, plan, "workers=" if workers is not None else "scheduler=")
    bar = ProgressBar(plan.seeds.size) if show else None
    advance = None if bar is None else bar.advance
    if workers is not None:
        rows = _execute.run_processes(model_bytes, plan, workers, advance)
    elif scheduler is not None:
        rows = _execute.run_dask(model_bytes, plan, scheduler, advance)
    else:
        rows = _execute.run_serial(model, plan, advance)
    return from_rows(plan, rows)
