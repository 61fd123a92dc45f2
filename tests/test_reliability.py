"""Failure modes (issue 17): no success claimed after a failure, clear errors instead of crashes.

Each test reproduces one reported failure: reports written atomically and last, output paths
checked before the work, a malformed Dask address refused at once, a float32 Parameter at a
rounded limit, errors naming what was given and what is allowed, and the loose ends (a NaN
part-way through a fit, fractions outside [0, 1], all-zero weights, a string errordef, a
factory calling sys.exit, `with set_mode` blocks left out of order).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad import _files
from zgrad.cli import main as zgrad_main

P = zgrad.Parameter

FACTORIES = textwrap.dedent(
    """
    import sys
    import zgrad

    def good():
        x = zgrad.Parameter("x", 0.5)
        return zgrad.losses.SimpleLoss(lambda: (x - 1.0) ** 2, [x], errordef=1.0)

    def exits():
        sys.exit(0)

    def raises():
        raise RuntimeError("factory failed on purpose")
    """
)


@pytest.fixture
def factories(tmp_path, monkeypatch):
    name = f"zgrad_reliability_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def _stale(folder: Path) -> None:
    """An earlier run's report that claims success."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text('{"ok": true}')
    (folder / "index.html").write_text("PASSED")


# --- items 1-2: atomic reports, output paths checked first ---------------------------------------


def test_write_files_renames_nothing_when_one_file_cannot_be_placed(tmp_path):
    (tmp_path / "report.json").write_text("old")
    (tmp_path / "index.html").mkdir()  # the rename of index.html fails
    with pytest.raises(OSError):
        _files.write_files(tmp_path, {"index.html": "<p>", "report.json": '{"ok": true}'})
    assert (tmp_path / "report.json").read_text() == "old"  # report.json goes last: never replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "report.json"]  # no temporaries


def test_an_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    calls = []
    original = _files._write_temporary

    def interrupted(folder, name, content):
        calls.append(name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(folder, name, content)

    monkeypatch.setattr(_files, "_write_temporary", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _files.write_files(tmp_path, {"index.html": "<p>", "report.json": "{}"})
    assert calls == ["index.html", "report.json"] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d.write_text("x"), "is an existing file; give a folder"),
        (lambda d: (d.parent / "f").write_text("x"), "is a file"),
        (lambda d: (d.mkdir(), (d / "index.html").mkdir()), "a folder of that name is in the way"),
    ],
    ids=["existing-file", "below-a-file", "report-name-taken"],
)
def test_bad_output_paths_are_refused_before_any_work(tmp_path, make, message):
    target = tmp_path / "out"
    make(target)
    if message == "is a file":
        target = tmp_path / "f" / "out"
    with pytest.raises(_files.OutputPathError, match=message) as info:
        _files.prepare_folder(target, ["index.html", "report.json"])
    assert str(target) in str(info.value)  # the path is named


def _unwritable(tmp_path):
    """A folder nothing can be written into: /proc even for root (Linux), else a read-only folder."""
    if os.path.isdir("/proc/self"):
        return Path("/proc"), lambda: None
    tmp_path.chmod(0o500)
    return tmp_path, lambda: tmp_path.chmod(0o700)


def test_a_read_only_output_folder_is_refused(tmp_path):
    folder, restore = _unwritable(tmp_path)
    try:
        with pytest.raises(_files.OutputPathError, match="cannot write into the output folder"):
            _files.prepare_folder(folder / "zgrad-out")
    finally:
        restore()
    assert not (folder / "zgrad-out").exists()


def test_crosscheck_cli_refuses_a_bad_output_before_calling_the_factory(factories, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert zgrad_main(["crosscheck", f"{factories}:exits", "-o", str(afile)]) == 2  # exits is never called
    assert f"the output folder {str(afile)!r} is an existing file" in capsys.readouterr().err
    folder = tmp_path / "taken"
    _stale(folder)
    (folder / "index.html").unlink()
    (folder / "index.html").mkdir()
    assert zgrad_main(["crosscheck", f"{factories}:good", "-o", str(folder)]) == 2
    assert "a folder of that name is in the way" in capsys.readouterr().err


def test_crosscheck_cli_failure_or_interruption_leaves_no_report_claiming_success(
    factories, tmp_path, monkeypatch
):
    out = tmp_path / "r"
    _stale(out)
    assert zgrad_main(["crosscheck", f"{factories}:raises", "-o", str(out)]) == 2
    assert list(out.iterdir()) == []
    _stale(out)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("zgrad.checks.crosscheck", interrupted)
    with pytest.raises(KeyboardInterrupt):
        zgrad_main(["crosscheck", f"{factories}:good", "-o", str(out)])
    assert list(out.iterdir()) == []


def test_crosscheck_cli_writes_report_json_last_and_completed(factories, tmp_path):
    out = tmp_path / "r"
    _stale(out)
    assert zgrad_main(["crosscheck", f"{factories}:good", "-o", str(out), "--no-html"]) == 0
    assert json.loads((out / "report.json").read_text())["ok"] is True
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]  # the stale index.html is gone


def test_validation_cli_refuses_bad_output_paths_at_once(tmp_path, capsys):
    from validation.__main__ import main

    afile = tmp_path / "afile"
    afile.write_text("x")
    start = time.perf_counter()
    assert main(["--quick", "--cases", "exp_large", "--no-fits", "--output", str(afile)]) == 2
    folder = tmp_path / "d"
    (folder / "index.html").mkdir(parents=True)
    assert main(["--quick", "--cases", "exp_large", "--no-fits", "--output", str(folder)]) == 2
    assert time.perf_counter() - start < 5.0  # before any work
    err = capsys.readouterr().err
    assert f"{str(afile)!r} is an existing file" in err and "a folder of that name is in the way" in err


def test_validation_cli_failure_part_way_removes_the_stale_report(tmp_path, monkeypatch):
    from validation import runner
    from validation.__main__ import main

    _stale(tmp_path)

    def failing(**kwargs):
        raise RuntimeError("failed part-way")

    monkeypatch.setattr(runner, "run_suite", failing)
    with pytest.raises(RuntimeError, match="failed part-way"):
        main(["--quick", "--cases", "exp_large", "--no-fits", "--output", str(tmp_path)])
    assert list(tmp_path.iterdir()) == []


# --- item 3: a malformed Dask address --------------------------------------------------------


def test_a_malformed_scheduler_address_is_refused_before_a_client_exists():
    pytest.importorskip("distributed")
    from zgrad.toystudy._execute import connect_dask

    with pytest.raises(ValueError, match=r"--scheduler 'no such thing!!' is not a Dask scheduler address"):
        connect_dask("no such thing!!", "--scheduler", "hint")
    obs = zgrad.Space("x", limits=(-3.0, 3.0))
    model = zgrad.models.Gauss(obs, P("mu", 0.0), P("sigma", 1.0))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"scheduler= 'tcp://nohost' is not a Dask scheduler address"):
        zgrad.toys(model, 2, n_events=50, scheduler="tcp://nohost", progress=False)
    assert time.perf_counter() - start < 5.0


@pytest.mark.subprocess
def test_python_m_validation_with_a_malformed_scheduler_exits_2_promptly(tmp_path):
    pytest.importorskip("distributed")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "validation", "--quick", "--cases", "exp_large", "--no-fits"]
        + ["--scheduler", "no such thing!!", "--output", str(tmp_path / "out")],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "is not a Dask scheduler address" in proc.stderr
    assert "Exception ignored" not in proc.stderr and "TimeoutError" not in proc.stderr
    assert time.perf_counter() - start < 40.0  # the hang was 60 s on top of the start-up
    assert not (tmp_path / "out").exists()


# --- item 6: float32 Parameter at a rounded limit -----------------------------------------------


def test_a_float32_parameter_at_a_rounded_limit_is_within_its_own_limits():
    p = P("p", 0.1, lower=0, upper=0.1, dtype=tf.float32)
    assert float(p.numpy()) == float(np.float32(0.1)) > 0.1
    assert p.upper == float(np.float32(0.1)) and p.lower <= float(p.numpy()) <= p.upper
    with p.set_value(0.1):  # the given limit itself is accepted again
        pass
    grad = zgrad.gradient(lambda: p**2, [p], strategy="numerical")  # one-sided at the limit
    assert grad[0] == pytest.approx(2 * float(np.float32(0.1)), rel=1e-4)
    outside = r"value 0\.1000009\d* is outside its limits \[0\.0, 0\.1000000014\d*\]"
    with pytest.raises(ValueError, match=outside):
        p.set_value(0.100001)
    with pytest.raises(ValueError, match="limits must satisfy lower < upper \\(in float32\\)"):
        P("q", 0.1, lower=0.1, upper=0.1 + 1e-12, dtype=tf.float32)


# --- item 7: errors that say what was given and what is allowed ---------------------------------


@pytest.mark.parametrize("strategy", ["autodiff", "numerical"])
@pytest.mark.parametrize(
    ("output", "error", "message"),
    [
        (lambda x: None, TypeError, r"returned None \(NoneType\); it must return a real scalar"),
        (lambda x: "a", TypeError, r"returned 'a' \(str\); it must return a real scalar"),
        (lambda x: x * np.ones(3), ValueError, r"returned a value of shape \(3,\); it must return a real"),
    ],
    ids=["none", "string", "vector"],
)
def test_a_function_returning_no_real_scalar_is_named(strategy, output, error, message):
    x = P("x", 1.0)
    with pytest.raises(error, match=message):
        zgrad.derivatives(lambda: output(x), [x], strategy=strategy)
    with pytest.raises(error, match=message):
        zgrad.losses.SimpleLoss(lambda: output(x), [x], errordef=1.0).value()
    assert float(x.numpy()) == 1.0


def test_a_constant_python_float_has_no_automatic_gradient():
    x = P("x", 1.0)
    with pytest.raises(zgrad.errors.GradientError, match=r"returned 2\.0 \(float\), a constant.*\['x'\]"):
        zgrad.gradient(lambda: 2.0, [x])
    assert zgrad.gradient(lambda: 2.0, [x], strategy="numerical").tolist() == [0.0]


@pytest.mark.parametrize("seed", ["a", -1, 1.5])
def test_sample_names_a_bad_seed(seed):
    obs = zgrad.Space("x", limits=(-3.0, 3.0))
    model = zgrad.models.Gauss(obs, P("mu", 0.0), P("sigma", 1.0))
    with pytest.raises((TypeError, ValueError), match=rf"seed must be .*; got {seed!r}"):
        model.sample(10, seed=seed)


@pytest.mark.parametrize("minimizer", [zgrad.minimize.Minuit, zgrad.minimize.Scipy])
def test_minimize_refuses_parameter_names_in_params(minimizer):
    x = P("x", 0.5)
    loss = zgrad.losses.SimpleLoss(lambda: (x - 1.0) ** 2, [x], errordef=1.0)
    with pytest.raises(TypeError, match=r"params must hold Parameters \(tf.Variable\); got 'x' \(str\)"):
        minimizer().minimize(loss, params=["x"])
    assert float(x.numpy()) == 0.5


def test_a_complex_parameter_value_is_refused():
    with pytest.raises(
        TypeError, match=r"value must be a real scalar \(int or float\); got \(1\+1j\) \(complex\)"
    ):
        P("p", 1 + 1j)
    p = P("p", 1.0)
    with pytest.raises(TypeError, match="got 2j"):
        p.set_value(2j)
    assert float(p.numpy()) == 1.0


# --- item 8: loose ends -------------------------------------------------------------------------


@pytest.mark.parametrize("minimizer", [zgrad.minimize.Minuit, zgrad.minimize.Scipy])
def test_a_fit_whose_loss_turns_nan_part_way_says_so_and_where(minimizer):
    x = P("x", 0.0)
    # the minimum of (x - 3)^2 lies where sqrt(1 - x) is NaN
    loss = zgrad.losses.SimpleLoss(lambda: (x - 3.0) ** 2 + tf.sqrt(1.0 - x), [x], errordef=1.0)
    result = minimizer().minimize(loss)
    assert not result.valid
    assert result.message.startswith("the loss was not finite (NaN or inf) at x=")
    where = float(result.message.split("at x=")[1].split(",")[0])
    assert where > 1.0  # inside the region where sqrt(1 - x) is NaN


def test_sum_fractions_outside_0_1_are_allowed_and_a_negative_density_makes_the_fit_invalid():
    # decided: a difference of components is a valid model while the sum stays positive (sampling
    # supports it); where the density is negative the NLL is NaN and a fit says so
    obs = zgrad.Space("x", limits=(-6.0, 6.0))
    mu, f = P("mu", 0.0), P("f", 1.5)
    narrow, wide = zgrad.models.Gauss(obs, mu, P("sn", 1.0)), zgrad.models.Gauss(obs, mu, P("sw", 3.0))
    model = zgrad.models.Sum([narrow, wide], fracs=[f])
    density = zgrad.run(model.pdf(np.array([5.0])))[0]
    assert density < 0.0
    loss = zgrad.losses.UnbinnedNLL(model, np.array([0.0, 5.0]))
    assert math.isnan(loss.value())
    mu.floating = False
    result = zgrad.minimize.Minuit().minimize(loss)
    assert not result.valid and "not finite" in result.message


def test_all_zero_weights_are_refused():
    obs = zgrad.Space("x", limits=(-3.0, 3.0))
    model = zgrad.models.Gauss(obs, P("mu", 0.0), P("sigma", 1.0))
    data = np.array([-1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"weights are all zero \(3 entries\)"):
        zgrad.losses.UnbinnedNLL(model, data, weights=np.zeros(3))
    loss = zgrad.losses.UnbinnedNLL(model, data, weights=np.array([0.0, -1.0, 0.0]))  # one is enough
    pdf_at_0 = 1.0 / math.sqrt(2 * math.pi) / math.erf(3.0 / math.sqrt(2.0))  # truncated to [-3, 3]
    assert loss.value() == pytest.approx(math.log(pdf_at_0), rel=1e-12)  # -(-1) * log pdf(0)


@pytest.mark.parametrize("errordef", ["1", None, b"1"])
def test_simple_loss_refuses_an_errordef_that_is_no_number(errordef):
    x = P("x", 0.5)
    with pytest.raises(TypeError, match=rf"errordef must be a positive real number .*got {errordef!r}"):
        zgrad.losses.SimpleLoss(lambda: x**2, [x], errordef=errordef)


def test_a_factory_calling_sys_exit_is_an_error_without_report(factories, tmp_path, capsys):
    out = tmp_path / "r"
    assert zgrad_main(["crosscheck", f"{factories}:exits", "-o", str(out)]) == 2
    assert "called sys.exit(0); a factory must return a loss" in capsys.readouterr().err
    assert not out.exists()


def test_set_mode_blocks_left_out_of_order_restore_the_mode():
    def hold(graph):
        with zgrad.run.set_mode(graph=graph):
            yield

    before = zgrad.run.mode
    first, second = hold(False), hold(True)
    next(first)
    next(second)
    assert zgrad.run.mode["graph"] is True
    first.close()  # left before the block opened after it: that one stays in force
    assert zgrad.run.mode["graph"] is True
    second.close()
    assert zgrad.run.mode == before
    # in order, as before
    first, second = hold(False), hold(True)
    next(first)
    next(second)
    second.close()
    assert zgrad.run.mode["graph"] is False
    first.close()
    assert zgrad.run.mode == before


# --- item 4: an exception in a user strategy's gradient check does not escape minimize -------------


class _RaisingStrategy:
    """A user strategy whose gradient raises: what a broken plug-in does."""

    is_autograd = False
    provides_gradient = True

    def value_gradient(self, func, params):
        raise RuntimeError("boom in the strategy")


@pytest.mark.parametrize("adapter", ["minuit", "scipy"])
def test_a_raising_user_strategy_gives_an_invalid_fit_not_an_exception(adapter):
    x = zgrad.Parameter("x", 1.0, lower=-5.0, upper=5.0)
    loss = zgrad.losses.SimpleLoss(lambda: (x - 2.0) ** 2, [x], errordef=1.0)
    zgrad.gradients.register("raising", _RaisingStrategy())
    try:
        minimizer = (
            zgrad.minimize.Minuit(gradient="raising")
            if adapter == "minuit"
            else zgrad.minimize.Scipy(gradient="raising")
        )
        result = minimizer.minimize(loss)
    finally:
        zgrad.gradients.unregister("raising")
    assert not result.valid
    message = "the check of strategy 'raising''s gradient raised RuntimeError: boom in the strategy"
    assert message in result.message
    assert result.gradient_check["ok"] is False
