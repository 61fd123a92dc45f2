"""The validation suite (``validation/``): rows per strategy, verdicts, report.json, the command line.

Further down: model cases, stored numbers, fits, toys and the HTML page (also in a real browser).
Executors (worker processes, Dask) are tested in test_validation_dask.py.
"""

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
from zgrad import _strategy_table

REPO = Path(__file__).resolve().parents[1]
# a float32 case, a case with points on parameter limits, a hard (badly scaled) case
SUBSET = ["mixed_f32", "near_limit", "scale_disparity"]
ROW_FIELDS = set(
    "case point param strategy level value reference deviation abs_deviation scale error zscore rtol "
    "error_covers covered ok status n_evals seconds message reference_error".split()
)


def _builtin_gradient_strategies():
    return [n for n in _strategy_table.BUILTIN_STRATEGIES if zgrad.gradients.get(n).provides_gradient]


def _strict_json(text):
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def _rows_per_point(n):
    return n + n * (n + 1) // 2  # gradient components + upper triangle of the Hessian


@pytest.fixture(scope="module")
def quick_subset():
    seen = []
    result = runner.run_suite(quick=True, cases=SUBSET, progress=seen.append)
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


def test_progress_callback_sees_every_task_once(quick_subset):
    result, seen = quick_subset
    n_derivative = len(SUBSET) * len(result.strategies) * 2
    # derivative tasks, one stored-number check per case, one precision scan (quick); no fits: no model case
    assert len(seen) == n_derivative + len(SUBSET) + 1
    assert len({t.label for t in seen}) == len(seen)
    assert seen[0].label == f"mixed_f32/{cases.CASES['mixed_f32'].points[0][0]} autodiff gradient"
    assert [t.label for t in seen[n_derivative:]] == [f"{c} stored numbers" for c in SUBSET] + [
        "mixed_f32/p1 scan a"
    ]
    assert result.fits == [] and result.toys == [] and len(result.scans) == 1


def test_progress_bar_counts_and_estimates():
    import io

    stream = io.StringIO()
    bar = runner.ProgressBar(4, stream=stream, width=8)
    for k in range(4):
        bar(runner.Task("c", "p", "s", f"level{k}"))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4  # not a terminal: one line per task
    assert lines[0].startswith("[##------] 1/4  25% ")
    assert "ETA " in lines[0] and lines[0].endswith("c/p s level0")
    assert lines[-1].startswith("[########] 4/4 100% ")


def test_every_case_matches_its_closed_form_under_autodiff():
    # guards the case table itself: a wrong closed form or builder fails here first, and every
    # case's closed form still equals the numbers stored in validation/data/reference.json
    result = runner.run_suite(quick=True, strategies=["autodiff"], fits=False)
    assert result.cases == list(cases.CASES)
    assert result.failures == []
    assert len(result.rows) == sum(_rows_per_point(len(c.params)) for c in cases.CASES.values())
    assert {c.case for c in result.reference_checks} == set(cases.CASES)
    assert all(c.ok for c in result.reference_checks), [c for c in result.reference_checks if not c.ok]
    assert result.ok


def test_report_json_is_strict_and_has_the_schema_fields(quick_subset, tmp_path):
    result, _ = quick_subset
    path = report.write(result, tmp_path / "out")
    assert path == tmp_path / "out" / "report.json"
    data = _strict_json(path.read_text(encoding="utf-8"))
    assert data["schema_version"] == report.SCHEMA_VERSION == 2
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
    # version 2 additions
    assert data["executor"] == {"kind": "in-process"}
    assert {c["kind"] for c in data["cases"]} == {"function"}
    assert all(c["hessian_source"] == "closed form" for c in data["cases"])
    assert data["reference_checks"]["rtol"] == 1e-9
    assert {c["case"] for c in data["reference_checks"]["checks"]} == set(SUBSET)
    assert data["fits"] == {"rows": [], "verdicts": []}
    assert data["toys"] == {"n": {}, "rows": [], "pulls": []}
    assert data["options"] == {"quick": True, "cases": SUBSET, "strategies": [], "toys": 0, "fits": True}


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
    assert not result.ok
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
    # the stored numbers catch the changed closed form at every point, quick or not
    checks = {c.point: c for c in result.reference_checks}
    assert set(checks) == {"x=20", "x=10"} and not any(c.ok for c in checks.values())
    assert checks["x=20"].max_deviation == pytest.approx(1e-3, rel=1e-6)
    assert "python -m validation.regenerate" in checks["x=20"].message


def test_cli_exits_1_on_failure_and_writes_the_report(monkeypatch, tmp_path, capsys):
    _with_wrong_gradient(monkeypatch)
    status = main(["--quick", "--cases", "exp_*", "--strategies", "autodiff", "--output", str(tmp_path)])
    assert status == 1
    out = capsys.readouterr().out
    assert "FAIL exp_large/x=20 autodiff gradient x" in out
    data = _strict_json((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["ok"] is False and data["options"]["cases"] == ["exp_*"]
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "FAILED" in page and '<tr class="fail">' in page


def test_cli_exits_0_when_everything_passes(tmp_path, capsys):
    assert main(["--quick", "--cases", "exp_large", "--output", str(tmp_path)]) == 0
    assert "all passed" in capsys.readouterr().out
    assert _strict_json((tmp_path / "report.json").read_text(encoding="utf-8"))["ok"] is True


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--cases", "no_such_case*"], "matches no case"),
        (["--strategies", "no_such_strategy"], "unknown strategy 'no_such_strategy'"),
        (["--strategies", "minuit", "--cases", "exp_large"], "provide no gradient"),
        (["--toys", "-1"], "expected a positive integer"),
        (["--workers", "0"], "expected a positive integer"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not allowed with argument"),
    ],
)
def test_cli_exits_2_for_unknown_cases_or_strategies(argv, match, tmp_path, capsys):
    try:
        status = main([*argv, "--output", str(tmp_path)])
    except SystemExit as exc:  # argparse's own checks exit at parse time
        status = exc.code
    assert status == 2
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
    # 4 derivative tasks, the stored-number check, the precision scan of exp_large
    assert "] 6/6 100% " in proc.stderr and "exp_large/x=20 scan x" in proc.stderr
    assert (tmp_path / "index.html").exists()
    data = _strict_json((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["ok"] is False
    assert sum(not r["ok"] for r in data["rows"]) == 2
    assert [c["ok"] for c in data["reference_checks"]["checks"]] == [False, False]


# --- model cases and stored numbers -----------------------------------------------------------------

MODEL_SUBSET = ["gauss", "sum_yields", "logistic_pyfunc"]


def test_model_cases_cover_every_reference_pdf_and_both_losses():
    factories = {c.model.factory for c in cases.MODEL_CASES.values()}
    assert factories == {
        "gauss",
        "exponential",
        "crystal_ball",
        "double_crystal_ball",
        "polynomial",
        "sum_fracs",
        "sum_yields",
        "spline_shift",
        "logistic_pyfunc",
    }
    losses = {c.model.loss for c in cases.MODEL_CASES.values()}
    assert losses == {"UnbinnedNLL", "ExtendedUnbinnedNLL"}
    assert {c.dtype for c in cases.MODEL_CASES.values()} == {"float64", "float32"}
    for case in cases.MODEL_CASES.values():
        assert case.kind == "model" and case.hessian_source.startswith("numdifftools Jacobian")
        # every point lies inside the limits, at least one model case has a point on or next to one
        for _, values in case.points:
            for spec, v in zip(case.params, values, strict=True):
                assert spec.lower <= v <= spec.upper, (case.name, spec.name, v)
    near = [
        (c.name, label)
        for c in cases.MODEL_CASES.values()
        for label, values in c.points
        if any(min(v - s.lower, s.upper - v) < 1e-6 for s, v in zip(c.params, values, strict=True))
    ]
    assert len(near) >= 4, near


def test_model_cases_pass_with_every_builtin_strategy():
    result = runner.run_suite(quick=True, cases=MODEL_SUBSET, fits=False)
    assert result.failures == []
    assert {r.case for r in result.rows} == set(MODEL_SUBSET)
    hess = [r for r in result.rows if r.level == "hessian"]
    assert hess and all(r.reference_error is not None and r.reference_error >= 0 for r in hess)


def _stored(name, point):
    from validation import reference

    entry = reference.load()["cases"][name]
    return entry["params"], np.asarray(entry["points"][point]["gradient"])


def test_stored_numbers_match_autodiff_of_a_loss_built_by_hand():
    # consumes a small part of validation/data/reference.json: the extended Sum at its true values,
    # rebuilt here with the public API on the case's seeded data
    from validation.model_cases import DATA_SEED, true_data

    case = cases.CASES["sum_yields"]
    names, stored = _stored("sum_yields", "truth")
    assert names == ["mu", "sigma", "lam", "n_sig", "n_bkg"]
    info = case.model
    data = true_data(info.factory, info.factory, case.params, info.truth, info.n_events, DATA_SEED)
    P = zgrad.Parameter
    mu, sigma, lam, n_sig, n_bkg = (P(n, v) for n, v in zip(names, info.truth, strict=True))
    obs = zgrad.Space("x", limits=(0.0, 10.0))
    model = zgrad.models.Sum(
        [zgrad.models.Gauss(obs, mu, sigma), zgrad.models.Exponential(obs, lam)], yields=[n_sig, n_bkg]
    )
    loss = zgrad.losses.ExtendedUnbinnedNLL(model, data)
    got = zgrad.gradient(loss, [mu, sigma, lam, n_sig, n_bkg], strategy="autodiff")
    np.testing.assert_allclose(got, stored, rtol=1e-10, atol=1e-10 * np.abs(stored).max())
    # the extended term is in there: d/d n_sig = 1 - sum_i g_i / (n_sig g_i + n_bkg e_i) ... != 0
    assert abs(stored[3]) > 1e-3


def test_stored_numbers_of_a_reference_function_are_its_closed_form():
    names, stored = _stored("scale_disparity", "unit")
    assert names == ["x", "y"]
    np.testing.assert_array_equal(stored, [2e6, 2e-6])


def test_regenerate_rewrites_only_the_selected_cases(monkeypatch, tmp_path):
    from validation import reference, regenerate

    target = tmp_path / "reference.json"
    target.write_text(reference.PATH.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(reference, "PATH", target)
    doc = reference.load()
    doc["cases"]["exp_large"]["points"]["x=20"]["gradient"] = [1.0]
    doc["cases"]["gauss_nll"]["points"]["off"]["gradient"][0] *= 1.0 + 1e-6
    reference.write(doc)
    bad = reference.check_case("gauss_nll", reference.load()["cases"])
    assert [c.ok for c in bad] == [True, False, True] and bad[1].max_deviation == pytest.approx(
        1e-6, rel=1e-3
    )
    assert regenerate.main(["--cases", "exp_*"]) == 0
    after = reference.load()["cases"]
    assert list(after) == list(cases.CASES)
    assert after["exp_large"]["points"]["x=20"]["gradient"] == [math.exp(20.0)]
    assert not all(c.ok for c in reference.check_case("gauss_nll", after))  # untouched by --cases exp_*
    assert regenerate.main(["--cases", "nothing*"]) == 2


def test_a_case_without_stored_numbers_fails_with_the_regenerate_hint(monkeypatch, tmp_path):
    from validation import reference

    monkeypatch.setattr(reference, "PATH", tmp_path / "missing.json")
    (check,) = reference.ReferenceTask("exp_large").run()
    assert not check.ok and "python -m validation.regenerate" in check.message


# --- fits and toys --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gauss_fits():
    # 6 toys: the pull verdict judges the width by its own sample (width / sqrt(2 (n - 1))), so with 4
    # toys a sample width below 0.45 fails, which one seed in ten gives by chance
    return runner.run_suite(quick=True, cases=["gauss"], toys=6)


def test_fits_per_strategy_agree_and_record_calls(gauss_fits):
    result = gauss_fits
    assert result.fit_strategies == ["autodiff", "numerical", "minuit"]
    fits = {r.strategy: r for r in result.fits}
    assert list(fits) == ["autodiff", "numerical", "minuit"]
    for row in fits.values():
        assert row.valid and row.message == ""
        assert row.start == {"mu": -0.4, "sigma": 0.9}  # the case's second point
        assert row.nfcn > 0 and row.wall_time > 0
        assert set(row.values) == set(row.errors) == {"mu", "sigma"}
        # 2000 events from a unit-ish Gaussian: errors near sigma / sqrt(n) and sigma / sqrt(2n)
        assert row.errors["mu"] == pytest.approx(1.2 / math.sqrt(2000), rel=0.1)
    assert fits["minuit"].ngrad == 0 and fits["autodiff"].ngrad > 0 and fits["numerical"].ngrad > 0
    assert fits["autodiff"].gradient_strategy == "autodiff"
    (verdict,) = result.fit_verdicts
    assert verdict["ok"] and verdict["reference"] == "autodiff" and verdict["max_shift"]["autodiff"] == 0.0
    assert all(0 <= s <= 0.01 for s in verdict["max_shift"].values())


def test_toys_are_seeded_and_give_pulls_per_strategy(gauss_fits):
    from validation.fits import TOY_SEED

    result = gauss_fits
    assert len(result.toys) == 6 * 3
    # zgrad.toys' per-toy seeds, the same toy data for every strategy
    seeds = np.random.SeedSequence(TOY_SEED).generate_state(6, dtype=np.uint64) >> np.uint64(1)
    assert sorted({(t.toy, t.seed) for t in result.toys}) == [(k, int(s)) for k, s in enumerate(seeds)]
    assert {t.n_events for t in result.toys} == {2000}
    pulls = result.pulls
    assert {(p["strategy"], p["param"]) for p in pulls} == {
        (s, n) for s in ("autodiff", "numerical", "minuit") for n in ("mu", "sigma")
    }
    for p in pulls:
        assert p["n"] == 6 and p["n_invalid"] == 0 and p["ok"]
        assert p["mean_error"] == pytest.approx(p["width"] / math.sqrt(6.0))
        assert p["width_error"] == pytest.approx(p["width"] / math.sqrt(10.0))
    # the same toy data give (nearly) the same fit whatever the strategy
    by = {(t.toy, t.strategy): t for t in result.toys}
    for k in range(6):
        assert by[k, "numerical"].values["mu"] == pytest.approx(
            by[k, "autodiff"].values["mu"], abs=1e-3 * 0.03
        )


def _toy(k, value, error=1.0, valid=True):
    from validation.fits import ToyRow

    return ToyRow("c", k, k, 10, "s", valid, "", {"a": 0.0}, {"a": value}, {"a": error}, 1, 0.0)


def test_pull_summary_statistics_and_verdicts():
    from validation.fits import pull_summary

    values = np.linspace(-1.55, 1.55, 40)  # mean 0, width 0.91
    (p,) = pull_summary([_toy(k, v) for k, v in enumerate(values)])
    width = float(np.std(values, ddof=1))
    assert p["mean"] == pytest.approx(0.0, abs=1e-15) and p["width"] == pytest.approx(width)
    assert p["mean_error"] == pytest.approx(width / math.sqrt(40))
    assert p["width_error"] == pytest.approx(width / math.sqrt(78))
    assert p["ok"]
    (wide,) = pull_summary([_toy(k, 3.0 * v) for k, v in enumerate(values)])  # width 2.7 +- 0.3
    assert not wide["ok"]
    (shifted,) = pull_summary([_toy(k, v + 0.5) for k, v in enumerate(values)])  # mean 0.5 +- 0.14
    assert not shifted["ok"]
    (invalid,) = pull_summary([_toy(k, v, valid=k != 0) for k, v in enumerate(values)])
    assert invalid["n"] == 39 and invalid["n_invalid"] == 1 and not invalid["ok"]


def test_fit_verdict_flags_a_shift_beyond_one_percent_of_an_error():
    from validation.fits import FitRow, fit_verdicts

    def row(strategy, value, valid=True):
        return FitRow(
            "c", strategy, valid, "", {"a": value}, {"a": 2.0}, {"a": 0.0}, 0.0, 0.0, 1, 1, 0.0, None, None
        )

    (good,) = fit_verdicts([row("autodiff", 1.0), row("numerical", 1.0 + 0.019)])
    assert good["ok"] and good["max_shift"]["numerical"] == pytest.approx(0.0095)
    (bad,) = fit_verdicts([row("autodiff", 1.0), row("numerical", 1.0 + 0.021)])
    assert not bad["ok"]
    (invalid,) = fit_verdicts([row("autodiff", 1.0), row("minuit", 1.0, valid=False)])
    assert not invalid["ok"] and invalid["invalid"] == ["minuit"]


# --- the HTML page ------------------------------------------------------------------------------


def _png_sources(page):
    import base64
    import re

    sources = re.findall(r"<img [^>]*src=\"([^\"]*)\"", page)
    assert len(sources) == page.count("<img ")
    pngs = []
    for src in sources:
        assert src.startswith("data:image/png;base64,"), src[:40]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        pngs.append(data)
    return pngs


def test_html_page_has_every_section_and_embedded_pngs(gauss_fits, tmp_path):
    from validation import page

    path = page.write_html(gauss_fits, tmp_path)
    text = path.read_text(encoding="utf-8")
    for title in (
        "Summary: cases x strategies",
        "Precision",
        "Fits",
        "Toys",
        "Stored reference numbers",
        "Deviation per parameter",
    ):
        assert f"<h2>{title}</h2>" in text
    assert "precision plot gauss sigma" in text and "toy pulls" in text
    # precision plot, gradient + Hessian deviation charts, pull chart
    assert len(_png_sources(text)) == 4
    assert '<tr class="fail">' not in text and "PASSED" in text


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--window-size=1200,2000",
]


#: Set (to anything but '' or '0') by .ci/run: a missing browser then fails the test instead of skipping it.
REQUIRE_BROWSER = "ZGRAD_REQUIRE_BROWSER"


def _missing_browser(path, env):
    """None when ``path`` exists; else ``('skip' or 'fail', message)``: 'fail' where ``env`` requires it."""
    if os.path.exists(path):
        return None
    how = "install Debian's chromium package (apt-get install chromium, as root) to run it"
    if env.get(REQUIRE_BROWSER, "") not in ("", "0"):
        return "fail", f"{path} is missing and {REQUIRE_BROWSER} is set (as in CI): {how}."
    return "skip", (
        f"{path} is missing, so the headless-browser test of the validation report is skipped: {how}. "
        f"CI installs it and sets {REQUIRE_BROWSER}=1, which makes this a failure."
    )


@pytest.mark.parametrize(
    ("exists", "env", "action"),
    [
        (True, {}, None),
        (True, {REQUIRE_BROWSER: "1"}, None),
        (False, {}, "skip"),
        (False, {REQUIRE_BROWSER: "0"}, "skip"),
        (False, {REQUIRE_BROWSER: ""}, "skip"),
        (False, {REQUIRE_BROWSER: "1"}, "fail"),
    ],
)
def test_missing_browser_is_a_skip_outside_ci_and_a_failure_inside(tmp_path, exists, env, action):
    path = tmp_path / "chromium"
    if exists:
        path.write_text("")
    verdict = _missing_browser(str(path), env)
    assert (verdict and verdict[0]) == action
    if action is not None:
        assert str(path) in verdict[1] and "apt-get install chromium" in verdict[1]


@pytest.mark.subprocess
def test_index_html_renders_in_headless_chromium_without_console_errors(monkeypatch, tmp_path):
    verdict = _missing_browser(CHROMIUM, os.environ)
    if verdict is not None:
        (pytest.fail if verdict[0] == "fail" else pytest.skip)(verdict[1])
    _with_wrong_gradient(monkeypatch)  # a failing case: the highlighted rows must render too
    out = tmp_path / "report"
    assert main(["--quick", "--cases", "exp_large", "gauss", "--toys", "2", "--output", str(out)]) == 1
    page = (out / "index.html").read_text(encoding="utf-8")
    assert len(_png_sources(page)) >= 4
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            (out / "index.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 2000)
