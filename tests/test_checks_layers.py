"""``zgrad.checks``: compute, then data, then render. Rendering a report evaluates nothing."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest

import zgrad
from zgrad.checks import PrecisionScan, crosscheck, plots
from zgrad.errors import GradientError
from zgrad.gradients import _api


def _cubic():
    x = zgrad.Parameter("x", 1.5)
    return x, crosscheck(lambda: x**3, [x], reference=lambda v: [3 * v[0] ** 2])


def test_rendering_the_page_evaluates_nothing(tmp_path, monkeypatch):
    _, report = _cubic()

    def refuse(*args, **kwargs):
        raise AssertionError("rendering must not compute derivatives")

    monkeypatch.setattr(_api, "derivatives", refuse)
    page = report.to_html(tmp_path).read_text(encoding="utf-8")
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 2  # deviation chart + one precision plot
    assert report.precision_scan("x").x.size == 15


def test_the_stored_scan_matches_the_closed_form_and_the_grid():
    x, report = _cubic()
    scan = report.precision_scan(x)  # a Parameter works as well as its name
    assert isinstance(scan, PrecisionScan) and (scan.n_points, scan.width) == (15, 3.0)
    step = x.step_size
    assert np.array_equal(scan.x, 1.5 + np.linspace(-3.0, 3.0, 15) * step)
    assert np.array_equal(scan.reference, 3 * scan.x**2)
    assert np.all(scan.deviation <= np.maximum(scan.error, 1e-9 * scan.reference))


def test_a_scan_that_was_not_computed_is_refused_naming_what_the_report_holds():
    _, report = _cubic()
    with pytest.raises(ValueError, match=r"n_points=21, width=3\.0 was computed.*n_points=15, width=3"):
        report.precision_scan("x", n_points=21)
    with pytest.raises(ValueError, match=r"n_points=15, width=1\.0 was computed"):
        report.precision_scan("x", width=1.0)


def test_only_the_first_five_parameters_are_scanned():
    params = [zgrad.Parameter(f"p{k}", 0.5 + k) for k in range(6)]
    report = crosscheck(lambda: sum(p**2 for p in params), params, strategies=["autodiff"])
    assert sorted(report.scans) == ["p0", "p1", "p2", "p3", "p4"]
    with pytest.raises(ValueError, match=r"No precision scan of 'p5' was computed: .*first 5 parameters"):
        report.precision_scan("p5")


def test_a_failed_scan_is_stored_with_its_reason_and_shown_on_the_page(tmp_path):
    report = crosscheck(lambda v: float(v @ v), x0=[1.0, -2.0], gradient=lambda v: 2 * v)
    with pytest.raises(GradientError, match="no closed form and autodiff failed"):
        report.precision_scan("x0")
    page = report.to_html(tmp_path).read_text(encoding="utf-8")
    assert page.count("No precision plot for x") == 2


def test_a_copied_report_keeps_its_rows_and_leaves_the_scans_behind():
    _, report = _cubic()
    back = pickle.loads(pickle.dumps(report))
    assert back.scans is None and report.scans is not None
    assert back.to_json() == report.to_json()


def test_the_plots_draw_from_data_only():
    scan = PrecisionScan(
        param="x", x=np.array([0.9, 1.0, 1.1]), x0=1.0, step=0.1, numerical=np.array([1.8, 2.0, 2.2]),
        error=np.full(3, 1e-8), reference=np.array([1.8, 2.0, 2.2]), reference_source="closed form",
        eps=2.0**-52,
    )  # fmt: skip
    png = plots.precision_png(scan)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    tag = plots.embed_png(png, 'a "plot"')
    assert tag.startswith('<img alt="a &quot;plot&quot;" src="data:image/png;base64,iVBOR')


def test_scans_false_gives_the_same_rows_without_the_scans(tmp_path):
    x = zgrad.Parameter("x", 1.5)
    calls = []

    def cube():
        calls.append(1)
        return x**3

    options = dict(reference=lambda v: [3 * v[0] ** 2], strategies=["numerical"])
    with_scans = crosscheck(cube, [x], **options)
    n_with = len(calls)
    calls.clear()
    without = crosscheck(cube, [x], **options, scans=False)
    assert len(calls) < n_with  # the scans evaluate the function: without them it is called less
    assert [(r.strategy, r.param, r.value, r.ok) for r in without.rows] == [
        (r.strategy, r.param, r.value, r.ok) for r in with_scans.rows
    ]
    assert without.scans is None and with_scans.scans is not None
    with pytest.raises(ValueError, match=r"crosscheck\(\.\.\., scans=False\)"):
        without.precision_scan("x")
    page = without.to_html(tmp_path).read_text(encoding="utf-8")
    assert "No precision plot for x" in page
    with pytest.raises(TypeError, match=r"scans must be True or False; got 'no'"):
        crosscheck(cube, [x], scans="no")
