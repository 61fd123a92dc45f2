"""The validation suite (``validation/``): rows per strategy, verdicts, report.json, the command line."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import zgrad
from validation import cases, report, runner
from validation.__main__ import main
from validation.spec import Tolerance
from zgrad import _registry

REPO = Path(__file__).resolve().parents[1]
# a float32 case, a case with points on parameter limits, a hard (badly scaled) case
SUBSET = ["mixed_f32", "near_limit", "scale_disparity"]
ROW_FIELDS = set(
    "case point param strategy level value reference deviation abs_deviation scale error zscore rtol "
    "error_covers covered ok status n_evals seconds message".split()
)


def _builtin_gradient_strategies():
    return [n for n in _registry.BUILTIN_STRATEGIES if zgrad.gradients.get(n).provides_gradient]


def _strict_json(text):
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def _rows_per_point(n):
    return n + n * (n + 1) // 2  # gradient components + upper triangle of the Hessian


@pytest.fixture(scope="module")
def quick_subset():
    seen = []
    result = runner.run_suite(quick=True, cases=SUBSET, progress=lambda i, n, task: seen.append((i, n, task)))
    return result, seen


def test_builtin_strategies_with_a_gradient_are_autodiff_and_numerical():
    assert _builtin_gradient_strategies() == ["autodiff", "numerical"]
    assert runner.gradient_strategies()[:2] == ["autodiff", "numerical"]


def test_quick_subset_has_rows_for_every_builtin_strategy_and_passes(quick_subset):
    result, _ = quick_subset
    assert result.failures == []
    assert result.ok
    assert result.cases == SUBSET
    for strategy in _builtin_gradient_strategies():
        for name in SUBSET:
            case = cases.CASES[name]
            rows = [r for r in result.rows if r.case == name and r.strategy == strategy]
            assert len(rows) == _rows_per_point(len(case.params)), (name, strategy)
            assert {r.point for r in rows} == {case.points[0][0]}  # quick: the first point only
            assert {r.level for r in rows} == {"gradient", "hessian"}


def test_rows_compare_with_independent_closed_forms(quick_subset):
    result, _ = quick_subset
    # scale_disparity at (1, 1): gradient (2e6, 2e-6), Hessian diag(2e6, 2e-6)
    expected = {
        ("gradient", "x"): 2e6,
        ("gradient", "y"): 2e-6,
        ("hessian", "x,x"): 2e6,
        ("hessian", "x,y"): 0.0,
        ("hessian", "y,y"): 2e-6,
    }
    for row in (r for r in result.rows if r.case == "scale_disparity"):
        assert row.reference == expected[row.level, row.param]
        if row.strategy == "autodiff":
            assert row.value == pytest.approx(row.reference, rel=1e-12, abs=0.0)
            assert row.error is None and row.n_evals == 1
        else:  # numerical: every component carries an error estimate and an evaluation count
            assert row.error is not None and row.error >= 0.0
            assert row.n_evals is not None and row.n_evals > 1


def test_numerical_rows_never_leave_the_limits(quick_subset):
    # near_limit's first point has sigma exactly on its lower limit; the case returns NaN outside
    result, _ = quick_subset
    rows = [r for r in result.rows if r.case == "near_limit" and r.strategy == "numerical"]
    assert rows and all(math.isfinite(r.value) and r.ok for r in rows)


def test_progress_callback_counts_every_task(quick_subset):
    result, seen = quick_subset
    n_tasks = len(SUBSET) * len(result.strategies) * 2
    assert [i for i, _, _ in seen] == list(range(1, n_tasks + 1))
    assert {n for _, n, _ in seen} == {n_tasks}
    assert seen[0][2].label == f"mixed_f32/{cases.CASES['mixed_f32'].points[0][0]} autodiff gradient"


def test_every_case_matches_its_closed_form_under_autodiff():
    # guards the case table itself: a wrong closed form or builder fails here first
    result = runner.run_suite(quick=True, strategies=["autodiff"])
    assert result.cases == list(cases.CASES)
    assert result.failures == []
    assert len(result.rows) == sum(_rows_per_point(len(c.params)) for c in cases.CASES.values())


def test_report_json_is_strict_and_has_the_schema_fields(quick_subset, tmp_path):
    result, _ = quick_subset
    path = report.write(result, tmp_path / "out")
    assert path == tmp_path / "out" / "report.json"
    data = _strict_json(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == report.SCHEMA_VERSION == 1
    assert data["ok"] is True
    env = data["environment"]
    for key in ("python", "zgrad", "tensorflow", "numdifftools", "numpy"):
        assert isinstance(env[key], str) and env[key], key
    assert env["zgrad"] == zgrad.__version__
    assert [c["name"] for c in data["cases"]] == SUBSET
    assert data["strategies"] == result.strategies
    assert len(data["rows"]) == len(result.rows)
    assert all(set(row) == ROW_FIELDS for row in data["rows"])
    assert {(s["case"], s["strategy"]) for s in data["summary"]} == {
        (c, s) for c in SUBSET for s in result.strategies
    }
    assert all(s["ok"] and s["failed"] == 0 for s in data["summary"])


def test_summary_table_lists_every_case_and_strategy(quick_subset):
    result, _ = quick_subset
    table = report.format_table(result)
    lines = table.splitlines()
    for name in SUBSET:
        for strategy in result.strategies:
            assert any(line.split()[:2] == [name, strategy] and line.endswith("pass") for line in lines)
    assert lines[-1].endswith("all passed")


def test_non_finite_numbers_are_written_as_strings():
    row = runner.Row(
        case="c",
        point="p",
        param="x",
        strategy="s",
        level="gradient",
        value=math.nan,
        reference=1.0,
        deviation=math.nan,
        abs_deviation=math.inf,
        scale=1.0,
        error=None,
        zscore=None,
        rtol=1e-7,
        error_covers=False,
        covered=None,
        ok=False,
        status="non-finite",
        n_evals=3,
        seconds=0.0,
    )
    result = runner.SuiteResult(rows=[row], cases=["exp_large"], strategies=["s"], quick=True, seconds=0.0)
    text = json.dumps(report.to_json(result), allow_nan=False)
    data = _strict_json(text)
    assert data["rows"][0]["value"] == "nan" and data["rows"][0]["abs_deviation"] == "inf"
    assert data["ok"] is False and data["summary"][0]["worst_gradient"] == "inf"


def test_tolerance_rules():
    strict = Tolerance(1e-7)
    lenient = Tolerance(1e-7, error_covers=True)
    assert strict.passes(1e-8, 5.0, None)
    assert not strict.passes(1e-3, 5.0, 10.0)  # an error bar does not help without error_covers
    assert lenient.passes(1e-3, 5.0, 10.0)
    assert not lenient.passes(1e-3, 5.0, 4.0)
    assert not lenient.passes(math.nan, math.nan, 1.0)
    case = cases.CASES["scale_disparity"]
    assert case.tolerance("autodiff", "gradient") == Tolerance(1e-12)
    assert case.tolerance("numerical", "gradient") == Tolerance(1e-7, error_covers=True)
    assert cases.CASES["gauss_nll"].tolerance("numerical", "gradient") == Tolerance(1e-7)


def _with_wrong_gradient(monkeypatch, name="exp_large", factor=1.001):
    case = cases.CASES[name]
    wrong = dataclasses.replace(case, gradient=lambda x, data: factor * case.gradient(x, data))
    monkeypatch.setitem(cases.CASES, name, wrong)


def test_a_wrong_closed_form_fails_exactly_its_gradient_rows(monkeypatch):
    _with_wrong_gradient(monkeypatch)
    result = runner.run_suite(quick=True, cases=["exp_large"])
    assert not result.ok
    failed = {(r.strategy, r.level, r.param) for r in result.failures}
    assert failed == {(s, "gradient", "x") for s in _builtin_gradient_strategies()}
    for row in result.failures:  # exp(20) off by 0.1 %: the relative deviation is 1e-3 / 1.001
        assert row.deviation == pytest.approx(1e-3 / 1.001, rel=1e-6)


def test_cli_exits_1_on_failure_and_writes_the_report(monkeypatch, tmp_path, capsys):
    _with_wrong_gradient(monkeypatch)
    status = main(["--quick", "--cases", "exp_*", "--strategies", "autodiff", "--output", str(tmp_path)])
    assert status == 1
    out = capsys.readouterr().out
    assert "FAIL exp_large/x=20 autodiff gradient x" in out
    data = _strict_json((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["ok"] is False and data["options"]["cases"] == ["exp_*"]


def test_cli_exits_0_when_everything_passes(tmp_path, capsys):
    assert main(["--quick", "--cases", "exp_large", "--output", str(tmp_path)]) == 0
    assert "all passed" in capsys.readouterr().out
    assert _strict_json((tmp_path / "report.json").read_text(encoding="utf-8"))["ok"] is True


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--cases", "no_such_case*"], "matches no case"),
        (["--strategies", "no_such_strategy"], "unknown strategy 'no_such_strategy'"),
        (["--strategies", "minuit"], "'minuit' provides no gradient"),
    ],
)
def test_cli_exits_2_for_unknown_cases_or_strategies(argv, match, tmp_path, capsys):
    assert main([*argv, "--output", str(tmp_path)]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize("argv", [["--bogus"], ["--cases"], ["--quick=yes"]])
def test_cli_exits_2_for_malformed_arguments(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: python -m validation" in capsys.readouterr().err


def test_user_mode_is_untouched_and_registered_strategies_are_validated():
    # a registered strategy that biases the first gradient component by 1 % is flagged for that
    # component only; the user's own mode (here 'numerical') is the same afterwards
    autodiff = zgrad.gradients.get("autodiff")
    modes_seen = []

    class Biased:
        is_autograd = False
        provides_gradient = True

        def value_gradient(self, func, params):
            modes_seen.append(zgrad.run.mode["autograd"])
            result = autodiff.value_gradient(func, params)
            return result.value, result.gradient * np.array([1.01] + [1.0] * (len(params) - 1))

        def hessian(self, func, params):
            return autodiff.hessian(func, params).hessian

    zgrad.run.set_mode(autograd="numerical")
    zgrad.gradients.register("biased", Biased())
    try:
        result = runner.run_suite(quick=True, cases=["gauss_nll"])
        mode_after = zgrad.run.mode
    finally:
        zgrad.run.set_mode(autograd=True)
        zgrad.gradients.unregister("biased")
    assert result.strategies == ["autodiff", "numerical", "biased"]
    assert {(r.strategy, r.level, r.param) for r in result.failures} == {("biased", "gradient", "mu")}
    assert modes_seen and set(modes_seen) == {"biased"}
    assert mode_after["autograd"] == "numerical"


def test_a_strategy_without_hessian_is_checked_at_gradient_level_only():
    class GradientOnly:  # the protocol makes hessian() optional
        is_autograd = False
        provides_gradient = True

        def value_gradient(self, func, params):
            return func(), [0.0] * len(params)

    zgrad.gradients.register("gradient_only", GradientOnly())
    try:
        tasks = runner.plan([cases.CASES["exp_large"]], ["autodiff", "gradient_only"], quick=False)
    finally:
        zgrad.gradients.unregister("gradient_only")
    assert [(t.point, t.strategy, t.level) for t in tasks] == [
        ("x=20", "autodiff", "gradient"),
        ("x=20", "autodiff", "hessian"),
        ("x=20", "gradient_only", "gradient"),
        ("x=10", "autodiff", "gradient"),
        ("x=10", "autodiff", "hessian"),
        ("x=10", "gradient_only", "gradient"),
    ]


@pytest.mark.subprocess
def test_python_m_validation_exits_1_for_a_wrong_closed_form(tmp_path):
    # the __main__ module run as `python -m` runs it, in a fresh process with one case patched
    script = textwrap.dedent(
        """
        import dataclasses, runpy, sys
        from validation import cases
        case = cases.CASES["exp_large"]
        wrong = lambda x, d: 1.001 * case.gradient(x, d)
        cases.CASES["exp_large"] = dataclasses.replace(case, gradient=wrong)
        sys.argv = ["validation", "--quick", "--cases", "exp_large", "--output", sys.argv[1]]
        runpy.run_module("validation", run_name="__main__", alter_sys=True)
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "FAIL exp_large/x=20 autodiff gradient x" in proc.stdout
    assert "[4/4] exp_large/x=20 numerical hessian" in proc.stderr
    data = _strict_json((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["ok"] is False
    assert sum(not r["ok"] for r in data["rows"]) == 2
