"""Shared fixtures for tests and doctests: each starts from the default policy with empty graph caches."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

import zgrad
from zgrad import _cache, _policy


@pytest.fixture(autouse=True)
def _isolated_policy():
    """Restore the default mode, chunk size and cache size, and clear every graph cache, around each test."""
    _policy.reset_to_default()
    _policy.set_chunksize(None)
    _cache.set_max_size(None)
    zgrad.run.clear_graph_cache()
    yield
    leaked = _policy._override.get()
    _policy._override.set(None)  # a leaked override would poison every later test
    _policy.reset_to_default()
    _policy.set_chunksize(None)
    _cache.set_max_size(None)
    zgrad.run.clear_graph_cache()
    assert leaked is None, f"the test left a scoped mode behind: {leaked}"
