"""``crosscheck`` on zfit losses: zfit's own derivatives (``'zfit'``) beside zgrad's strategies."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import stats

import zgrad

with warnings.catch_warnings():
    # zfit announces on import that it silences TensorFlow's logs, and TensorFlow Probability (which
    # it imports) still uses distutils' version classes: neither concerns zgrad.
    warnings.filterwarnings("ignore", "TensorFlow warnings are by default suppressed", UserWarning)
    warnings.filterwarnings("ignore", "distutils Version classes", DeprecationWarning)
    zfit = pytest.importorskip("zfit", reason="zfit is not installed: pip install -e '.[interop]'")

pytestmark = [
    # zfit 0.28 warns about its own deprecated space API (rect_lower, __len__, ...) and unnamed Data
    # while it builds and evaluates a loss; these warnings come from zfit's modules, not from zgrad.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:zfit.*"),
]

LOW, HIGH = -5.0, 5.0
START = {"mu": 0.2, "sigma": 1.1}


@pytest.fixture(scope="module")
def gauss_nll():
    """A zfit UnbinnedNLL of a Gauss on [-5, 5] with 2000 events; its Parameters and data."""
    obs = zfit.Space("x", LOW, HIGH)
    mu = zfit.Parameter("zgrad_test_mu", START["mu"], -2.0, 2.0)
    sigma = zfit.Parameter("zgrad_test_sigma", START["sigma"], 0.1, 5.0)
    data = np.random.default_rng(7).normal(0.0, 1.0, 2000)
    assert np.all((data > LOW) & (data < HIGH))  # no event is cut away: the closed form sees them all
    model = zfit.pdf.Gauss(obs=obs, mu=mu, sigma=sigma)
    loss = zfit.loss.UnbinnedNLL(model, zfit.Data.from_numpy(obs=obs, array=data))
    return loss, mu, sigma, data


def closed_form_gradient(data):
    """d NLL / d(mu, sigma) of a Gaussian truncated to [LOW, HIGH], with its normalisation."""

    def gradient(v):
        mu, sigma = v
        a, b = (LOW - mu) / sigma, (HIGH - mu) / sigma
        norm = stats.norm.cdf(b) - stats.norm.cdf(a)
        dnorm_dmu = (stats.norm.pdf(a) - stats.norm.pdf(b)) / sigma
        dnorm_dsigma = (a * stats.norm.pdf(a) - b * stats.norm.pdf(b)) / sigma
        n, r = data.size, data - mu
        return [
            -np.sum(r) / sigma**2 + n * dnorm_dmu / norm,
            n / sigma - np.sum(r**2) / sigma**3 + n * dnorm_dsigma / norm,
        ]

    return gradient


def test_zfit_autodiff_and_numerical_agree_with_the_closed_form(gauss_nll):
    loss, _, _, data = gauss_nll
    report = zgrad.crosscheck(loss, reference=closed_form_gradient(data))
    assert report.ok, str(report)
    assert report.strategies == ("autodiff", "numerical", "zfit")
    assert report.params == ("zgrad_test_mu", "zgrad_test_sigma")
    assert report.reference_source == "closed form" and report.errordef == 0.5
    assert [(r.strategy, r.param) for r in report.rows] == [
        (s, p) for s in report.strategies for p in report.params
    ]
    expected = closed_form_gradient(data)(np.array([START["mu"], START["sigma"]]))
    for row in report.rows:  # each strategy on its own, not only relative to the others
        assert row.value == pytest.approx(expected[report.params.index(row.param)], rel=1e-6)


def test_default_reference_is_zgrad_autodiff_and_json_names_the_strategies(gauss_nll):
    loss = gauss_nll[0]
    report = zgrad.crosscheck(loss, points=[{"zgrad_test_mu": -0.3}])
    assert report.ok, str(report)
    assert report.reference_source == "autodiff"
    assert any("zfit loss UnbinnedNLL" in note for note in report.notes)
    document = json.loads(report.to_json())
    assert document["strategies"] == ["autodiff", "numerical", "zfit"]
    assert sorted({row["strategy"] for row in document["rows"]}) == ["autodiff", "numerical", "zfit"]
    assert "errordef = 0.5 (from the zfit loss UnbinnedNLL)" in " ".join(document["notes"])


def test_parameters_are_restored_bit_for_bit(gauss_nll):
    loss, mu, sigma = gauss_nll[:3]
    mu.assign(0.1 + 0.2)  # values with a long binary expansion: a rounded restore would show
    sigma.assign(1.0 / 3.0)
    try:
        before = [float(mu.numpy()).hex(), float(sigma.numpy()).hex()]
        report = zgrad.crosscheck(loss, points=[[0.5, 0.9], {"zgrad_test_sigma": 1.7}], hessian=True)
        assert report.ok, str(report)
        assert report.points[1].tolist() == [0.1 + 0.2, 1.7]  # the check did move the Parameters
        assert [float(mu.numpy()).hex(), float(sigma.numpy()).hex()] == before
    finally:
        mu.assign(START["mu"])
        sigma.assign(START["sigma"])


def test_a_biased_zfit_gradient_is_flagged_for_that_component_only(gauss_nll, monkeypatch):
    loss, mu, sigma = gauss_nll[:3]
    exact = loss.value_gradient

    def biased(params):
        value, grad = exact(params)
        return value, grad * np.array([1.0, 1.01])

    monkeypatch.setattr(loss, "value_gradient", biased)
    report = zgrad.crosscheck(loss, strategies=["numerical", "zfit"])
    assert [(r.strategy, r.param) for r in report.failures] == [("zfit", "zgrad_test_sigma")]
    assert (float(mu.numpy()), float(sigma.numpy())) == (START["mu"], START["sigma"])


def test_wrong_inputs_name_what_was_given(gauss_nll):
    loss, mu = gauss_nll[:2]
    with pytest.raises(ValueError, match=r"x0=, gradient= are for a function of a vector; a zfit loss"):
        zgrad.crosscheck(loss, x0=[0.1, 1.0], gradient=lambda x: x)
    stranger = zgrad.Parameter("stranger", 1.0)
    with pytest.raises(ValueError, match=r"not a Parameter of this zfit loss; its Parameters are \["):
        zgrad.crosscheck(loss, [mu, stranger])
    with pytest.raises(ValueError, match=r"Unknown gradient strategy 'jax'"):
        zgrad.crosscheck(loss, strategies=["zfit", "jax"])
    with pytest.raises(ValueError, match=r"each strategy once, among \[.*'zfit'\]; got \['zfit', 'zfit'\]"):
        zgrad.crosscheck(loss, strategies=["zfit", "zfit"])
    assert float(mu.numpy()) == START["mu"]


def test_a_subset_of_the_parameters(gauss_nll):
    loss, _, sigma, data = gauss_nll
    report = zgrad.crosscheck(loss, [sigma], strategies=["zfit", "numerical"])
    assert report.ok, str(report)
    assert report.params == ("zgrad_test_sigma",) and report.strategies == ("zfit", "numerical")
    expected = closed_form_gradient(data)(np.array([START["mu"], START["sigma"]]))[1]
    assert [r.value for r in report.rows] == pytest.approx([expected, expected], rel=1e-6)


ZFIT_FACTORIES = """
import numpy as np
import zfit


def _loss():
    obs = zfit.Space("x", -5.0, 5.0)
    mu = zfit.Parameter("zgrad_cli_mu", 0.2, -2.0, 2.0)
    sigma = zfit.Parameter("zgrad_cli_sigma", 1.1, 0.1, 5.0)
    data = np.random.default_rng(11).normal(0.0, 1.0, 1000)
    model = zfit.pdf.Gauss(obs=obs, mu=mu, sigma=sigma)
    return zfit.loss.UnbinnedNLL(model, zfit.Data.from_numpy(obs=obs, array=data))


def plain():
    return _loss()


def biased_reference():
    loss = _loss()
    exact = loss.value_gradient
    return loss, lambda v: np.asarray(exact(list(loss.get_params()))[1]) * [1.01, 1.0]
"""


def test_the_cli_takes_a_factory_returning_a_zfit_loss(tmp_path, monkeypatch, capsys):
    from zgrad.cli import main

    name = "zgrad_zfit_cli_factories"
    (tmp_path / f"{name}.py").write_text(ZFIT_FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, name, raising=False)
    out = tmp_path / "report"
    assert main(["crosscheck", f"{name}:plain", "-o", str(out), "--no-html"]) == 0
    document = json.loads((out / "report.json").read_text())
    assert document["ok"] is True and document["reference_source"] == "autodiff"
    assert document["strategies"] == ["autodiff", "numerical", "zfit"]
    assert document["params"] == ["zgrad_cli_mu", "zgrad_cli_sigma"]
    capsys.readouterr()
    # a reference 1 % off in mu: every strategy disagrees with it there, and only there
    assert main(["crosscheck", f"{name}:biased_reference", "-o", str(out), "--no-html"]) == 1
    failures = json.loads((out / "report.json").read_text())["summary"]["failures"]
    expected = [f"{s}: zgrad_cli_mu @ 0 (gradient)" for s in ("autodiff", "numerical", "zfit")]
    assert sorted(failures) == expected
