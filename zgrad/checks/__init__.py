"""Cross-checks: whether the gradient strategies agree with each other and with closed forms.

:func:`crosscheck` compares, per point, parameter and strategy, each derivative with a
reference (a closed form, or the most trustworthy strategy available) and returns a
:class:`CrossCheckReport` that prints as a table and writes JSON and a self-contained HTML
page with plots. ``zgrad crosscheck module:factory`` does the same from the command line.

Compute, then data, then render: :mod:`~zgrad.checks.compare` computes (the rows and the
precision scans), :mod:`~zgrad.checks.result` holds the numbers, :mod:`~zgrad.checks.report`
renders them (terminal, JSON, HTML) and :mod:`~zgrad.checks.plots` draws the figures from them.

Examples
--------
>>> import zgrad
>>> from zgrad.checks import crosscheck
>>> mu = zgrad.Parameter("mu", 0.3)
>>> report = crosscheck(lambda: (mu - 1.0) ** 2, [mu])
>>> report.ok, report.reference_source
(True, 'autodiff')
"""

from __future__ import annotations

from zgrad.checks.compare import crosscheck
from zgrad.checks.report import CrossCheckReport
from zgrad.checks.result import CrossCheckRow, PrecisionScan

__all__ = ["CrossCheckReport", "CrossCheckRow", "PrecisionScan", "crosscheck"]
