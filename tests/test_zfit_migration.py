"""What a zfit user types: the forms zgrad accepts as aliases, and the refusals that name zgrad's way.

Each test matches a line of docs/from_zfit.rst: supported forms give the same numbers as zgrad's
own spelling (or a closed form); refused forms raise the message the page quotes.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import zgrad

P = zgrad.Parameter
OBS = zgrad.Space("x", limits=(-5.0, 5.0))


def _quadratic(a, b):
    """chi2 with minimum at a = 1, b = -2 and errors 0.5 and 2 (errordef 1)."""
    return ((a - 1.0) / 0.5) ** 2 + ((b + 2.0) / 2.0) ** 2


@pytest.fixture
def quadratic_fit():
    a, b = P("a", 0.0), P("b", 0.0)
    loss = zgrad.losses.SimpleLoss(functools.partial(_quadratic, a, b), [a, b], errordef=1.0)
    result = zgrad.minimize.Minuit().minimize(loss)
    assert result.valid
    return result, a, b


# --- item 2: constraints, zfit's keyword names ----------------------------------------------------


def test_gaussian_constraint_takes_zfit_names_and_lists_of_one():
    mu = P("mu", 1.0)
    zgrad_form = zgrad.losses.GaussianConstraint(mu, observed=0.25, sigma=0.5)
    for zfit_form in (
        zgrad.losses.GaussianConstraint(params=mu, observation=0.25, uncertainty=0.5),
        zgrad.losses.GaussianConstraint(params=[mu], observation=[0.25], uncertainty=[0.5]),
        zgrad.losses.GaussianConstraint([mu], np.array([0.25]), (0.5,)),
    ):
        assert zfit_form.param is mu
        assert (zfit_form.observed, zfit_form.sigma) == (0.25, 0.5)
        assert float(zfit_form.chi2()) == float(zgrad_form.chi2()) == 2.25  # ((1 - 0.25) / 0.5)**2


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"param": "p", "params": "p", "observed": 0.0, "sigma": 1.0},
            TypeError,
            "give param= or zfit's params=, not both",
        ),
        ({"param": "p", "sigma": 1.0}, TypeError, r"observed \(zfit: observation\) is missing"),
        (
            {"params": ["p", "q"], "observation": [0.0, 1.0], "uncertainty": [1.0, 1.0]},
            ValueError,
            r"constrains one Parameter; got 2 values for param\. Build one constraint per Parameter",
        ),
        ({"param": "p", "observed": 0.0, "uncertainty": []}, ValueError, "got 0 values for sigma"),
    ],
)
def test_gaussian_constraint_refusals_name_what_to_do(kwargs, error, message):
    params = {"p": P("p", 0.0), "q": P("q", 0.0)}
    for key in ("param", "params"):
        if key in kwargs:
            value = kwargs[key]
            kwargs[key] = [params[v] for v in value] if isinstance(value, list) else params[value]
    with pytest.raises(error, match=message):
        zgrad.losses.GaussianConstraint(**kwargs)


def test_a_loss_takes_one_constraint_as_zfit_does():
    mu, sigma = P("mu", 0.3), P("sigma", 1.2, lower=0.1)
    data = np.array([-0.5, 0.1, 0.7, 1.9])
    c = zgrad.losses.GaussianConstraint(mu, observed=0.0, sigma=0.5)
    model = zgrad.models.Gauss(OBS, mu, sigma)
    single = zgrad.losses.UnbinnedNLL(model, data, constraints=c)
    plain = zgrad.losses.UnbinnedNLL(model, data)
    assert single.constraints == [c]
    assert single.value() == pytest.approx(plain.value() + 0.5 * (0.3 / 0.5) ** 2, rel=1e-12)


def test_simultaneous_fit_is_a_sum_of_losses_sharing_parameters():
    mu = P("mu", 0.2)
    s1, s2 = P("s1", 1.0, lower=0.1), P("s2", 2.0, lower=0.1)
    x1, x2 = np.array([-0.3, 0.4, 1.1]), np.array([-2.0, 0.5, 3.0, 4.0])
    nll1 = zgrad.losses.UnbinnedNLL(zgrad.models.Gauss(OBS, mu, s1), x1)
    nll2 = zgrad.losses.UnbinnedNLL(zgrad.models.Gauss(OBS, mu, s2), x2)
    total = nll1 + nll2
    assert [p.name for p in total.params] == ["mu", "s1", "s2"]
    assert total.value() == pytest.approx(nll1.value() + nll2.value(), rel=1e-12)


# --- item 3: zfit's list form of a loss ---------------------------------------------------------


@pytest.mark.parametrize("loss", ["UnbinnedNLL", "ExtendedUnbinnedNLL"])
def test_unbinned_list_form_points_to_a_sum_of_losses(loss):
    model = zgrad.models.Gauss(OBS, P("mu", 0.0), P("sigma", 1.0))
    with pytest.raises(TypeError) as info:
        getattr(zgrad.losses, loss)(model=[model, model], data=[np.zeros(3), np.ones(3)])
    assert str(info.value) == (
        f"{loss} takes one model and its data; got a list of 2 models. For a simultaneous fit build one "
        f"loss per model and add them: {loss}(model_a, data_a) + {loss}(model_b, data_b)."
    )


def test_binned_list_form_points_to_a_sum_of_losses():
    model = zgrad.models.Gauss(OBS, P("mu", 0.0), P("sigma", 1.0))
    with pytest.raises(TypeError, match=r"BinnedNLL\(model_a, counts_a\) \+ BinnedNLL\(model_b, counts_b\)"):
        zgrad.losses.BinnedNLL((model, model), counts=[1, 2], edges=[-1.0, 0.0, 1.0])


# --- item 4: a single extended PDF -----------------------------------------------------------------


def test_a_single_pdf_with_a_yield_is_a_sum_of_one():
    mu, sigma, n = P("mu", 0.3), P("sigma", 1.2, lower=0.1), P("n", 4.5, lower=0.0)
    gauss = zgrad.models.Gauss(OBS, mu, sigma)
    extended = zgrad.models.Sum([gauss], yields=[n])
    x = np.array([-1.0, 0.2, 2.5])
    assert extended.is_extended and float(extended.expected_events()) == 4.5
    np.testing.assert_allclose(extended.pdf(x), gauss.pdf(x), rtol=1e-14)
    # extended NLL: nu - N log nu - sum log pdf(x_i)
    expected = 4.5 - 3 * math.log(4.5) - float(np.sum(np.log(gauss.pdf(x))))
    assert zgrad.losses.ExtendedUnbinnedNLL(extended, x).value() == pytest.approx(expected, rel=1e-12)


def test_zfit_ways_to_extend_a_pdf_name_the_sum():
    n = P("n", 10.0)
    gauss = zgrad.models.Gauss(OBS, P("mu", 0.0), P("sigma", 1.0))
    message = r"no create_extended\(\) \(a zfit name\).*Sum\(\[model\], yields=\[n\]\)"
    with pytest.raises(AttributeError, match=message):
        gauss.create_extended(n)
    assert not hasattr(gauss, "set_yield")
    message = r"Gauss takes no extended=.*Sum\(\[Gauss\(\.\.\.\)\], yields=\[n\]\)"
    with pytest.raises(TypeError, match=message):
        zgrad.models.Gauss(OBS, P("mu", 0.0), P("sigma", 1.0), extended=n)


# --- item 5: results ---------------------------------------------------------------------------------


def test_minos_takes_a_list_as_zfit_does(quadratic_fit):
    result, _, _ = quadratic_fit
    listed = result.minos(["a", "b"])
    assert dict(listed) == dict(result.minos("a", "b"))
    assert listed["a"] == pytest.approx((-0.5, 0.5), rel=1e-5)  # a parabola: symmetric, closed form
    assert listed["b"] == pytest.approx((-2.0, 2.0), rel=1e-5)
    with pytest.raises(ValueError, match=r"unknown parameters \['c'\]"):
        result.minos(["a", "c"])


@pytest.mark.parametrize("strategy", [None, "autodiff", "numerical"])
def test_hesse_recomputes_errors_and_moves_nothing(quadratic_fit, strategy):
    result, a, b = quadratic_fit
    a.set_value(3.0)
    errors = result.hesse(strategy=strategy)
    assert list(errors) == ["a", "b"]
    assert errors["a"] == pytest.approx(0.5, rel=1e-8) and errors["b"] == pytest.approx(2.0, rel=1e-8)
    assert float(a.value()) == 3.0 and float(b.value()) == pytest.approx(-2.0, abs=1e-6)


def test_hesse_of_a_loss_that_leaves_a_parameter_free_names_it():
    a, c = P("a", 0.0), P("c", 0.0)
    loss = zgrad.losses.SimpleLoss(lambda: (a - 1.0) ** 2 + 0.0 * c, [a, c], errordef=1.0)
    result = zgrad.minimize.Minuit().minimize(loss)
    with pytest.raises(ValueError, match=r"hesse: the Hessian is singular: \['c'\]"):
        result.hesse(strategy="autodiff")
    with pytest.raises(zgrad.errors.GradientError, match="The .minuit. strategy provides no gradient"):
        result.hesse(strategy="minuit")


def test_update_params_puts_the_parameters_back_at_the_best_fit(quadratic_fit):
    result, a, b = quadratic_fit
    zgrad.set_values([a, b], [5.0, 6.0])
    assert result.update_params() is result
    assert (float(a.value()), float(b.value())) == (result.values["a"], result.values["b"])


def test_set_values_takes_numbers_mappings_and_results(quadratic_fit):
    result, a, b = quadratic_fit
    zgrad.set_values([a, b], [0.5, 0.25])
    assert (float(a.value()), float(b.value())) == (0.5, 0.25)
    zgrad.set_values([b, a], {"a": 1.5, "b": -1.5, "unused": 9.0})
    assert (float(a.value()), float(b.value())) == (1.5, -1.5)
    zgrad.set_values(a, np.float32(2.0))
    assert float(a.value()) == 2.0
    zgrad.set_values([a, b], result)
    assert (float(a.value()), float(b.value())) == (result.values["a"], result.values["b"])
    with zgrad.set_values([a, b], (7.0, 8.0)) as params:
        assert params == [a, b] and float(b.value()) == 8.0
    assert (float(a.value()), float(b.value())) == (result.values["a"], result.values["b"])


def test_set_values_changes_nothing_when_it_refuses():
    a, b = P("a", 0.0), P("b", 0.5, lower=0.0, upper=1.0)
    with pytest.raises(ValueError, match=r"Parameter 'b': value 2.0 is outside its limits \[0.0, 1.0\]"):
        zgrad.set_values([a, b], [3.0, 2.0])
    assert (float(a.value()), float(b.value())) == (0.0, 0.5)
    with pytest.raises(ValueError, match=r"set_values: 1 values for 2 Parameters"):
        zgrad.set_values([a, b], [1.0])
    with pytest.raises(ValueError, match=r"set_values: no value for \['b'\]"):
        zgrad.set_values([a, b], {"a": 1.0})
    with pytest.raises(TypeError, match="params must hold zgrad Parameters; got 'a'"):
        zgrad.set_values(["a"], [1.0])
    assert (float(a.value()), float(b.value())) == (0.0, 0.5)


# --- item 6: argument forms --------------------------------------------------------------------------


def test_space_takes_zfit_positional_limits():
    assert zgrad.Space("x", -10, 10) == zgrad.Space("x", limits=(-10.0, 10.0)) == zgrad.Space("x", (-10, 10))
    with pytest.raises(TypeError, match=r"limits=\(lower, upper\) or a lower and an upper limit"):
        zgrad.Space("x", (-10, 10), 20)
    with pytest.raises(ValueError, match="lower < upper"):
        zgrad.Space("x", 10, -10)


def test_models_name_zgrads_argument_order():
    lam = P("lam", -0.2)
    first = r"Exponential: zgrad models take the observable first, Exponential\(obs, lam\)"
    with pytest.raises(TypeError, match=first):
        zgrad.models.Exponential(lam, obs=OBS)
    swapped = r"obs must be a zgrad.Space; got <zgrad.Parameter 'lam'.*Exponential\(obs, lam\)"
    with pytest.raises(TypeError, match=swapped):
        zgrad.models.Exponential(lam, OBS)
    with pytest.raises(TypeError, match=r"Gauss\(obs, mu, sigma\)"):
        zgrad.models.Gauss(P("mu", 0.0), P("sigma", 1.0), obs=OBS)
    # keywords in zfit's order work as they are
    assert zgrad.models.Exponential(lam=lam, obs=OBS).params == {"lam": lam}


def test_plain_floats_for_shape_parameters_are_refused_with_the_fixed_parameter_way():
    with pytest.raises(TypeError, match=r"parameter 'lam' must be a zgrad.Parameter.*floating=False"):
        zgrad.models.Exponential(OBS, -0.2)


# --- item 7: data outside the space ------------------------------------------------------------------


def test_data_outside_the_space_is_refused_and_cut_with_inside():
    model = zgrad.models.Gauss(OBS, P("mu", 0.0), P("sigma", 1.0))
    data = np.array([-6.0, -1.0, 0.0, 4.0, 7.5])
    message = r"2 of 5 events lie outside the range \(-5.0, 5.0\).*select the events"
    with pytest.raises(ValueError, match=message):
        zgrad.losses.UnbinnedNLL(model, data)
    loss = zgrad.losses.UnbinnedNLL(model, data[OBS.inside(data)])
    assert loss.n_events == 3
    expected = -float(np.sum(np.log(model.pdf(np.array([-1.0, 0.0, 4.0])))))
    assert loss.value() == pytest.approx(expected, rel=1e-12)


# --- item 8: run-manager names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("set_graph_mode", "zgrad.run.set_mode(graph=...)"),
        ("set_autograd_mode", "zgrad.run.set_mode(autograd=...)"),
        ("get_graph_mode", "zgrad.run.current_policy_graph()"),
        ("get_autograd_mode", "zgrad.run.current_policy_autograd()"),
        ("set_mode_default", "zgrad.run.set_mode(**zgrad.RunManager.DEFAULT_MODE)"),
        ("set_n_cpu", "zgrad.run.set_cpus_explicit(intra, inter)"),
        ("aquire_cpu", "zgrad.run.set_cpus_explicit(intra, inter)"),
    ],
)
def test_zfit_run_names_are_refused_naming_the_replacement(name, hint):
    assert not hasattr(zgrad.run, name)
    with pytest.raises(AttributeError) as info:
        getattr(zgrad.run, name)
    assert str(info.value).startswith(f"zgrad.run has no {name!r} (a zfit name); use ")
    assert hint in str(info.value)


def test_other_missing_run_names_raise_the_plain_attribute_error():
    with pytest.raises(AttributeError, match=r"^'RunManager' object has no attribute 'no_such_name'$"):
        zgrad.run.no_such_name  # noqa: B018


def test_the_mapped_replacements_do_what_the_zfit_names_did():
    with zgrad.run.set_mode(graph=False):
        assert zgrad.run.current_policy_graph() is False
        with zgrad.run.set_mode(**zgrad.RunManager.DEFAULT_MODE):
            assert zgrad.run.mode == {"autograd": True, "graph": "auto"}


def test_deprecated_experimental_names_warn_with_future_warning():
    message = r"experimental_is_eager is deprecated .* zgrad 1.0; use .*current_policy_graph\(\) is False"
    with pytest.warns(FutureWarning, match=message):
        assert zgrad.run.experimental_is_eager is False
