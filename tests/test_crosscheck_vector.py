"""``crosscheck`` on functions of a vector and on iminuit cost functions (the strategy ``'user'``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from iminuit.cost import LeastSquares, UnbinnedNLL

import zgrad

A = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 4.0]])


def quartic(x):
    return float(0.5 * x @ A @ x + np.sum(x**4))


def quartic_gradient(x):
    return A @ x + 4 * x**3


def quartic_hessian(x):
    return A + np.diag(12 * x**2)


X0 = [0.3, -1.1, 0.7]


def test_correct_gradient_and_hessian_pass():
    report = zgrad.crosscheck(quartic, x0=X0, gradient=quartic_gradient, hessian=quartic_hessian)
    assert report.ok, str(report)
    assert report.strategies == ("numerical", "user") and report.params == ("x0", "x1", "x2")
    user = [r for r in report.rows if r.strategy == "user"]
    # 3 gradient components, 6 Hessian entries i <= j against the numerical Hessian, and the same
    # 6 against the numerical Jacobian of the user gradient (level 'consistency')
    assert [r.level for r in user] == ["gradient"] * 3 + ["hessian"] * 6 + ["consistency"] * 6
    expected = quartic_gradient(np.array(X0))
    assert [r.value for r in user[:3]] == pytest.approx(expected, rel=1e-15)
    assert [r.reference for r in user[:3]] == pytest.approx(expected, rel=1e-8)


def test_a_one_percent_bias_is_flagged_for_exactly_that_component():
    def biased(x):
        g = quartic_gradient(x)
        g[1] *= 1.01
        return g

    report = zgrad.crosscheck(quartic, x0=X0, gradient=biased, names=["a", "b", "c"])
    assert not report.ok
    assert [(r.strategy, r.param) for r in report.failures] == [("user", "b")]
    row = report.failures[0]
    assert row.deviation == pytest.approx(0.01 * quartic_gradient(np.array(X0))[1], rel=1e-6)


def test_points_without_x0_and_limits():
    report = zgrad.crosscheck(
        quartic,
        points=[X0, [0.0, 0.5, -0.5]],
        gradient=quartic_gradient,
        limits=[(0.0, 1.0), None, (-1, None)],
    )
    assert report.ok and len(report.points) == 2 and len(report.rows) == 2 * 2 * 3


def test_the_user_hessian_alone_is_flagged_when_wrong():
    def wrong_hessian(x):
        h = quartic_hessian(x)
        h[0, 2] = h[2, 0] = 0.3
        return h

    report = zgrad.crosscheck(quartic, x0=X0, gradient=quartic_gradient, hessian=wrong_hessian)
    assert [(r.strategy, r.param, r.level) for r in report.failures] == [
        ("user", "x0,x2", "hessian"),
        ("user", "x0,x2", "consistency"),
    ]


def line(x, a, b):
    return a + b * x


def line_grad(x, a, b):
    return np.array([np.ones_like(x), x])


def gauss_pdf(x, mu, sigma):
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)


def gauss_grad(x, mu, sigma):
    f = gauss_pdf(x, mu, sigma)
    return np.array([f * (x - mu) / sigma**2, f * (((x - mu) / sigma) ** 2 - 1) / sigma])


def test_iminuit_least_squares_with_its_grad_passes():
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, 50)
    y = line(x, 1.0, 2.0) + rng.normal(0, 0.1, x.size)
    cost = LeastSquares(x, y, 0.1, line, grad=line_grad)
    report = zgrad.crosscheck(cost, x0=[0.9, 2.2])
    assert report.ok, str(report)
    assert report.params == ("a", "b") and report.strategies == ("numerical", "user")
    assert report.errordef == 1.0
    # closed form: d/da sum(r^2) = -2 sum(r)/s^2 with r = (y - a - b x) / 1 for s = 0.1
    r = y - line(x, 0.9, 2.2)
    expected = [-2 * r.sum() / 0.01, -2 * (r * x).sum() / 0.01]
    assert [row.value for row in report.rows if row.strategy == "user"] == pytest.approx(expected, rel=1e-10)


def test_iminuit_unbinned_nll_with_its_grad_passes_and_errordef_is_reported():
    data = np.random.default_rng(2).normal(0.2, 1.3, 2000)
    cost = UnbinnedNLL(data, gauss_pdf, grad=gauss_grad)
    report = zgrad.crosscheck(cost, points=[[0.1, 1.2]], hessian=False)
    assert report.ok, str(report)
    doc = json.loads(report.to_json())
    assert report.errordef == cost.errordef == 1.0  # iminuit's NLL costs are 2 * NLL
    assert any(note.startswith("errordef = 1 (from the iminuit cost UnbinnedNLL)") for note in doc["notes"])
    assert [r.value for r in report.rows if r.strategy == "user"] == pytest.approx(
        cost.grad(0.1, 1.2), rel=1e-12
    )


def test_a_biased_cost_grad_fails():
    data = np.random.default_rng(3).normal(0.0, 1.0, 2000)
    cost = UnbinnedNLL(
        data, gauss_pdf, grad=lambda x, mu, s: gauss_grad(x, mu, s) * np.array([[1.01], [1.0]])
    )
    report = zgrad.crosscheck(cost, x0=[0.1, 1.1])
    assert [(r.strategy, r.param) for r in report.failures] == [("user", "mu")]


def test_errors_name_what_was_given():
    with pytest.raises(
        ValueError, match=r"x0 is required for a function of a vector.*x0=None and points=None"
    ):
        zgrad.crosscheck(quartic, gradient=quartic_gradient)
    with pytest.raises(ValueError, match=r"x0 is required for the iminuit cost"):
        zgrad.crosscheck(LeastSquares([0.0, 1.0], [1.0, 2.0], 0.1, line))
    with pytest.raises(ValueError, match=r"names must be 3 non-empty str .*\['a', 'b'\]"):
        zgrad.crosscheck(quartic, x0=X0, gradient=quartic_gradient, names=["a", "b"])
    with pytest.raises(ValueError, match=r"limits must be a list of 3 pairs .*got \[\(0, 1\)\]"):
        zgrad.crosscheck(quartic, x0=X0, gradient=quartic_gradient, limits=[(0, 1)])
    with pytest.raises(ValueError, match=r"returned a value of shape \(2,\); it must return a real scalar"):
        zgrad.crosscheck(lambda x: 2 * x, x0=[1.0, 2.0], gradient=lambda x: 2 * np.ones(2))
    with pytest.raises(ValueError, match=r"Nothing to compare for this function of a vector"):
        zgrad.crosscheck(quartic, x0=X0)
    with pytest.raises(ValueError, match=r"'autodiff' differentiates automatically"):
        zgrad.crosscheck(quartic, x0=X0, gradient=quartic_gradient, strategies=["autodiff", "user"])


def test_a_gradient_of_the_wrong_length_fails_its_rows_with_the_shape():
    report = zgrad.crosscheck(quartic, x0=X0, gradient=lambda x: np.zeros(2))
    user = [r for r in report.rows if r.strategy == "user"]
    assert len(user) == 3 and not any(r.ok for r in user)
    assert "returned shape (2,); expected (3,)" in user[0].message


FACTORIES = """
import numpy as np

def _f(x):
    return float((x[0] - 1) ** 2 + 3 * x[0] * x[1] ** 2)

def _g(x):
    return np.array([2 * (x[0] - 1) + 3 * x[1] ** 2, 6 * x[0] * x[1]])

def good():
    return {"fcn": _f, "x0": [0.5, 2.0], "gradient": _g, "names": ["a", "b"]}

def biased():
    return {"fcn": _f, "x0": [0.5, 2.0], "gradient": lambda x: _g(x) * [1.0, 1.01]}

def unknown_key():
    return {"fcn": _f, "start": [0.5, 2.0]}
"""


def test_cli_with_a_vector_function_spec(tmp_path, monkeypatch, capsys):
    from zgrad.cli import main

    (tmp_path / "zgrad_vector_factories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "zgrad_vector_factories", raising=False)
    out = tmp_path / "report"
    assert main(["crosscheck", "zgrad_vector_factories:good", "-o", str(out), "--no-html"]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["params"] == ["a", "b"] and doc["strategies"] == ["numerical", "user"] and doc["ok"] is True
    assert main(["crosscheck", "zgrad_vector_factories:biased", "-o", str(out), "--no-html"]) == 1
    failures = json.loads((out / "report.json").read_text())["summary"]["failures"]
    assert failures == ["user: x1 @ 0 (gradient)"]
    capsys.readouterr()
    assert main(["crosscheck", "zgrad_vector_factories:unknown_key", "-o", str(out)]) == 2
    assert "keys ['fcn', 'start']; it needs 'fcn' and may hold ['x0'," in capsys.readouterr().err



def _cubic_pair():
    """f = a^2 b + sin(b) with its closed-form gradient and Hessian."""

    def f(v):
        return float(v[0] ** 2 * v[1] + np.sin(v[1]))

    def g(v):
        return np.array([2 * v[0] * v[1], v[0] ** 2 + np.cos(v[1])])

    def h(v):
        return np.array([[2 * v[1], 2 * v[0]], [2 * v[0], -np.sin(v[1])]])

    return f, g, h


def test_a_user_hessian_is_checked_against_the_jacobian_of_the_user_gradient(tmp_path):
    f, g, h = _cubic_pair()
    report = zgrad.crosscheck(f, x0=[0.7, 1.2], gradient=g, hessian=h)
    assert report.ok, str(report)
    consistency = [r for r in report.rows if r.level == "consistency"]
    assert [r.param for r in consistency] == ["x0,x0", "x0,x1", "x1,x1"]
    exact = h(np.array([0.7, 1.2]))
    for row, (i, j) in zip(consistency, [(0, 0), (0, 1), (1, 1)], strict=True):
        assert row.strategy == "user" and row.value == exact[i, j]
        assert row.reference == pytest.approx(exact[i, j], rel=1e-8)  # the numerical Jacobian of g
    assert any("level 'consistency'" in note for note in report.notes)
    page = report.to_html(tmp_path).read_text(encoding="utf-8")
    assert "consistency deviation chart" in page


def test_a_wrong_hessian_entry_or_gradient_component_is_named_in_the_consistency_rows():
    f, g, h = _cubic_pair()
    one_entry = zgrad.crosscheck(f, x0=[0.7, 1.2], gradient=g, hessian=lambda v: h(v) * [[1, 1], [1, 1.01]])
    wrong = [("x1,x1", "hessian"), ("x1,x1", "consistency")]
    assert [(r.param, r.level) for r in one_entry.failures] == wrong
    biased = zgrad.crosscheck(f, x0=[0.7, 1.2], gradient=lambda v: g(v) * [1.0, 1.01], hessian=h)
    # component 1 of the gradient is off: its row and the Jacobian row it spans (d g_1 / d x_1)
    assert [(r.param, r.level) for r in biased.failures] == [("x1", "gradient"), ("x1,x1", "consistency")]


def test_no_consistency_rows_without_a_user_hessian():
    f, g, _ = _cubic_pair()
    report = zgrad.crosscheck(f, x0=[0.7, 1.2], gradient=g, hessian=True)
    assert report.ok and not [r for r in report.rows if r.level == "consistency"]
