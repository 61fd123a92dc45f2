"""Fresh-process checks: what ``import zgrad`` loads and starts, and when thread pools may be sized.

Each test runs its code in a new Python process, since TensorFlow's runtime can start
only once per process and the test process has long started it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.subprocess

HEAVY = ("tensorflow", "numdifftools", "iminuit")


def _run_fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_import_zgrad_loads_no_heavy_module_and_reports_its_time():
    result = _run_fresh(
        """
        import json, sys, time
        start = time.perf_counter()
        import zgrad
        seconds = time.perf_counter() - start
        loaded = {name: name in sys.modules for name in ("tensorflow", "numdifftools", "iminuit")}
        mode = zgrad.run.mode
        cpus = zgrad.run.n_cpu
        still = "tensorflow" in sys.modules
        print(json.dumps({"loaded": loaded, "seconds": seconds, "mode": mode, "still": still}))
        """
    )
    # Reported for the record only: timings are not asserted in unit tests.
    print(f"import zgrad took {result['seconds']:.3f} s in a fresh process")
    assert result["loaded"] == {name: False for name in HEAVY}
    assert result["mode"] == {"autograd": True, "graph": "auto"}
    assert result["still"] is False  # reading the mode and n_cpu imports nothing heavy either


def test_from_zgrad_import_z_loads_no_tensorflow():
    result = _run_fresh(
        """
        import json, sys
        from zgrad import z
        import zgrad.errors
        loaded = {name: name in sys.modules for name in ("tensorflow", "numdifftools", "iminuit")}
        print(json.dumps({"loaded": loaded}))
        """
    )
    assert result["loaded"] == {name: False for name in HEAVY}


def test_using_zgrad_does_not_start_the_runtime_until_a_computation():
    result = _run_fresh(
        """
        import json
        import zgrad
        from zgrad import _threads, z
        states = {"import zgrad": _threads.runtime_started()}
        import tensorflow as tf
        states["import tensorflow"] = _threads.runtime_started()
        z.function  # imports the graph layer
        states["z.function"] = _threads.runtime_started()
        tf.constant(1.0) + 1
        states["computation"] = _threads.runtime_started()
        print(json.dumps(states))
        """
    )
    assert result == {
        "import zgrad": False,
        "import tensorflow": False,
        "z.function": False,
        "computation": True,
    }


def test_set_cpus_explicit_right_after_import():
    result = _run_fresh(
        """
        import json, sys
        import zgrad
        before = zgrad.run.thread_settings
        zgrad.run.set_cpus_explicit(2, 1)
        import tensorflow as tf
        threads = [tf.config.threading.get_intra_op_parallelism_threads(),
                   tf.config.threading.get_inter_op_parallelism_threads()]
        x = float(tf.constant(1.0) + 1)
        after_run = tf.config.threading.get_intra_op_parallelism_threads()
        print(json.dumps({"before": before, "after": zgrad.run.thread_settings, "threads": threads,
                          "x": x, "threads_after_run": after_run}))
        """
    )
    assert result["before"] == {"intra": None, "inter": None}
    assert result["after"] == {"intra": 2, "inter": 1}
    assert result["threads"] == [2, 1]
    assert result["x"] == 2.0
    assert result["threads_after_run"] == 2


def test_set_cpus_explicit_after_the_first_computation_raises_and_keeps_the_settings():
    result = _run_fresh(
        """
        import json
        import zgrad
        zgrad.run.set_cpus_explicit(2, 1)
        import tensorflow as tf
        tf.constant(1.0) + 1
        errors = []
        for intra, inter in [(3, 1), (2, 1)]:  # the same values are refused as well
            try:
                zgrad.run.set_cpus_explicit(intra, inter)
            except RuntimeError as error:
                errors.append(str(error))
        print(json.dumps({"errors": errors, "settings": zgrad.run.thread_settings,
                          "intra": tf.config.threading.get_intra_op_parallelism_threads()}))
        """
    )
    assert len(result["errors"]) == 2
    for message in result["errors"]:
        assert "thread settings must come before the first computation" in message
    assert result["settings"] == {"intra": 2, "inter": 1}
    assert result["intra"] == 2


def test_set_cpus_explicit_after_a_computation_without_earlier_settings():
    result = _run_fresh(
        """
        import json
        import tensorflow as tf
        import zgrad
        tf.constant(1.0) + 1
        try:
            zgrad.run.set_cpus_explicit(3, 1)
            message = None
        except RuntimeError as error:
            message = str(error)
        print(json.dumps({"message": message, "settings": zgrad.run.thread_settings}))
        """
    )
    assert "thread settings must come before the first computation" in result["message"]
    assert result["settings"] == {"intra": None, "inter": None}


def test_bad_thread_counts_raise_value_error_before_and_after_the_runtime_started():
    result = _run_fresh(
        """
        import json, sys
        import zgrad
        bad = [(0, 1), (1, -1), (1.5, 1), (True, 1), (1, False), ("2", 1), (None, 1), (2, 0)]

        def attempt():
            out = []
            for intra, inter in bad:
                try:
                    zgrad.run.set_cpus_explicit(intra, inter)
                    out.append(None)
                except Exception as error:
                    out.append([type(error).__name__, str(error)])
            return out

        before = attempt()
        tf_loaded_by_bad_calls = "tensorflow" in sys.modules
        import tensorflow as tf
        tf.constant(1.0) + 1
        after = attempt()
        print(json.dumps({"before": before, "after": after, "tf": tf_loaded_by_bad_calls,
                          "settings": zgrad.run.thread_settings}))
        """
    )
    for phase in ("before", "after"):
        for kind, message in result[phase]:
            assert kind == "ValueError"
            assert "must be a positive int; got" in message
    assert result["tf"] is False  # validation happens before TensorFlow is touched
    assert result["settings"] == {"intra": None, "inter": None}
