"""zgrad.toys and ToyStudy: seeds, parallel backends, pulls, failures, restored state, JSON and HTML."""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import zgrad
from zgrad.toystudy import _spec


def _gauss(mu=0.0, sigma=1.0):
    obs = zgrad.Space("x", limits=(-5.0, 5.0))
    mu_p = zgrad.Parameter("mu", mu, -2.0, 2.0)
    sigma_p = zgrad.Parameter("sigma", sigma, 0.2, 3.0)
    return zgrad.models.Gauss(obs=obs, mu=mu_p, sigma=sigma_p), mu_p, sigma_p


def _extended(n_sig=300.0):
    obs = zgrad.Space("x", limits=(-5.0, 5.0))
    mu = zgrad.Parameter("mu", 0.0, -2.0, 2.0)
    sigma = zgrad.Parameter("sigma", 1.0, 0.2, 3.0, floating=False)
    n = zgrad.Parameter("n_sig", n_sig, 0.0, 10_000.0)
    return zgrad.models.Sum([zgrad.models.Gauss(obs=obs, mu=mu, sigma=sigma)], yields=[n]), n


def _numbers(study):
    """Everything of a study but its wall times, as plain data (NaN as 'nan', so equal NaNs compare equal)."""
    out = json.loads(study.to_json())
    del out["seconds"]
    return out


# --- seeds and reproducibility ----------------------------------------------------------------------


def test_same_seed_same_numbers_and_seeds_from_the_seed_sequence():
    model, _, _ = _gauss()
    first = zgrad.toys(model, 5, n_events=300, seed=11, progress=False)
    again = zgrad.toys(model, 5, n_events=300, seed=11, progress=False)
    assert _numbers(first) == _numbers(again)
    expected = np.random.SeedSequence(11).generate_state(5, dtype=np.uint64) >> np.uint64(1)
    assert first.seed.tolist() == [int(s) for s in expected] and first.base_seed == 11
    assert first.seed.dtype == np.int64 and first.n_events.tolist() == [300] * 5
    # a shorter study with the same seed is the longer one's first toys
    short = zgrad.toys(model, 3, n_events=300, seed=11, progress=False)
    assert short.values["mu"].tolist() == first.values["mu"][:3].tolist()
    other = zgrad.toys(model, 5, n_events=300, seed=12, progress=False)
    assert not np.any(other.values["mu"] == first.values["mu"])


def test_a_toy_is_the_documented_draw_and_fit():
    # toy k: the Parameters at the truth, model.sample(n, seed=study.seed[k]), UnbinnedNLL, Minuit()
    model, mu, sigma = _gauss()
    study = zgrad.toys(model, 3, n_events=250, truth={"mu": 0.3}, seed=5, progress=False)
    k = 2
    mu.set_value(0.3)
    data = model.sample(250, seed=int(study.seed[k]))
    result = zgrad.minimize.Minuit().minimize(zgrad.losses.UnbinnedNLL(model, data))
    assert study.values["mu"][k] == result.values["mu"] and study.errors["sigma"][k] == result.errors["sigma"]
    assert study.nfcn[k] == result.nfcn and study.valid[k] == result.valid


@pytest.mark.subprocess
def test_two_spawned_workers_give_the_serial_numbers():
    model, mu, _ = _gauss()
    serial = zgrad.toys(model, 5, n_events=300, seed=3, progress=False)
    parallel = zgrad.toys(model, 5, n_events=300, seed=3, workers=2, progress=False)
    assert _numbers(parallel) == _numbers(serial)
    assert float(mu.numpy()) == 0.0


def _local_cluster(**options):
    try:
        from dask.distributed import LocalCluster
    except ImportError as exc:  # the dask extra is part of CI's install: a missing one is a failure
        pytest.fail(f"dask.distributed is required for this test (pip install -e '.[dask]'): {exc}")
    return LocalCluster(n_workers=1, dashboard_address=":0", **options)


def test_dask_threads_give_the_serial_numbers():
    from dask.distributed import Client

    model, _, _ = _gauss()
    serial = zgrad.toys(model, 4, n_events=300, seed=3, progress=False)
    # two worker threads: two blocks of toys fitted at the same time in this process
    with _local_cluster(processes=False, threads_per_worker=2) as cluster, Client(cluster) as client:
        on_client = zgrad.toys(model, 4, n_events=300, seed=3, scheduler=client, progress=False)
        assert client.status == "running"  # a client given by the caller is left open
    assert _numbers(on_client) == _numbers(serial)


@pytest.mark.subprocess
def test_dask_worker_processes_give_the_serial_numbers():
    model, _, _ = _gauss()
    serial = zgrad.toys(model, 4, n_events=300, seed=3, progress=False)
    with _local_cluster(processes=True, threads_per_worker=1) as cluster:
        address = cluster.scheduler_address
        remote = zgrad.toys(model, 4, n_events=300, seed=3, scheduler=address, progress=False)
    assert _numbers(remote) == _numbers(serial)


# --- statistics -------------------------------------------------------------------------------------


def test_pulls_of_a_gaussian_fit_have_mean_zero_and_width_one():
    model, _, _ = _gauss(mu=0.5, sigma=1.3)
    begin = time.perf_counter()
    study = zgrad.toys(model, 300, n_events=200, seed=2024, progress=False)
    seconds = time.perf_counter() - begin
    assert study.valid.all(), [m for m in study.messages if m]
    summary = study.summary()
    for name in ("mu", "sigma"):
        pulls = study.pulls(name)
        assert pulls.size == 300
        # an independent computation of the pulls and their statistics
        expected = (study.values[name] - study.truth[name]) / study.errors[name]
        assert pulls.tolist() == expected.tolist()
        s = summary[name]
        assert s["pull_mean"] == pytest.approx(float(np.mean(pulls)))
        assert s["pull_width"] == pytest.approx(float(np.std(pulls, ddof=1)))
        assert s["pull_mean_error"] == pytest.approx(s["pull_width"] / math.sqrt(300))
        assert s["pull_width_error"] == pytest.approx(s["pull_width"] / math.sqrt(598))
        assert abs(s["pull_mean"]) < 3 * s["pull_mean_error"], s
        assert abs(s["pull_width"] - 1.0) < 3 * s["pull_width_error"], s
        assert (s["n_toys"], s["n_valid"], s["n_at_limit"]) == (300, 300, 0)
    # the Hesse error of mu at 200 events is sigma / sqrt(200)
    assert np.median(study.errors["mu"]) == pytest.approx(1.3 / math.sqrt(200), rel=0.05)
    median = np.median(study.seconds) * 1e3
    print(f"\n300 Gaussian toys of 200 events: {seconds:.1f} s, median {median:.1f} ms per toy")


def test_extended_model_draws_a_poisson_number_of_events():
    model, n = _extended(n_sig=300.0)
    study = zgrad.toys(model, 40, truth={"n_sig": 400.0}, seed=8, progress=False)
    counts = study.n_events
    expected = [np.random.default_rng((int(s), 1)).poisson(400.0) for s in study.seed]
    assert counts.tolist() == expected  # the documented per-toy draw
    assert abs(counts.mean() - 400.0) < 3 * math.sqrt(400.0 / 40)
    assert len(set(counts.tolist())) > 20  # not one fixed number
    assert study.names == ("mu", "n_sig") and study.truth == {"mu": 0.0, "sigma": 1.0, "n_sig": 400.0}
    # an extended fit: the fitted yield is the number of events (within Minuit's tolerance), error sqrt(N)
    assert study.valid.all()
    assert np.all(np.abs(study.values["n_sig"] - counts) < 0.02 * study.errors["n_sig"])
    assert study.errors["n_sig"] == pytest.approx(np.sqrt(counts), rel=0.02)
    assert float(n.numpy()) == 300.0
    fixed = zgrad.toys(model, 2, n_events=123, seed=8, progress=False)
    assert fixed.n_events.tolist() == [123, 123]


# --- arguments --------------------------------------------------------------------------------------

BAD = [
    ({"n_toys": 0}, ValueError, "n_toys must be a positive int; got 0"),
    ({"n_toys": True}, ValueError, "n_toys must be a positive int; got True"),
    ({"n_events": 0}, ValueError, "n_events must be a positive int; got 0"),
    ({"n_events": 2.5}, ValueError, "n_events must be a positive int; got 2.5"),
    ({"truth": {"nu": 1.0}}, ValueError, r"'nu', which is not a parameter .* allowed: \['mu', 'sigma'\]"),
    ({"truth": {"mu": 5.0}}, ValueError, "outside its limits"),
    ({"truth": [0.1]}, TypeError, "truth must be None or a dict"),
    ({"minimizer": "Minuit"}, TypeError, "an object with a minimize"),
    ({"strategy": "magic"}, ValueError, r"registered gradient strategy name, one of \['autodiff'"),
    ({"strategy": True}, ValueError, "got True"),
    ({"seed": -1}, ValueError, "seed must be a non-negative int; got -1"),
    ({"workers": 0}, ValueError, "workers must be a positive int; got 0"),
    ({"workers": 2, "scheduler": "tcp://127.0.0.1:8786"}, ValueError, "not both; got workers=2"),
    ({"scheduler": 8786}, TypeError, r"a Dask scheduler address \(str\) or a distributed.Client; got 8786"),
    ({"progress": "yes"}, TypeError, "progress must be None .* True or False; got 'yes'"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD, ids=[str(b[0]) for b in BAD])
def test_bad_arguments_raise_and_change_nothing(kwargs, error, match):
    model, mu, sigma = _gauss(mu=0.25)
    options = {"n_toys": 2, "n_events": 100, "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        zgrad.toys(model, **options)
    assert (float(mu.numpy()), float(sigma.numpy())) == (0.25, 1.0)


def test_non_extended_model_needs_n_events():
    model, _, _ = _gauss()
    with pytest.raises(ValueError, match=r"is not extended .* pass n_events=<number of events per toy>"):
        zgrad.toys(model, 2, progress=False)
    with pytest.raises(TypeError, match="model must be a zgrad model"):
        zgrad.toys(object(), 2, n_events=10)


def test_a_model_that_does_not_pickle_is_refused_for_workers_before_any_work():
    model, mu, _ = _gauss()
    model.unpicklable = lambda: None  # a lambda does not pickle
    with pytest.raises(TypeError, match=r"workers= ships the model .* does not pickle"):
        zgrad.toys(model, 2, n_events=100, workers=2, progress=False)
    del model.unpicklable
    minimizer = FailsOnCall(1)
    minimizer.unpicklable = lambda: None
    with pytest.raises(TypeError, match=r"scheduler= ships the minimizer .*FailsOnCall.* does not pickle"):
        zgrad.toys(model, 2, n_events=100, minimizer=minimizer, scheduler="tcp://127.0.0.1:1", progress=False)
    assert float(mu.numpy()) == 0.0


def test_scheduler_without_dask_says_how_to_install_it(monkeypatch):
    model, _, _ = _gauss()
    monkeypatch.setitem(sys.modules, "distributed", None)  # an import of it now raises ImportError
    with pytest.raises(ImportError, match=r"pip install zgrad\[dask\]"):
        zgrad.toys(model, 2, n_events=100, scheduler="tcp://127.0.0.1:8786", progress=False)


# --- failures and state -----------------------------------------------------------------------------


class FailsOnCall:
    """Minuit, except that call number ``bad`` (1-based) raises."""

    def __init__(self, bad):
        self.bad, self.calls = bad, 0

    def minimize(self, loss):
        self.calls += 1
        if self.calls == self.bad:
            raise RuntimeError(f"boom on call {self.calls}")
        return zgrad.minimize.Minuit().minimize(loss)


def test_a_failing_toy_is_a_row_with_its_message():
    model, _, _ = _gauss()
    study = zgrad.toys(model, 5, n_events=200, minimizer=FailsOnCall(3), seed=4, progress=False)
    assert study.n_toys == 5 and study.valid.tolist() == [True, True, False, True, True]
    assert study.messages[2] == "RuntimeError: boom on call 3"
    assert math.isnan(study.values["mu"][2]) and math.isnan(study.errors["sigma"][2])
    assert math.isnan(study.nfcn[2])
    assert study.seconds[2] > 0 and study.n_events[2] == 200
    assert study.pulls("mu").size == 4 and study.summary()["mu"]["n_valid"] == 4
    # the other toys are the ones of an undisturbed study
    plain = zgrad.toys(model, 5, n_events=200, seed=4, progress=False)
    keep = [0, 1, 3, 4]
    assert study.values["mu"][keep].tolist() == plain.values["mu"][keep].tolist()


class Fake:
    """A minimizer returning a fixed result (values, errors, validity, at_limit) without fitting."""

    def __init__(self, value, error, valid=True, message="", at_limit=()):
        self.result = SimpleNamespace(
            values={"mu": value, "sigma": 1.0},
            errors={"mu": error, "sigma": 0.1},
            valid=valid,
            message=message,
            nfcn=7,
            at_limit=at_limit,
        )

    def minimize(self, loss):
        return self.result


def test_non_finite_results_invalid_fits_and_limits_are_reported():
    model, _, _ = _gauss()
    nan = zgrad.toys(model, 2, n_events=50, minimizer=Fake(float("nan"), 0.1), progress=False)
    assert not nan.valid.any() and nan.messages[0] == "non-finite value or error for ['mu']"
    bad = zgrad.toys(model, 2, n_events=50, minimizer=Fake(0.1, 0.1, False, "EDM above max"), progress=False)
    assert not bad.valid.any() and bad.messages == ["EDM above max"] * 2
    assert bad.values["mu"].tolist() == [0.1, 0.1]  # an invalid fit keeps its numbers
    edge = zgrad.toys(model, 3, n_events=50, minimizer=Fake(0.1, 0.1, at_limit=("sigma",)), progress=False)
    assert edge.at_limit == [("sigma",)] * 3 and edge.nfcn.tolist() == [7.0] * 3
    summary = edge.summary()
    assert summary["sigma"]["n_at_limit"] == 3 and summary["mu"]["n_at_limit"] == 0
    assert edge.pulls("mu").tolist() == pytest.approx([1.0] * 3)
    text = str(summary)
    assert text.splitlines()[0].split() == ["param", "valid", "at", "limit", "pull", "mean", "pull", "width"]
    assert text.splitlines()[-1].split()[:3] == ["sigma", "3/3", "3"]
    assert str(edge).startswith("ToyStudy: 3 toys, 3 valid, seed 0")
    with pytest.raises(KeyError, match=r"no fitted parameter named 'nu'; .* \['mu', 'sigma'\]"):
        edge.pulls("nu")


def test_fits_at_a_limit_are_counted_and_stay_valid():
    # truth on the upper limit of mu: about half the fits end there
    obs = zgrad.Space("x", limits=(-5.0, 5.0))
    mu = zgrad.Parameter("mu", 0.0, -1.0, 0.0)
    model = zgrad.models.Gauss(obs=obs, mu=mu, sigma=zgrad.Parameter("sigma", 1.0, 0.2, 3.0))
    study = zgrad.toys(model, 12, n_events=200, seed=6, progress=False)
    edge = [k for k, names in enumerate(study.at_limit) if "mu" in names]
    assert 2 <= len(edge) <= 10 and study.valid[edge].all()
    assert np.all(np.abs(study.values["mu"][edge]) <= 0.1 * study.errors["mu"][edge])
    assert study.summary()["mu"]["n_at_limit"] == len(edge)
    assert study.summary()["sigma"]["n_at_limit"] == 0


class Interrupts:
    def minimize(self, loss):
        raise KeyboardInterrupt


def test_parameters_are_restored_after_a_study_and_after_an_interrupt():
    model, mu, sigma = _gauss(mu=0.125, sigma=1.5)
    study = zgrad.toys(model, 2, n_events=100, truth={"mu": -0.5, "sigma": 0.8}, progress=False)
    assert study.truth == {"mu": -0.5, "sigma": 0.8} and study.valid.all()
    assert study.values["mu"].mean() == pytest.approx(-0.5, abs=0.4)  # drawn at the truth, not at 0.125
    assert (float(mu.numpy()), float(sigma.numpy())) == (0.125, 1.5)
    with pytest.raises(KeyboardInterrupt):
        zgrad.toys(model, 2, n_events=100, truth={"mu": 0.7}, minimizer=Interrupts(), progress=False)
    assert (float(mu.numpy()), float(sigma.numpy())) == (0.125, 1.5)


class RecordsPolicy:
    def __init__(self):
        self.seen = []

    def minimize(self, loss):
        self.seen.append(zgrad.run.mode["autograd"])
        return zgrad.minimize.Minuit().minimize(loss)


def test_strategy_is_a_scoped_policy_for_the_fits():
    model, _, _ = _gauss()
    recorder = RecordsPolicy()
    study = zgrad.toys(model, 2, n_events=100, minimizer=recorder, strategy="numerical", progress=False)
    assert recorder.seen == ["numerical", "numerical"] and study.strategy == "numerical"
    assert zgrad.run.mode == dict(zgrad.RunManager.DEFAULT_MODE)


def test_progress_bar_when_asked_and_never_off_a_terminal(capsys, monkeypatch):
    model, _, _ = _gauss()
    zgrad.toys(model, 3, n_events=100, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and lines[-1].startswith("[########################] 3/3 100% ")
    assert lines[0].endswith("toy 0")
    zgrad.toys(model, 2, n_events=100)  # progress=None and stderr is not a terminal
    zgrad.toys(model, 2, n_events=100, progress=False)
    assert capsys.readouterr().err == ""


# --- the record: pickle, JSON, HTML -------------------------------------------------------------------


def test_study_is_plain_data_that_pickles_and_round_trips_through_json():
    model, _, _ = _gauss()
    study = zgrad.toys(model, 4, n_events=150, minimizer=FailsOnCall(2), seed=9, progress=False)
    copy = pickle.loads(pickle.dumps(study))
    assert _numbers(copy) == _numbers(study) and copy.seconds.tolist() == study.seconds.tolist()
    data = json.loads(study.to_json())
    assert data["schema_version"] == 1 and data["names"] == ["mu", "sigma"] and data["base_seed"] == 9
    assert data["values"]["mu"][1] == "nan" and data["nfcn"][1] == "nan"  # the failed toy, strict JSON
    assert data["values"]["mu"][0] == study.values["mu"][0] and data["seed"] == study.seed.tolist()
    assert data["valid"] == [True, False, True, True]
    assert data["messages"][1] == "RuntimeError: boom on call 2"
    assert data["summary"]["mu"]["n_valid"] == 3
    assert not study.valid.flags.writeable and not study.values["mu"].flags.writeable


def test_html_page_has_one_pull_histogram_per_parameter(tmp_path):
    model, _, _ = _gauss()
    study = zgrad.toys(model, 6, n_events=150, minimizer=FailsOnCall(2), progress=False)
    path = study.to_html(tmp_path / "report" / "pulls.html")
    text = path.read_text()
    assert path == tmp_path / "report" / "pulls.html"
    assert text.count("<img") == 2 and 'alt="pulls of mu"' in text and 'alt="pulls of sigma"' in text
    assert "data:image/png;base64," in text and "RuntimeError: boom on call 2" in text
    assert study.to_html(tmp_path) == tmp_path / "toys.html"  # a folder gets toys.html
    with pytest.raises(FileExistsError, match="never overwrites"):
        study.to_html(path)
    assert path.read_text() == text
    (tmp_path / "plain").write_text("a file, not a folder")
    with pytest.raises(PermissionError, match="plain' is not a writable folder"):
        study.to_html(tmp_path / "plain" / "page.html")


def test_html_refuses_an_unwritable_folder(tmp_path):
    model, _, _ = _gauss()
    study = zgrad.toys(model, 2, n_events=100, progress=False)
    if os.path.isdir("/proc/self"):  # nothing can be created in /proc, not even by root
        locked, restore = Path("/proc"), lambda: None
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        restore = lambda: locked.chmod(0o700)  # noqa: E731
    try:
        with pytest.raises(PermissionError, match="is not a writable folder"):
            study.to_html(locked / "zgrad-sub" / "page.html")
    finally:
        restore()
    assert not (locked / "zgrad-sub").exists()


def test_plan_rejects_before_changing_anything():
    # the plan is computed (and refused) before any Parameter moves
    model, mu, _ = _gauss(mu=0.5)
    with pytest.raises(ValueError, match="outside its limits"):
        _spec.plan(model, 3, 10, {"mu": 0.1, "sigma": 99.0}, None, None, 0)
    assert float(mu.numpy()) == 0.5


def test_progress_bar_is_shared_with_the_validation_suite():
    from validation import runner
    from zgrad._progress import ProgressBar

    assert runner.ProgressBar is ProgressBar
    stream = io.StringIO()
    bar = ProgressBar(3, stream=stream, width=6)
    bar.advance("toys 0-1", count=2)
    assert stream.getvalue().startswith("[####--] 2/3  67% ")
