"""Scoping of the policy: process default, ``with`` blocks, nesting, exceptions, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import threading

import pytest
import tensorflow as tf

import zgrad
from zgrad import _policy
from zgrad.errors import PolicyInTraceError

DEFAULT = {"autograd": True, "graph": "auto"}
TIMEOUT = 30  # seconds a barrier or event may wait before the test fails instead of hanging


def _in_new_thread(func):
    """Run ``func`` in a new thread and return its result (re-raising its exception)."""
    result = {}

    def target():
        try:
            result["value"] = func()
        except BaseException as error:  # handed to the main thread
            result["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    if "error" in result:
        raise result["error"]
    return result["value"]


def _run_threads(*targets):
    """Run each target in its own thread; return their results in order, re-raising the first error."""
    results = [None] * len(targets)
    errors = []

    def wrap(i, func):
        def target():
            try:
                results[i] = func()
            except BaseException as error:
                errors.append(error)

        return target

    threads = [threading.Thread(target=wrap(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive()
    if errors:
        raise errors[0]
    return results


# --- one thread ---------------------------------------------------------------------------------


def test_plain_set_mode_changes_the_process_default():
    change = zgrad.run.set_mode(graph=False, autograd="numerical")
    assert zgrad.run.mode == {"autograd": "numerical", "graph": False}
    assert _policy.process_default().as_dict() == {"autograd": "numerical", "graph": False}
    assert change.mode.as_dict() == zgrad.run.mode
    del change  # a plain call persists; dropping the handle changes nothing
    assert zgrad.run.mode == {"autograd": "numerical", "graph": False}


def test_with_block_restores_and_keeps_the_process_default_untouched():
    with zgrad.run.set_mode(graph=False):
        assert zgrad.run.mode == {"autograd": True, "graph": False}
        assert _policy.process_default().as_dict() == DEFAULT  # the change moved into the override
    assert zgrad.run.mode == DEFAULT
    assert _policy.process_default().as_dict() == DEFAULT


def test_with_block_restores_a_non_default_process_default():
    zgrad.run.set_mode(graph={"loss": False}, autograd="minuit")
    with zgrad.run.set_mode(autograd=True):
        assert zgrad.run.mode == {"autograd": True, "graph": {"loss": False}}
    assert zgrad.run.mode == {"autograd": "minuit", "graph": {"loss": False}}


def test_plain_set_mode_inside_a_block_changes_the_block_only():
    with zgrad.run.set_mode(graph=True):
        zgrad.run.set_mode(autograd=False)
        assert zgrad.run.mode == {"autograd": False, "graph": True}
        zgrad.run.set_mode(graph={"model": True})
        assert zgrad.run.mode == {"autograd": False, "graph": {"model": True}}
        assert _policy.process_default().as_dict() == DEFAULT
        # a new thread meanwhile sees the process default
        assert _in_new_thread(lambda: zgrad.run.mode) == DEFAULT
    assert zgrad.run.mode == DEFAULT
    assert _policy.process_default().as_dict() == DEFAULT


def test_nested_blocks_restore_exactly_dicts_included():
    outer_dict = {"loss": False, "model": True}
    with zgrad.run.set_mode(graph=outer_dict, autograd="numerical"):
        outer = zgrad.run.mode
        with zgrad.run.set_mode(graph={"sample": False}):
            middle = zgrad.run.mode
            assert middle == {"autograd": "numerical", "graph": {"sample": False}}
            with zgrad.run.set_mode(graph=True, autograd="minuit"):
                assert zgrad.run.mode == {"autograd": "minuit", "graph": True}
                zgrad.run.set_mode(graph={"x": True})
                assert zgrad.run.current_policy_graph() == {"x": True}
            assert zgrad.run.mode == middle
            zgrad.run.set_mode(graph={"y": False})  # a plain change inside the middle block
            assert zgrad.run.current_policy_graph() == {"y": False}
        assert zgrad.run.mode == outer == {"autograd": "numerical", "graph": {"loss": False, "model": True}}
        assert zgrad.run.current_policy_graph() is not outer_dict
    assert zgrad.run.mode == DEFAULT


def test_exception_inside_a_block_restores():
    with pytest.raises(KeyError):
        with zgrad.run.set_mode(graph={"loss": False}):
            with zgrad.run.set_mode(autograd="numerical"):
                zgrad.run.set_mode(graph=True)
                raise KeyError("boom")
    assert zgrad.run.mode == DEFAULT
    assert _policy.process_default().as_dict() == DEFAULT


def test_exception_in_inner_block_restores_the_outer_block():
    with zgrad.run.set_mode(graph=False):
        with pytest.raises(ZeroDivisionError):
            with zgrad.run.set_mode(graph=True, autograd=False):
                _ = 1 / 0
        assert zgrad.run.mode == {"autograd": True, "graph": False}
    assert zgrad.run.mode == DEFAULT


def test_a_mode_change_can_be_entered_only_once():
    change = zgrad.run.set_mode(graph=False)
    with change:
        assert zgrad.run.current_policy_graph() is False
    assert zgrad.run.mode == DEFAULT
    with pytest.raises(RuntimeError, match="only once"):
        with change:
            pass  # pragma: no cover
    assert zgrad.run.mode == DEFAULT
    # entering it again while it is active also raises, and the block stays in force
    with zgrad.run.set_mode(autograd=False) as active:
        with pytest.raises(RuntimeError, match="only once"):
            active.__enter__()
        assert zgrad.run.mode == {"autograd": False, "graph": "auto"}
    assert zgrad.run.mode == DEFAULT


def test_entering_a_change_later_scopes_it_from_then_on():
    change = zgrad.run.set_mode(autograd="numerical")
    assert _policy.process_default().as_dict() == {"autograd": "numerical", "graph": "auto"}
    with change:
        assert zgrad.run.mode == {"autograd": "numerical", "graph": "auto"}
        assert _policy.process_default().as_dict() == DEFAULT
    assert zgrad.run.mode == DEFAULT


def test_two_pending_changes_entered_one_after_the_other_leave_no_trace():
    # Both changes hit the process default before either is entered; scoping both must still
    # give back the original default, whichever order they are entered in.
    first = zgrad.run.set_mode(graph=False)
    second = zgrad.run.set_mode(autograd="numerical")
    with first:
        assert zgrad.run.mode == {"autograd": True, "graph": False}
    with second:
        assert zgrad.run.mode == {"autograd": "numerical", "graph": False}
    assert zgrad.run.mode == DEFAULT
    assert _policy.process_default().as_dict() == DEFAULT


def test_two_pending_changes_inside_a_block_leave_the_block_unchanged():
    with zgrad.run.set_mode(graph={"loss": False}):
        first = zgrad.run.set_mode(graph=False)
        second = zgrad.run.set_mode(autograd="numerical")
        with first:
            assert zgrad.run.mode == {"autograd": True, "graph": False}
        with second:
            assert zgrad.run.mode == {"autograd": "numerical", "graph": False}
        assert zgrad.run.mode == {"autograd": True, "graph": {"loss": False}}
    assert zgrad.run.mode == DEFAULT


def test_pending_changes_inside_a_block_entered_in_reverse_order():
    with zgrad.run.set_mode(graph={"loss": False}):
        first = zgrad.run.set_mode(graph=False)
        second = zgrad.run.set_mode(autograd="numerical")
        with second:
            assert zgrad.run.mode == {"autograd": "numerical", "graph": False}
        assert zgrad.run.mode == {"autograd": True, "graph": False}  # first is still a plain change
        with first:
            assert zgrad.run.mode == {"autograd": True, "graph": False}
        assert zgrad.run.mode == {"autograd": True, "graph": {"loss": False}}
    assert zgrad.run.mode == DEFAULT


def test_a_plain_change_made_after_a_pending_one_persists():
    pending = zgrad.run.set_mode(graph=False)
    zgrad.run.set_mode(autograd="minuit")  # plain and never entered: persists
    with pending:
        assert zgrad.run.mode == {"autograd": True, "graph": False}
    assert zgrad.run.mode == {"autograd": "minuit", "graph": False}


def test_entering_a_change_inside_a_trace_raises_and_leaves_it_enterable():
    change = zgrad.run.set_mode(graph=False)

    @tf.function(autograph=False)
    def traced(x):
        with change:
            return x  # pragma: no cover

    with pytest.raises(PolicyInTraceError, match="Entering a `with zgrad.run.set_mode"):
        traced(tf.constant(1.0))
    assert zgrad.run.mode == {"autograd": True, "graph": False}  # still the plain change
    with change:
        assert zgrad.run.mode == {"autograd": True, "graph": False}
    assert zgrad.run.mode == DEFAULT


def test_leaving_a_block_inside_a_trace_raises_but_still_restores():
    change = zgrad.run.set_mode(autograd="numerical")
    change.__enter__()

    @tf.function(autograph=False)
    def traced(x):
        change.__exit__(None, None, None)
        return x  # pragma: no cover

    with pytest.raises(PolicyInTraceError, match="Leaving a `with zgrad.run.set_mode"):
        traced(tf.constant(1.0))
    assert zgrad.run.mode == DEFAULT
    assert _policy._override.get() is None


# --- threads ------------------------------------------------------------------------------------


def test_scoped_modes_in_concurrent_threads_do_not_leak():
    both_inside = threading.Barrier(3, timeout=TIMEOUT)
    main_checked = threading.Barrier(3, timeout=TIMEOUT)

    def worker(graph, autograd):
        def run():
            seen = []
            with zgrad.run.set_mode(graph=graph, autograd=autograd):
                both_inside.wait()  # the other thread is inside its own block now
                seen.append(zgrad.run.mode)
                main_checked.wait()
                seen.append(zgrad.run.mode)
            seen.append(zgrad.run.mode)
            return seen

        return run

    def main_view():
        both_inside.wait()
        view = (zgrad.run.mode, _policy.process_default().as_dict())
        main_checked.wait()
        return view

    a, b, main = _run_threads(worker(False, "numerical"), worker({"loss": False}, "minuit"), main_view)
    assert a == [{"autograd": "numerical", "graph": False}] * 2 + [DEFAULT]
    assert b == [{"autograd": "minuit", "graph": {"loss": False}}] * 2 + [DEFAULT]
    assert main == (DEFAULT, DEFAULT)
    assert zgrad.run.mode == DEFAULT


def test_threads_changing_their_blocks_in_lockstep_see_only_their_own():
    steps = 4
    barrier = threading.Barrier(2, timeout=TIMEOUT)

    def worker(name):
        def run():
            seen = []
            with zgrad.run.set_mode(graph=name == "a"):
                for step in range(steps):
                    zgrad.run.set_mode(graph={f"{name}{step}": True})
                    barrier.wait()  # the other thread made its change at this step too
                    seen.append(zgrad.run.current_policy_graph())
                    barrier.wait()
            return seen

        return run

    a, b = _run_threads(worker("a"), worker("b"))
    assert a == [{f"a{step}": True} for step in range(steps)]
    assert b == [{f"b{step}": True} for step in range(steps)]
    assert zgrad.run.mode == DEFAULT


def test_pending_changes_from_two_threads_leave_the_process_default_unchanged():
    # The two set_mode calls both hit the process default before either thread enters its
    # block; after both blocks neither thread's scoped change may remain in the default.
    a_called, b_called, a_done = threading.Event(), threading.Event(), threading.Event()

    def thread_a():
        change = zgrad.run.set_mode(graph=False)
        a_called.set()
        assert b_called.wait(TIMEOUT)
        with change:
            inside = zgrad.run.mode
        a_done.set()
        return inside

    def thread_b():
        assert a_called.wait(TIMEOUT)
        change = zgrad.run.set_mode(autograd="numerical")
        b_called.set()
        assert a_done.wait(TIMEOUT)
        with change:
            inside = zgrad.run.mode
        return inside

    a, b = _run_threads(thread_a, thread_b)
    assert a == {"autograd": True, "graph": False}
    assert b["autograd"] == "numerical"
    assert _policy.process_default().as_dict() == DEFAULT
    assert zgrad.run.mode == DEFAULT


def test_pending_changes_from_two_threads_entered_in_reverse_order():
    a_called, b_called, b_done = threading.Event(), threading.Event(), threading.Event()

    def thread_a():
        change = zgrad.run.set_mode(graph=False)
        a_called.set()
        assert b_done.wait(TIMEOUT)
        with change:
            return zgrad.run.mode

    def thread_b():
        assert a_called.wait(TIMEOUT)
        change = zgrad.run.set_mode(autograd="numerical")
        b_called.set()
        with change:
            inside = zgrad.run.mode
        b_done.set()
        return inside

    a, b = _run_threads(thread_a, thread_b)
    assert a == {"autograd": True, "graph": False}
    assert b == {"autograd": "numerical", "graph": False}
    assert _policy.process_default().as_dict() == DEFAULT


def test_new_threads_start_from_the_process_default_not_the_block():
    with zgrad.run.set_mode(graph=False, autograd="minuit"):
        assert _in_new_thread(lambda: zgrad.run.mode) == DEFAULT
        assert _in_new_thread(zgrad.run.current_policy_autograd) is True
    zgrad.run.set_mode(graph=True)
    with zgrad.run.set_mode(graph=False):
        assert _in_new_thread(lambda: zgrad.run.mode) == {"autograd": True, "graph": True}


def test_plain_set_mode_in_the_main_thread_is_seen_by_new_threads():
    zgrad.run.set_mode(graph={"loss": False}, autograd="numerical")
    expected = {"autograd": "numerical", "graph": {"loss": False}}
    assert _in_new_thread(lambda: zgrad.run.mode) == expected
    assert _in_new_thread(zgrad.run.current_policy_autograd) is False


def test_plain_set_mode_in_a_thread_changes_the_process_default():
    _in_new_thread(lambda: zgrad.run.set_mode(graph=False))
    assert zgrad.run.mode == {"autograd": True, "graph": False}


def test_a_thread_running_while_the_main_thread_changes_the_default_sees_the_change():
    started, changed = threading.Event(), threading.Event()

    def worker():
        before = zgrad.run.mode
        started.set()
        assert changed.wait(TIMEOUT)
        return before, zgrad.run.mode

    results = {}

    def run_worker():
        results["value"] = worker()

    thread = threading.Thread(target=run_worker)
    thread.start()
    assert started.wait(TIMEOUT)
    zgrad.run.set_mode(autograd="minuit")
    changed.set()
    thread.join(TIMEOUT)
    assert results["value"] == (DEFAULT, {"autograd": "minuit", "graph": "auto"})


def test_between_the_call_and_the_block_other_threads_see_the_change():
    change = zgrad.run.set_mode(graph=False)
    assert _in_new_thread(lambda: zgrad.run.mode) == {"autograd": True, "graph": False}
    with change:
        assert _in_new_thread(lambda: zgrad.run.mode) == DEFAULT
    assert _in_new_thread(lambda: zgrad.run.mode) == DEFAULT


# --- asyncio tasks ------------------------------------------------------------------------------


def test_asyncio_tasks_with_scoped_modes_do_not_see_each_other():
    async def main():
        a_inside, b_inside, a_checked = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def task_a():
            seen = []
            with zgrad.run.set_mode(graph=False):
                a_inside.set()
                await b_inside.wait()  # task b is inside its block now
                seen.append(zgrad.run.mode)
                zgrad.run.set_mode(autograd="numerical")
                a_checked.set()
                await asyncio.sleep(0)
                seen.append(zgrad.run.mode)
            seen.append(zgrad.run.mode)
            return seen

        async def task_b():
            seen = []
            await a_inside.wait()
            with zgrad.run.set_mode(graph={"loss": False}, autograd="minuit"):
                b_inside.set()
                await a_checked.wait()  # task a changed its block meanwhile
                seen.append(zgrad.run.mode)
            seen.append(zgrad.run.mode)
            return seen

        a, b = await asyncio.wait_for(asyncio.gather(task_a(), task_b()), TIMEOUT)
        return a, b, zgrad.run.mode

    a, b, after = asyncio.run(main())
    assert a == [
        {"autograd": True, "graph": False},
        {"autograd": "numerical", "graph": False},
        DEFAULT,
    ]
    assert b == [{"autograd": "minuit", "graph": {"loss": False}}, DEFAULT]
    assert after == DEFAULT
    assert zgrad.run.mode == DEFAULT
