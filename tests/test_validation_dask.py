"""Executors of the validation suite: spawned worker processes and a Dask cluster give the serial numbers.

Tasks are picklable specifications (names and seeds) rebuilt in the worker, so every number of a
parallel run (derivatives, error estimates, evaluation counts, fits, toys, precision scans) must
equal the serial run's exactly; only wall times differ.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from validation import executors, runner

# a reference function, a model case with fits and toys, a float32 model case
SUBSET = ["exp_large", "exponential", "gauss_f32"]
TIMING = {"seconds", "wall_time"}


def _numbers(result):
    """Everything of a run but its timings, as plain data."""

    def strip(row):
        return {k: v for k, v in row.to_dict().items() if k not in TIMING}

    scans = [
        (task, scan.x.tolist(), scan.numerical.tolist(), scan.error.tolist(), scan.reference.tolist())
        for task, scan in result.scans
    ]
    return {
        "rows": [strip(r) for r in result.rows],
        "reference_checks": [c.to_dict() for c in result.reference_checks],
        "fits": [strip(r) for r in result.fits],
        "toys": [strip(r) for r in result.toys],
        "scans": scans,
    }


SERIAL_LABELS: list[str] = []


@pytest.fixture(scope="module")
def serial():
    result = runner.run_suite(
        quick=True, cases=SUBSET, toys=2, progress=lambda t: SERIAL_LABELS.append(t.label)
    )
    assert result.rows and result.fits and result.toys and result.scans
    return result


def _assert_same(parallel, serial):
    assert parallel.ok == serial.ok
    mine, theirs = _numbers(parallel), _numbers(serial)
    for key in theirs:
        assert mine[key] == theirs[key], key


@pytest.mark.subprocess
def test_two_spawned_workers_give_the_serial_numbers(serial):
    executor = executors.LocalProcesses(2)
    try:
        seen = []
        result = runner.run_suite(quick=True, cases=SUBSET, toys=2, executor=executor, progress=seen.append)
    finally:
        executor.close()
    assert result.executor == {"kind": "processes", "workers": 2, "start_method": "spawn"}
    # progress saw every task once, in completion order
    assert sorted(t.label for t in seen) == sorted(SERIAL_LABELS) and len(SERIAL_LABELS) == len(
        set(SERIAL_LABELS)
    )
    _assert_same(result, serial)


@pytest.mark.subprocess
def test_dask_local_cluster_gives_the_serial_numbers(serial):
    try:
        from dask.distributed import LocalCluster
    except ImportError as exc:  # the dask extra is part of CI's install: a missing one is a failure
        pytest.fail(f"dask.distributed is required for this test (pip install -e '.[dask]'): {exc}")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        executor = executors.make_executor(scheduler=cluster.scheduler_address)
        try:
            result = runner.run_suite(quick=True, cases=SUBSET, toys=2, executor=executor)
        finally:
            executor.close()
    assert result.executor["kind"] == "dask" and result.executor["workers"] == 1
    assert result.executor["scheduler"] == cluster.scheduler_address
    _assert_same(result, serial)


def test_executor_arguments_are_validated():
    with pytest.raises(ValueError, match="either --workers .* or --scheduler"):
        executors.make_executor(workers=2, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="workers must be a positive int; got 0"):
        executors.make_executor(workers=0)
    with pytest.raises(ValueError, match="workers must be a positive int; got True"):
        executors.LocalProcesses(True)


def test_dask_executor_without_dask_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # an import of it now raises ImportError
    with pytest.raises(ImportError, match=r"pip install zgrad\[dask\]"):
        executors.make_executor(scheduler="tcp://127.0.0.1:8786")


def test_in_process_executor_keeps_task_order():
    class Echo:
        def __init__(self, k):
            self.k = k
            self.label = f"echo {k}"

        def run(self):
            return self.k * self.k

    seen = []
    assert executors.InProcess().map([Echo(k) for k in range(5)], seen.append) == [0, 1, 4, 9, 16]
    assert [t.label for t in seen] == [f"echo {k}" for k in range(5)]
    assert np.all(np.diff([t.k for t in seen]) == 1)
