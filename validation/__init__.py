"""The zgrad validation suite: every gradient strategy against closed forms, in fits and in toys.

Run it from the repository root::

    python -m validation [--quick] [--output DIR] [--cases PATTERN ...] [--strategies NAME ...]
                         [--toys N] [--workers N | --scheduler ADDRESS] [--no-fits]

It evaluates every case (reference functions, and zgrad's models inside unbinned losses)
at each of its points with every registered strategy that provides a gradient, at
gradient and Hessian level; checks the closed forms against the numbers stored in
``validation/data/reference.json``; fits each model case with every strategy; optionally
runs toy studies; prints a summary, writes ``DIR/report.json`` and ``DIR/index.html``
(default ``validation-report/``) and exits with 0 when everything passes, 1 when anything
fails, 2 for bad arguments. The same run is available in-process as
:func:`validation.runner.run_suite`; ``python -m validation.regenerate`` rewrites the
stored numbers.

Modules: :mod:`validation.spec` (what a case and a tolerance are), :mod:`validation.cases`
(the reference functions, and the table of all cases), :mod:`validation.model_cases` (models
in losses), :mod:`validation.derivatives` (derivative tasks and rows), :mod:`validation.fits`
(fits, toys, pulls), :mod:`validation.reference` (stored numbers), :mod:`validation.executors`
(in-process, spawned processes, Dask), :mod:`validation.runner` (planning and the progress
bar), :mod:`validation.report` (tables, ``report.json``), :mod:`validation.page` (``index.html``).

This package is not installed with zgrad. Importing it is cheap; TensorFlow is
imported by :mod:`validation.cases` and the modules that use it.
"""
