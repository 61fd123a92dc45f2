"""Closed-form Hessians of unbinned NLLs (``zgrad.losses._jet_derivatives``) against nested tapes.

Where every component of a model has a closed-form log-shape jet (Gauss, Exponential and
Sums of them), the loss's Hessian hook sums per-event closed-form derivatives instead of
differentiating the data twice by tapes. Every case here is compared with a nested-tape
Hessian of the whole loss value, an independent computation, under an explicit tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import zgrad
from zgrad.gradients import autodiff
from zgrad.losses import _jet_derivatives, _kernel, unbinned

P = zgrad.Parameter
OBS = zgrad.Space("x", limits=(-5.0, 5.0))
RTOL = 1e-11


def _data(n=4000, seed=11):
    rng = np.random.default_rng(seed)
    signal = rng.normal(0.2, 0.8, n // 3)
    return np.concatenate([signal[np.abs(signal) < 5], rng.uniform(-5.0, 5.0, n - n // 3)])


def _tape_reference(loss, params):
    @tf.function
    def reference():
        return autodiff.tape_hessian(loss._value_tensor, tuple(params), loss)

    return [t.numpy() for t in reference()]


def _closed(loss, params):
    params = tuple(params)
    assert _jet_derivatives.supported(loss.model, params)
    return [t.numpy() for t in loss.zgrad_hessian(params, autodiff._identities(params))]


def _assert_close(loss, params):
    value, grad, hess = _closed(loss, params)
    ref_value, ref_grad, ref_hess = _tape_reference(loss, params)
    assert value == pytest.approx(ref_value, rel=1e-13)
    np.testing.assert_allclose(grad, ref_grad, rtol=RTOL, atol=RTOL * np.max(np.abs(ref_grad)))
    np.testing.assert_allclose(hess, ref_hess, rtol=RTOL, atol=RTOL * np.max(np.abs(ref_hess)))
    np.testing.assert_array_equal(hess, hess.T)
    return hess


def _gauss_expo():
    mu, sigma, lam = P("mu", 0.3), P("sigma", 0.9, lower=0.05), P("lam", -0.3)
    return mu, sigma, lam, zgrad.models.Gauss(OBS, mu, sigma), zgrad.models.Exponential(OBS, lam)


def test_extended_sum_with_yields_all_and_some_parameters():
    mu, sigma, lam, gauss, expo = _gauss_expo()
    n_sig, n_bkg = P("n_sig", 1200.0), P("n_bkg", 2900.0)
    loss = zgrad.losses.ExtendedUnbinnedNLL(zgrad.models.Sum([gauss, expo], yields=[n_sig, n_bkg]), _data())
    full = _assert_close(loss, [mu, sigma, lam, n_sig, n_bkg])
    assert np.all(np.linalg.eigvalsh(full) != 0)
    _assert_close(loss, [sigma, n_bkg])  # a subset, in another order
    _assert_close(loss, [n_sig])  # only a yield: no log-shape depends on it
    _assert_close(loss, [lam, mu])


def test_sum_with_fractions_weights_and_three_components_sharing_a_parameter():
    mu, sigma, lam, gauss, expo = _gauss_expo()
    wide = zgrad.models.Gauss(OBS, mu, P("wide", 2.5, lower=0.1))  # shares mu with gauss
    f1, f2 = P("f1", 0.25), P("f2", 0.3)
    weights = np.random.default_rng(5).uniform(0.5, 1.5, _data().size)
    loss = zgrad.losses.UnbinnedNLL(
        zgrad.models.Sum([gauss, wide, expo], fracs=[f1, f2]),
        _data(),
        weights=weights,
        constraints=[zgrad.losses.GaussianConstraint(mu, 0.25, 0.1)],
    )
    _assert_close(loss, list(loss.params))


# z = -|lam| * 10 crosses the series cut of the normalisation (|z| = 0.5) and its sign switch
@pytest.mark.parametrize("lam_value", [-0.4, -0.051, -0.049, 0.0, 1e-9, 0.03, 0.35, 4.0])
def test_single_models(lam_value):
    mu, sigma, _, gauss, _ = _gauss_expo()
    _assert_close(zgrad.losses.UnbinnedNLL(gauss, _data()), [mu, sigma])
    lam = P("lam_single", lam_value)  # the exponential's reference point switches with its sign
    _assert_close(zgrad.losses.UnbinnedNLL(zgrad.models.Exponential(OBS, lam), _data()), [lam])


def test_chunks_give_the_one_pass_numbers(monkeypatch):
    mu, sigma, lam, gauss, expo = _gauss_expo()
    n_sig, n_bkg = P("n_sig", 1200.0), P("n_bkg", 2900.0)
    loss = zgrad.losses.ExtendedUnbinnedNLL(zgrad.models.Sum([gauss, expo], yields=[n_sig, n_bkg]), _data())
    params = [mu, sigma, lam, n_sig, n_bkg]
    one_pass = _closed(loss, params)
    monkeypatch.setattr(unbinned, "GRADIENT_CHUNK", 1000)  # 5 chunks, the last one short
    loops = []
    real_while_loop = _kernel.tf.while_loop
    monkeypatch.setattr(
        _kernel.tf, "while_loop", lambda *a, **k: loops.append(1) or real_while_loop(*a, **k)
    )
    zgrad.run.clear_graph_cache()
    chunked = _closed(loss, params)
    assert loops == [1]
    for a, b in zip(one_pass, chunked, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12)



def test_fits_with_the_closed_form_match_the_tape_fit():
    """A whole fit (MIGRAD with the exact Hessian, then HESSE) agrees with the tape path's."""
    data = _data(20000, seed=3)

    def fit(monkeypatch_closed: bool):
        mu, sigma, lam, gauss, expo = _gauss_expo()
        n_sig, n_bkg = P("n_sig", 6000.0), P("n_bkg", 14000.0)
        loss = zgrad.losses.ExtendedUnbinnedNLL(zgrad.models.Sum([gauss, expo], yields=[n_sig, n_bkg]), data)
        with pytest.MonkeyPatch.context() as mp:
            if not monkeypatch_closed:
                mp.setattr(_jet_derivatives, "supported", lambda model, params: False)
            zgrad.run.clear_graph_cache()
            return zgrad.minimize.Minuit().minimize(loss)

    closed, taped = fit(True), fit(False)
    assert closed.valid and taped.valid
    for name in ("mu", "sigma", "lam", "n_sig", "n_bkg"):
        assert closed.values[name] == pytest.approx(taped.values[name], abs=1e-4 * taped.errors[name])
        assert closed.errors[name] == pytest.approx(taped.errors[name], rel=1e-6)


def test_models_without_jets_and_foreign_parameters_take_the_tape_path():
    mu, sigma, lam, gauss, expo = _gauss_expo()
    cb = zgrad.models.CrystalBall(OBS, mu, sigma, P("alpha", 1.5, lower=0.1), P("n", 3.0, lower=0.5))
    assert not _jet_derivatives.supported(cb, (mu,))
    assert not _jet_derivatives.supported(zgrad.models.Sum([cb, expo], fracs=[P("f", 0.4)]), (mu, lam))
    assert not _jet_derivatives.supported(gauss, (mu, lam))  # lam is not a parameter of this model
    assert not _jet_derivatives.supported(gauss, ())
    assert _jet_derivatives.supported(zgrad.models.Sum([gauss, expo], fracs=[P("g", 0.4)]), (mu, lam))


def test_a_jet_missing_a_first_derivative_is_an_error(monkeypatch):
    mu, sigma, _, gauss, _ = _gauss_expo()
    real = gauss._log_shape_jet

    def incomplete(x):
        u, first, second = real(x)
        return u, {"mu": first["mu"]}, second

    monkeypatch.setattr(gauss, "_log_shape_jet", incomplete)
    loss = zgrad.losses.UnbinnedNLL(gauss, _data())
    with pytest.raises(RuntimeError, match=r"no first derivative for \['sigma'\]"):
        loss.zgrad_hessian((mu, sigma), autodiff._identities((mu, sigma)))


def test_float32_models():
    f32 = tf.float32
    mu, sigma = P("mu32", 0.3, dtype=f32), P("sigma32", 0.9, lower=0.05, dtype=f32)
    lam = P("lam32", -0.3, dtype=f32)
    n_sig, n_bkg = P("ns32", 1200.0, dtype=f32), P("nb32", 2900.0, dtype=f32)
    model = zgrad.models.Sum(
        [zgrad.models.Gauss(OBS, mu, sigma), zgrad.models.Exponential(OBS, lam)], yields=[n_sig, n_bkg]
    )
    loss = zgrad.losses.ExtendedUnbinnedNLL(model, _data())
    params = [mu, sigma, lam, n_sig, n_bkg]
    value, grad, hess = _closed(loss, params)
    assert hess.dtype == np.float32
    ref_value, ref_grad, ref_hess = _tape_reference(loss, params)
    assert value == pytest.approx(ref_value, rel=1e-6)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-5 * np.max(np.abs(ref_grad)))
    np.testing.assert_allclose(hess, ref_hess, rtol=1e-5, atol=1e-5 * np.max(np.abs(ref_hess)))
