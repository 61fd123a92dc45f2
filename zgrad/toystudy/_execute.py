"""Where the toys run: in this process, in spawned worker processes, or on a Dask cluster.

Every backend cuts the toys into contiguous blocks, one per worker, and runs each block with
:func:`zgrad.toystudy._draw.run_block`. A worker gets the model pickled once per block and
the plan (plain data), so it draws every toy from the same per-toy seed as the serial loop:
the numbers do not depend on where a toy ran. Rows come back in toy order.

Worker processes are started with the ``'spawn'`` method: forking a process after
TensorFlow has started can deadlock.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zgrad import _threads
from zgrad.toystudy._draw import ToyRow, run_block
from zgrad.toystudy._spec import ToyPlan

__all__ = ["connect_dask", "pickled_model", "run_dask", "run_processes", "run_serial"]

Advance = Callable[[str, int], None]
_DASK_HINT = "scheduler= needs dask.distributed: pip install zgrad[dask] (or pip install 'dask[distributed]')"


def _dumps(obj: Any, what: str, shown: Any, where: str) -> bytes:
    try:
        return pickle.dumps(obj)
    except Exception as exc:  # any pickling failure: name the object and the reason
        raise TypeError(
            f"{where} ships {what} to other processes, but {shown!r} does not pickle: {exc}"
        ) from exc


def pickled_model(model: Any, plan: ToyPlan, where: str) -> bytes:
    """Return ``pickle.dumps(model)``; raise a TypeError naming what does not pickle (model or minimizer)."""
    data = _dumps(model, "the model", model, where)
    _dumps(plan, "the minimizer", plan.minimizer, where)  # the plan is numbers but for the minimizer
    return data


def _blocks(n_toys: int, n_blocks: int) -> list[np.ndarray]:
    return [b for b in np.array_split(np.arange(n_toys), min(n_toys, n_blocks)) if b.size]


def _label(block: Sequence[int]) -> str:
    return f"toy {block[0]}" if len(block) == 1 else f"toys {block[0]}-{block[-1]}"


def run_serial(model: Any, plan: ToyPlan, advance: Advance | None) -> list[ToyRow]:
    """Run every toy here, on ``model`` itself (its Parameters are restored afterwards)."""
    done = None if advance is None else (lambda k: advance(f"toy {k}", 1))
    return run_block(model, plan, range(plan.seeds.size), done)


def _block_job(model_bytes: bytes, plan: ToyPlan, indices: np.ndarray) -> list[ToyRow]:
    return run_block(pickle.loads(model_bytes), plan, indices)


def _init_worker(intra_threads: int) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # before any TensorFlow computation in this worker: the workers share the cores
    _threads.set_threads(intra_threads, 1)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _collect(pairs: Any, blocks: list[np.ndarray], advance: Advance | None) -> list[ToyRow]:
    rows: list[list[ToyRow]] = [[] for _ in blocks]
    for k, block_rows in pairs:
        rows[k] = block_rows
        if advance is not None:
            advance(_label(blocks[k]), len(blocks[k]))
    return [row for block_rows in rows for row in block_rows]


def run_processes(model_bytes: bytes, plan: ToyPlan, workers: int, advance: Advance | None) -> list[ToyRow]:
    """Run the toys in ``workers`` spawned processes, one contiguous block each."""
    blocks = _blocks(plan.seeds.size, workers)
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=len(blocks),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(max(1, _cores() // len(blocks)),),
    )
    try:
        futures = {pool.submit(_block_job, model_bytes, plan, b): k for k, b in enumerate(blocks)}
        pairs = ((futures[f], f.result()) for f in concurrent.futures.as_completed(futures))
        return _collect(pairs, blocks, advance)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_address(address: str, option: str) -> None:
    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(location)
    except ValueError as exc:
        raise ValueError(
            f"{option} {address!r} is not a Dask scheduler address (allowed: 'tcp://host:port', "
            f"'host:port' or another scheme Dask knows): {exc}"
        ) from None


def connect_dask(address: str, option: str, hint: str) -> tuple[Any, Any]:
    """Return ``(distributed, client)`` for the scheduler at ``address``.

    A malformed address raises ValueError, naming ``option``, before any client exists: a
    client whose start failed on one hangs for a minute when it is garbage-collected.
    ``hint`` is the ImportError's message when dask.distributed is missing.
    """
    try:
        import distributed
    except ImportError as exc:  # optional dependency: say how to get it
        raise ImportError(hint) from exc
    _check_address(address, option)
    return distributed, distributed.Client(address, set_as_default=False)


def _dask_client(scheduler: Any) -> tuple[Any, Any, bool]:
    """Return (distributed, client, whether this call owns the client and must close it)."""
    if isinstance(scheduler, str):
        return (*connect_dask(scheduler, "scheduler=", _DASK_HINT), True)
    import distributed  # a Client was given, so dask.distributed is there

    return distributed, scheduler, False


def run_dask(model_bytes: bytes, plan: ToyPlan, scheduler: Any, advance: Advance | None) -> list[ToyRow]:
    """Run the toys on a Dask cluster, one contiguous block per worker thread."""
    distributed, client, owned = _dask_client(scheduler)
    try:
        threads = sum(client.nthreads().values())
        blocks = _blocks(plan.seeds.size, max(1, threads))
        futures = [client.submit(_block_job, model_bytes, plan, b, pure=False) for b in blocks]
        index = {f.key: k for k, f in enumerate(futures)}
        done = distributed.as_completed(futures, with_results=True, loop=client.loop)
        return _collect(((index[f.key], rows) for f, rows in done), blocks, advance)
    finally:
        if owned:
            client.close()
