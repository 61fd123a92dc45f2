"""The zgrad validation suite: reference functions x gradient strategies, checked against closed forms.

Run it from the repository root::

    python -m validation [--quick] [--output DIR] [--cases PATTERN ...] [--strategies NAME ...]

It evaluates every case of :mod:`validation.cases` at each of its points with every
registered strategy that provides a gradient, at gradient and Hessian level,
prints a summary table, writes ``DIR/report.json`` (default ``validation-report/``)
and exits with 0 when every comparison passes, 1 when any fails, 2 for bad
arguments. The same run is available in-process as
:func:`validation.runner.run_suite`.

Modules: :mod:`validation.spec` (what a case and a tolerance are),
:mod:`validation.cases` (the reference functions), :mod:`validation.runner`
(tasks and rows), :mod:`validation.report` (the table and ``report.json``).

This package is not installed with zgrad. Importing it is cheap; TensorFlow is
imported by :mod:`validation.cases` and :mod:`validation.runner`.
"""
