"""Where the suite's tasks run: in this process, in local worker processes, or on a Dask cluster.

Every task is a small frozen dataclass naming its case, point and strategy by string,
with a ``run()`` method: a worker rebuilds the case, its seeded data and fresh
Parameters from those names, so nothing live (no model, no TensorFlow object) is ever
pickled. Results come back in task order whatever the order of completion, so the
report of a parallel run is laid out exactly like the serial one.

- :class:`InProcess` (the default) runs the tasks one after another here;
- :class:`LocalProcesses` (``--workers N``) uses ``N`` worker processes started with
  multiprocessing's ``'spawn'`` method: TensorFlow does not survive a ``fork``;
- :class:`DaskCluster` (``--scheduler ADDRESS``) submits them to a running
  ``dask.distributed`` scheduler, whose workers must be able to import ``validation``
  and ``zgrad`` (run them from a checkout of this repository).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import zgrad
from zgrad.toystudy._execute import connect_dask

__all__ = ["DaskCluster", "InProcess", "LocalProcesses", "execute", "make_executor"]

Progress = Callable[[Any], None]
_DASK_HINT = (
    "the Dask executor needs dask.distributed: pip install zgrad[dask] (or pip install 'dask[distributed]')"
)


def execute(task: Any) -> Any:
    """Run one task and drop the traces it made (each task builds its own function, never reused)."""
    try:
        return task.run()
    finally:
        zgrad.run.clear_graph_cache()


def _collect(pairs: Iterator[tuple[int, Any]], tasks: Sequence[Any], progress: Progress | None) -> list:
    results: list[Any] = [None] * len(tasks)
    for index, result in pairs:
        results[index] = result
        if progress is not None:
            progress(tasks[index])
    return results


class InProcess:
    """Run tasks one after another in this process."""

    name = "in-process"

    def describe(self) -> dict[str, Any]:
        """Return what the report records about the executor."""
        return {"kind": self.name}

    def map(self, tasks: Sequence[Any], progress: Progress | None = None) -> list:
        """Return the results of ``tasks`` in order; ``progress(task)`` is called after each one."""
        return _collect(((i, execute(t)) for i, t in enumerate(tasks)), tasks, progress)

    def close(self) -> None:
        """Nothing to release."""


def _init_worker(intra_threads: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # before any TensorFlow computation in this worker: N workers share the cores
    zgrad.run.set_cpus_explicit(intra_threads, 1)


class LocalProcesses:
    """Run tasks in ``workers`` spawned worker processes on this machine."""

    name = "processes"

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive int; got {workers!r}.")
        self.workers = workers
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on every platform
            cores = os.cpu_count() or 1
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(max(1, cores // workers),),
        )

    def describe(self) -> dict[str, Any]:
        """Return what the report records about the executor."""
        return {"kind": self.name, "workers": self.workers, "start_method": "spawn"}

    def map(self, tasks: Sequence[Any], progress: Progress | None = None) -> list:
        """Return the results of ``tasks`` in task order, reporting each as it completes."""
        futures = {self._pool.submit(execute, task): i for i, task in enumerate(tasks)}
        done = ((futures[f], f.result()) for f in concurrent.futures.as_completed(futures))
        return _collect(done, tasks, progress)

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskCluster:
    """Run tasks on the ``dask.distributed`` scheduler at ``address`` (e.g. ``tcp://host:8786``)."""

    name = "dask"

    def __init__(self, address: str) -> None:
        # a malformed address is refused before a client exists (one that failed to start hangs at exit)
        self._distributed, self._client = connect_dask(address, "--scheduler", _DASK_HINT)
        self.address = address

    def describe(self) -> dict[str, Any]:
        """Return what the report records about the executor."""
        workers = self._client.scheduler_info().get("workers", {})
        return {"kind": self.name, "scheduler": self.address, "workers": len(workers)}

    def map(self, tasks: Sequence[Any], progress: Progress | None = None) -> list:
        """Return the results of ``tasks`` in task order, reporting each as it completes."""
        futures = self._client.map(execute, list(tasks), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        done = (
            (index[f.key], result)
            for f, result in self._distributed.as_completed(
                futures, with_results=True, loop=self._client.loop
            )
        )
        return _collect(done, tasks, progress)

    def close(self) -> None:
        """Disconnect from the scheduler (the cluster keeps running)."""
        self._client.close()


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Any:
    """Return the executor for ``--workers`` / ``--scheduler`` (in-process when neither is given).

    Raises
    ------
    ValueError
        If both are given, or ``workers`` is not a positive int.
    ImportError
        If ``scheduler`` is given and dask.distributed is not installed (with the install hint).
    ValueError
        Also if ``scheduler`` is not a well-formed address (before any connection is tried).

    Examples
    --------
    >>> from validation.executors import make_executor
    >>> make_executor().describe()
    {'kind': 'in-process'}
    """
    if workers is not None and scheduler is not None:
        raise ValueError("give either --workers (local processes) or --scheduler (a Dask cluster), not both.")
    if scheduler is not None:
        return DaskCluster(scheduler)
    if workers is not None:
        return LocalProcesses(workers)
    return InProcess()
