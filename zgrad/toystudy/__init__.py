"""Toy studies: draw data sets from a model, fit each, and look at the pulls.

:func:`zgrad.toys` runs a study (serially, in spawned processes or on Dask) and returns a
:class:`ToyStudy`, a plain data record with per-toy arrays, pull statistics, JSON and an
HTML page.
"""

from zgrad.toystudy._api import toys
from zgrad.toystudy.study import ToyStudy

__all__ = ["ToyStudy", "toys"]
