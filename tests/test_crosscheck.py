"""zgrad.crosscheck: verdicts against closed forms, a deliberately wrong strategy, scoping, renderings."""

from __future__ import annotations

import base64
import json
import math
import re

import numpy as np
import pytest
from scipy import stats

import zgrad
from zgrad.checks import CrossCheckReport, CrossCheckRow, crosscheck
from zgrad.checks.report import SCHEMA_VERSION

# --- closed forms -------------------------------------------------------------------------------


def rosenbrock_case():
    x, y = zgrad.Parameter("x", -0.7), zgrad.Parameter("y", 1.3)

    def func():
        return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2

    def gradient(v):
        a, b = v
        return [-2.0 * (1.0 - a) - 400.0 * a * (b - a**2), 200.0 * (b - a**2)]

    def hessian(v):
        a, b = v
        return [[2.0 - 400.0 * (b - a**2) + 800.0 * a**2, -400.0 * a], [-400.0 * a, 200.0]]

    return func, [x, y], gradient, hessian


LOW, HIGH = -5.0, 5.0


def gaussian_nll_case():
    """An unbinned NLL of a Gaussian truncated to [LOW, HIGH], and its gradient from SciPy's norm."""
    data = np.random.default_rng(7).normal(0.1, 1.0, size=400)
    obs = zgrad.Space("x", limits=(LOW, HIGH))
    mu, sigma = zgrad.Parameter("mu", 0.3), zgrad.Parameter("sigma", 1.2, lower=0.1)
    loss = zgrad.losses.UnbinnedNLL(zgrad.models.Gauss(obs, mu, sigma), data)

    def gradient(v):
        m, s = v
        z = (data - m) / s
        alpha, beta = (LOW - m) / s, (HIGH - m) / s
        norm = stats.norm.cdf(beta) - stats.norm.cdf(alpha)
        d_norm_mu = -(stats.norm.pdf(beta) - stats.norm.pdf(alpha)) / s
        d_norm_s = -(beta * stats.norm.pdf(beta) - alpha * stats.norm.pdf(alpha)) / s
        n = data.size
        return [np.sum(-z / s) + n * d_norm_mu / norm, np.sum(-(z**2) / s) + n / s + n * d_norm_s / norm]

    return loss, gradient


class Biased:
    """Autodiff, with one component multiplied by 1.01: the deliberately wrong gradient."""

    is_autograd = False
    provides_gradient = True

    def __init__(self, index):
        self.index = index

    def value_gradient(self, func, params):
        value, grad = zgrad.value_gradient(func, params, strategy="autodiff")
        grad = np.array(grad)
        grad[self.index] *= 1.01
        return value, grad


class Broken:
    is_autograd = False
    provides_gradient = True

    def value_gradient(self, func, params):
        params[0].assign(123.0)  # a strategy that misbehaves before raising: the point must survive it
        raise RuntimeError("broken on purpose")


class ModeSpy:
    """Records the mode in force while it runs; otherwise autodiff."""

    is_autograd = True
    provides_gradient = True

    def __init__(self):
        self.seen = []

    def value_gradient(self, func, params):
        self.seen.append(zgrad.run.mode["autograd"])
        return zgrad.value_gradient(func, params, strategy="autodiff")


@pytest.fixture
def registered():
    """Register strategies for one test and always unregister them."""
    names = []

    def register(name, strategy):
        zgrad.gradients.register(name, strategy)
        names.append(name)
        return strategy

    yield register
    zgrad.run.set_mode(autograd=True)
    for name in names:
        zgrad.gradients.unregister(name)


def three_params():
    a, b, c = zgrad.Parameter("a", 0.4), zgrad.Parameter("b", -1.3), zgrad.Parameter("c", 2.2)
    return (lambda: a**2 * b + tf_sin(c) * a + b**3), [a, b, c]


def tf_sin(x):
    import tensorflow as tf

    return tf.sin(x)


# --- verdicts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_one_percent_bias_is_flagged_for_exactly_that_parameter(registered, index):
    registered("biased", Biased(index))
    func, params = three_params()
    report = crosscheck(func, params)

    assert report.strategies == ("autodiff", "numerical", "biased")
    assert report.reference_source == "autodiff"
    assert not report.ok
    assert [(r.strategy, r.param) for r in report.failures] == [("biased", params[index].name)]
    failed = report.failures[0]
    assert failed.relative_deviation == pytest.approx(0.01, rel=1e-9)
    assert failed.tolerance == pytest.approx(1e-6 * failed.scale)
    assert len(report.rows) == 9 and sum(r.ok for r in report.rows) == 8


def test_rosenbrock_closed_form_gradient_and_hessian_pass_for_autodiff_and_numerical():
    func, params, gradient, hessian = rosenbrock_case()
    report = crosscheck(func, params, reference={"gradient": gradient, "hessian": hessian}, hessian=True)

    assert report.ok, str(report)
    assert report.reference_source == "closed form"
    assert [(r.level, r.param, r.strategy) for r in report.rows] == [
        ("gradient", "x", "autodiff"),
        ("gradient", "y", "autodiff"),
        ("gradient", "x", "numerical"),
        ("gradient", "y", "numerical"),
        ("hessian", "x,x", "autodiff"),
        ("hessian", "x,y", "autodiff"),
        ("hessian", "y,y", "autodiff"),
        ("hessian", "x,x", "numerical"),
        ("hessian", "x,y", "numerical"),
        ("hessian", "y,y", "numerical"),
    ]
    expected_h = np.array(hessian([-0.7, 1.3]))
    for row in report.rows:
        if row.level == "hessian":
            i, j = ("xy".index(n) for n in row.param.split(","))
            assert row.reference == expected_h[i, j]
        else:
            assert row.reference == gradient([-0.7, 1.3])["xy".index(row.param)]
        if row.strategy == "autodiff":
            assert row.error is None and row.zscore is None
            assert abs(row.deviation) <= 1e-12 * row.scale
        else:
            assert row.error > 0 and row.zscore == pytest.approx(abs(row.deviation) / row.error)


def test_gaussian_nll_closed_form_passes_for_autodiff_and_numerical():
    loss, gradient = gaussian_nll_case()
    report = crosscheck(loss, reference=gradient)

    assert report.ok, str(report)
    assert report.params == ("mu", "sigma")
    assert {r.strategy for r in report.rows} == {"autodiff", "numerical"}
    for row in report.rows:
        assert row.tolerance == max(
            report.rtols[row.strategy] * row.scale, row.error if row.strategy == "numerical" else 0.0
        )
        assert row.n_evals >= 1 and row.seconds > 0
    numerical = [r for r in report.rows if r.strategy == "numerical"]
    assert all(r.n_evals <= 30 * 2 + 1 for r in numerical)


def test_a_wrong_closed_form_fails_every_strategy_on_that_component():
    func, params, gradient, _ = rosenbrock_case()
    report = crosscheck(func, params, reference=lambda v: np.array(gradient(v)) * [1.0, 1.001])
    assert [(r.strategy, r.param) for r in report.failures] == [("autodiff", "y"), ("numerical", "y")]


def test_tolerance_scale_has_a_floor_relative_to_the_largest_component():
    x, y = zgrad.Parameter("x", 1.0), zgrad.Parameter("y", 0.0)
    report = crosscheck(lambda: 1000.0 * x + y**2, [x, y], strategies=["autodiff"])
    by_param = {r.param: r for r in report.rows}
    assert by_param["x"].scale == 1000.0
    assert by_param["y"].reference == 0.0 and by_param["y"].scale == pytest.approx(1.0)


def test_tolerances_float_and_dict(registered):
    registered("biased", Biased(1))
    func, params = three_params()
    assert crosscheck(func, params, tolerances=0.02).ok
    loose = crosscheck(func, params, tolerances={"biased": 0.02})
    assert loose.ok and loose.rtols == {"autodiff": 1e-8, "numerical": 1e-6, "biased": 0.02}
    with pytest.raises(ValueError, match=r"not checked: \['nope'\]"):
        crosscheck(func, params, tolerances={"nope": 1e-3})
    with pytest.raises(ValueError, match="positive and finite"):
        crosscheck(func, params, tolerances=-1.0)
    with pytest.raises(TypeError, match="positive number"):
        crosscheck(func, params, tolerances="tight")


# --- arguments ----------------------------------------------------------------------------------


def test_a_callable_needs_params_and_a_loss_provides_them():
    func, params, _, _ = rosenbrock_case()
    with pytest.raises(ValueError, match="params is required when checking a plain callable"):
        crosscheck(func)
    with pytest.raises(TypeError, match="loss or a zero-argument callable"):
        crosscheck(3.0, params)
    loss = zgrad.losses.SimpleLoss(func, params, errordef=1.0)
    assert crosscheck(loss).params == ("x", "y")
    assert crosscheck(loss, [params[1]]).params == ("y",)


def test_default_strategies_are_those_that_provide_a_gradient():
    func, params, _, _ = rosenbrock_case()
    assert crosscheck(func, params).strategies == ("autodiff", "numerical")
    report = crosscheck(func, params, strategies=["minuit", "autodiff"])
    assert [r.ok for r in report.rows if r.strategy == "minuit"] == [False, False]
    assert all(
        "GradientError: The 'minuit' strategy provides no gradient" in r.message
        for r in report.rows
        if r.strategy == "minuit"
    )
    with pytest.raises(ValueError, match=r"Unknown gradient strategy 'nope'; registered strategies are \["):
        crosscheck(func, params, strategies=["nope"])
    with pytest.raises(ValueError, match="names a strategy twice"):
        crosscheck(func, params, strategies=["autodiff", "autodiff"])


def test_points_are_dicts_or_arrays_and_parameters_are_restored_exactly():
    func, params, gradient, _ = rosenbrock_case()
    x, y = params
    x.assign(0.1 + 0.2)  # not representable exactly: restoring must give back these very bits
    before = [p.numpy() for p in params]
    report = crosscheck(
        func, params, points=[{"x": 0.5}, np.array([1.0, 1.0]), {"y": -2.0}], reference=gradient
    )

    assert report.ok
    assert [x.tolist() for x in report.points] == [[0.5, 1.3], [1.0, 1.0], [before[0], -2.0]]
    assert sorted({r.point for r in report.rows}) == [0, 1, 2]
    at_min = [r for r in report.rows if r.point == 1]
    assert all(r.reference == 0.0 for r in at_min)  # the minimum (1, 1): only a near-exact zero passes
    assert [p.numpy() for p in params] == before

    with pytest.raises(ValueError, match=r"points\[0\] names 'z', which is not among the parameters"):
        crosscheck(func, params, points=[{"z": 1.0}])
    with pytest.raises(ValueError, match=r"points\[1\] has 3 values; expected 2"):
        crosscheck(func, params, points=[[0.0, 0.0], [1.0, 2.0, 3.0]])
    sigma = zgrad.Parameter("sigma", 1.0, lower=0.1)
    with pytest.raises(ValueError, match=r"sigma = 0.0 is not finite or outside its limits \[0.1, inf\]"):
        crosscheck(lambda: sigma**2, [sigma], points=[{"sigma": 0.0}])
    assert [p.numpy() for p in params] == before


def test_reference_of_wrong_shape_raises():
    func, params, _, _ = rosenbrock_case()
    with pytest.raises(ValueError, match=r"reference gradient returned shape \(3,\); expected \(2,\)"):
        crosscheck(func, params, reference=lambda v: [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="keys must be 'gradient' and/or 'hessian'"):
        crosscheck(func, params, reference={"grad": lambda v: v})


def test_without_autodiff_the_reference_is_the_accurate_numerical_strategy():
    x = zgrad.Parameter("x", 0.8)
    # a NumPy body: autodiff traces it and fails (no value inside a trace), numerical becomes the reference
    report = crosscheck(lambda: np.sin(x.numpy()) * 3.0, [x])
    assert report.reference_source == "numerical (accurate)"
    autodiff, numerical = report.rows
    assert not autodiff.ok and autodiff.value is None
    assert (
        autodiff.message == "NotImplementedError: numpy() is only available when eager execution is enabled."
    )
    assert numerical.ok and numerical.deviation == 0.0
    assert numerical.reference == pytest.approx(3.0 * math.cos(0.8), rel=1e-9)


# --- scoping ------------------------------------------------------------------------------------


def test_each_strategy_runs_in_its_own_mode_scope_and_the_callers_mode_is_untouched(registered):
    spy = registered("spy", ModeSpy())
    registered("broken", Broken())
    func, params, _, _ = rosenbrock_case()
    before = [p.numpy() for p in params]
    zgrad.run.set_mode(graph=False, autograd="numerical")
    with zgrad.run.set_mode(graph={"loss": True}):
        expected = zgrad.run.mode
        report = crosscheck(func, params, strategies=["spy", "broken", "autodiff"])
        assert zgrad.run.mode == expected
    assert zgrad.run.mode == {"graph": False, "autograd": "numerical"}
    assert spy.seen == ["spy"]
    assert [p.numpy() for p in params] == before
    broken = [r for r in report.rows if r.strategy == "broken"]
    assert [r.ok for r in broken] == [False, False]
    assert broken[0].message == "RuntimeError: broken on purpose"
    # the strategy after the broken one ran at the right point, not at x = 123
    assert all(r.ok for r in report.rows if r.strategy == "autodiff")
    zgrad.run.set_mode(graph="auto", autograd=True)


def test_inside_a_trace_it_raises():
    x = zgrad.Parameter("x", 1.0)

    @zgrad.z.function(wraps="tensor")
    def traced():
        crosscheck(lambda: x**2, [x])
        return x * 1.0

    with zgrad.run.set_mode(graph=True), pytest.raises(RuntimeError, match="call it eagerly"):
        traced()


# --- Hessian rows -------------------------------------------------------------------------------


def test_hessian_adds_one_row_per_upper_entry_and_notes_strategies_without_one(registered):
    registered("biased", Biased(0))
    func, params = three_params()
    report = crosscheck(func, params, hessian=True, strategies=["autodiff", "numerical", "biased"])
    hessian_rows = [r for r in report.rows if r.level == "hessian"]
    assert [r.param for r in hessian_rows] == ["a,a", "a,b", "a,c", "b,b", "b,c", "c,c"] * 2
    assert {r.strategy for r in hessian_rows} == {"autodiff", "numerical"}
    assert all(r.ok for r in hessian_rows)
    assert report.notes == ("strategy 'biased' has no 'hessian' method: no Hessian rows for it",)
    assert len(report.rows) == 9 + 12


# --- renderings ---------------------------------------------------------------------------------


def test_terminal_table_marks_failures(registered):
    registered("biased", Biased(2))
    func, params = three_params()
    text = str(crosscheck(func, params))
    assert text.startswith("zgrad crosscheck: FAILED  reference: autodiff")
    fail_lines = [line for line in text.splitlines() if line.rstrip().split()[-3:-2] == ["FAIL"]]
    assert len(fail_lines) == 1 and " c " in fail_lines[0] and "biased" in fail_lines[0]
    assert text.endswith("9 rows, 1 failed")


def test_json_document_follows_the_schema(registered):
    registered("broken", Broken())
    func, params, gradient, _ = rosenbrock_case()
    doc = json.loads(
        crosscheck(func, params, reference=gradient, strategies=["autodiff", "broken"]).to_json()
    )

    assert doc["schema_version"] == SCHEMA_VERSION == "1.0"
    assert set(doc) == {
        "schema_version",
        "kind",
        "created",
        "ok",
        "reference_source",
        "params",
        "points",
        "strategies",
        "hessian",
        "notes",
        "tolerances",
        "summary",
        "rows",
        "environment",
    }
    assert doc["kind"] == "zgrad.crosscheck" and doc["ok"] is False
    assert doc["reference_source"] == "closed form"
    assert doc["points"] == [{"x": -0.7, "y": 1.3}]
    assert doc["tolerances"]["rtol"] == {"autodiff": 1e-8, "broken": 1e-6}
    assert doc["tolerances"]["scale_floor"] == 1e-3 and doc["tolerances"]["error_covered"] == ["numerical"]
    assert set(doc["summary"]) == {"ok", "n_rows", "n_failures", "failures", "strategies"}
    assert doc["summary"]["failures"] == ["broken: x @ 0 (gradient)", "broken: y @ 0 (gradient)"]
    assert set(doc["summary"]["strategies"]["autodiff"]) == {
        "rtol",
        "n_rows",
        "n_failures",
        "max_relative_deviation",
        "max_zscore",
        "n_evals",
        "seconds",
    }
    assert set(doc["rows"][0]) == {f for f in CrossCheckRow.__dataclass_fields__}
    assert doc["rows"][2]["value"] is None and doc["rows"][2]["message"] == "RuntimeError: broken on purpose"
    assert {"python", "zgrad", "numpy", "tensorflow", "numdifftools", "scipy"} <= set(doc["environment"])
    assert doc["environment"]["numpy"] == np.__version__


def test_non_finite_numbers_become_strings_in_json():
    report = CrossCheckReport(
        [
            CrossCheckRow(
                point=0,
                param="x",
                strategy="s",
                value=1.0,
                error=0.0,
                reference=0.5,
                deviation=0.5,
                zscore=math.inf,
                tolerance=1e-6,
                ok=False,
                n_evals=1,
                seconds=0.0,
                scale=0.5,
            )
        ],
        params=("x",),
        points=(np.array([1.0]),),
        strategies=("s",),
        rtols={"s": 1e-6},
        reference_source="closed form",
    )
    assert json.loads(report.to_json())["rows"][0]["zscore"] == "inf"


def test_to_html_writes_one_page_with_embedded_plots_and_the_table(tmp_path, registered):
    registered("biased", Biased(1))
    loss, gradient = gaussian_nll_case()
    report = crosscheck(loss, reference=gradient, strategies=["autodiff", "numerical", "biased"])
    path = report.to_html(tmp_path / "out" / "report.html")

    assert path == tmp_path / "out" / "report.html"
    page = path.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 1 + 2  # the deviation chart, one precision plot per parameter
    assert all(base64.b64decode(i).startswith(b"\x89PNG\r\n\x1a\n") for i in images)
    assert page.count("<table") == 4  # summary, points, rows, environment
    assert page.count('<tr class="fail">') == 1 and page.count('<tr class="ok">') == 5
    assert page.count("dashed line: eps·|reference|") == 2  # the precision plots' captions
    assert "http://" not in page and "https://" not in page  # self-contained
    assert report.to_html(tmp_path) == tmp_path / "index.html"


def test_precision_scan_stays_inside_limits_and_agrees_with_the_reference():
    loss, gradient = gaussian_nll_case()
    sigma = loss.params[1]
    report = crosscheck(loss, reference=gradient, points=[{"sigma": 0.1 + 2 * sigma.step_size}])
    scan = report.precision_scan("sigma")
    step = sigma.step_size
    grid = 0.1 + 2 * step + np.linspace(-3.0, 3.0, 15) * step
    assert np.array_equal(scan.x, grid[grid >= 0.1]) and scan.x.size == 12  # three values lie below the limit
    assert np.allclose(scan.reference, [gradient([0.3, s])[1] for s in scan.x], rtol=0, atol=0)
    assert np.all(scan.deviation <= np.maximum(scan.error, 1e-6 * np.abs(scan.reference)))
    assert scan.eps == np.finfo(np.float64).eps
    assert float(sigma.value()) == 1.2
    with pytest.raises(ValueError, match=r"Unknown parameter 'nu'"):
        report.precision_scan("nu")


def test_a_noisy_gradient_50_percent_off_is_not_passed():
    """A numerical gradient whose large own error estimate would cover a 50 % deviation is inconclusive."""
    from zgrad.checks import compare

    common = dict(point=0, strategy="numerical", seconds=0.0, level="gradient", n_evals=3, param="x")
    row = compare._row("numerical", 2.0, 2.5, 4.0, None, 0.0, 1e-6, "ok", common)
    assert not row.ok and row.message.startswith("inconclusive") and row.deviation == -2.0
    report = CrossCheckReport([row], params=("x",), points=(np.array([2.0]),), strategies=("numerical",),
                              rtols={"numerical": 1e-6}, reference_source="closed form")  # fmt: skip
    assert not report.ok and report.inconclusive == (row,) and report.failures == (row,)
    small = compare._row("numerical", 4.0 + 1e-9, 2e-9, 4.0, None, 0.0, 1e-12, "ok", common)
    assert small.ok and small.message == ""
