"""The strategy registry: register, get, available, unregister, and how the policy sees its names."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zgrad
from zgrad import _policy, _strategy_table

BUILTINS = ("autodiff", "numerical", "minuit")
REPO_ROOT = Path(__file__).resolve().parents[1]


class _Strategy:
    """The smallest object satisfying the protocol (a gradient of zeros is fine: it is never called here)."""

    is_autograd = False
    provides_gradient = True

    def value_gradient(self, func, params):
        return 0.0, [0.0] * len(params)


@pytest.fixture(autouse=True)
def _clean_registry():
    """Remove whatever a test registered, even when it failed half-way."""
    before = set(_strategy_table.names())
    yield
    # the policy may still select a user strategy: reset it first, or removal would be refused
    _policy.reset_to_default()
    for name in set(_strategy_table.names()) - before:
        _strategy_table.remove(name)


# --- register / get / available / unregister -----------------------------------------------------


def test_builtins_are_listed_first_in_fixed_order():
    assert zgrad.gradients.available() == BUILTINS
    zgrad.gradients.register("mine", _Strategy())
    zgrad.gradients.register("other", _Strategy())
    assert zgrad.gradients.available() == (*BUILTINS, "mine", "other")
    # loading a built-in (replacing its table entry by the object) keeps the order
    zgrad.gradients.get("minuit")
    assert zgrad.gradients.available() == (*BUILTINS, "mine", "other")


def test_register_get_unregister_roundtrip():
    strategy = _Strategy()
    zgrad.gradients.register("mine", strategy)
    assert zgrad.gradients.get("mine") is strategy
    assert "mine" in zgrad.gradients.available()
    zgrad.gradients.unregister("mine")
    assert "mine" not in zgrad.gradients.available()
    with pytest.raises(ValueError, match=r"Unknown gradient strategy 'mine'"):
        zgrad.gradients.get("mine")


def test_get_returns_the_same_builtin_object_each_time():
    first = zgrad.gradients.get("autodiff")
    assert zgrad.gradients.get("autodiff") is first
    assert type(first).__name__ == "AutodiffStrategy"
    assert first.is_autograd is True
    assert first.provides_gradient is True


def test_duplicate_name_raises_listing_the_choices_and_overwrite_replaces():
    first, second = _Strategy(), _Strategy()
    zgrad.gradients.register("mine", first)
    with pytest.raises(ValueError, match=r"already registered.*'autodiff', 'numerical', 'minuit', 'mine'"):
        zgrad.gradients.register("mine", second)
    assert zgrad.gradients.get("mine") is first
    zgrad.gradients.register("mine", second, overwrite=True)
    assert zgrad.gradients.get("mine") is second
    assert zgrad.gradients.available().count("mine") == 1


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_names_cannot_be_registered_or_unregistered(name):
    with pytest.raises(ValueError, match=rf"'{name}' is a built-in strategy and cannot be replaced"):
        zgrad.gradients.register(name, _Strategy())
    with pytest.raises(ValueError, match=rf"'{name}' is a built-in strategy"):
        zgrad.gradients.register(name, _Strategy(), overwrite=True)
    with pytest.raises(ValueError, match=rf"'{name}' is a built-in strategy and cannot be unregistered"):
        zgrad.gradients.unregister(name)
    assert zgrad.gradients.available() == BUILTINS


def test_unknown_name_in_get_and_unregister_lists_registered_names():
    zgrad.gradients.register("mine", _Strategy())
    listed = r"\['autodiff', 'numerical', 'minuit', 'mine'\]"
    with pytest.raises(
        ValueError, match=rf"Unknown gradient strategy 'nope'; registered strategies are {listed}"
    ):
        zgrad.gradients.get("nope")
    with pytest.raises(ValueError, match=rf"Cannot unregister 'nope'.*registered strategies are {listed}"):
        zgrad.gradients.unregister("nope")


@pytest.mark.parametrize("bad", [1, None, ("mine",)])
def test_non_string_names_raise_type_error(bad):
    with pytest.raises(TypeError, match="A strategy name must be a str"):
        zgrad.gradients.register(bad, _Strategy())
    with pytest.raises(TypeError, match="A strategy name must be a str"):
        zgrad.gradients.get(bad)


@pytest.mark.parametrize("bad", ["", " mine", "mine "])
def test_empty_or_padded_names_raise_value_error(bad):
    with pytest.raises(ValueError, match="non-empty without surrounding spaces"):
        zgrad.gradients.register(bad, _Strategy())


class _NoFlags:
    def value_gradient(self, func, params):
        return 0.0, [0.0]


class _NoMethod:
    is_autograd = True
    provides_gradient = True


class _NonBoolFlag(_Strategy):
    is_autograd = 1


class _HessianNotCallable(_Strategy):
    hessian = 3.0


@pytest.mark.parametrize(
    ("obj", "missing"),
    [
        (_NoFlags(), r"lacks attribute 'is_autograd' \(bool\), attribute 'provides_gradient' \(bool\)\."),
        (_NoMethod(), r"lacks method 'value_gradient\(func, params\)'"),
        (_NonBoolFlag(), r"lacks attribute 'is_autograd' \(bool\)\."),
        (
            _HessianNotCallable(),
            r"lacks a callable 'hessian' \(optional, but it must be a method if present\)",
        ),
        (object(), r"lacks attribute 'is_autograd'.*'provides_gradient'.*method 'value_gradient"),
    ],
)
def test_objects_lacking_the_protocol_raise_type_error_naming_what_is_missing(obj, missing):
    with pytest.raises(TypeError, match=rf"is not a gradient strategy: it {missing}"):
        zgrad.gradients.register("broken", obj)
    assert "broken" not in zgrad.gradients.available()


def test_a_class_instead_of_an_instance_is_refused():
    with pytest.raises(
        TypeError, match=r"strategy = _Strategy is a class; register an instance, e\.g\. _Strategy\(\)"
    ):
        zgrad.gradients.register("mine", _Strategy)
    assert "mine" not in zgrad.gradients.available()


def test_registered_name_becomes_a_valid_mode_and_invalid_again_after_unregistering():
    with pytest.raises(ValueError, match=r"autograd='mine' is not a registered gradient strategy"):
        zgrad.run.set_mode(autograd="mine")
    zgrad.gradients.register("mine", _Strategy())
    zgrad.run.set_mode(autograd="mine")
    assert zgrad.run.mode["autograd"] == "mine"
    zgrad.run.set_mode(autograd=True)
    zgrad.gradients.unregister("mine")
    with pytest.raises(ValueError, match=r"autograd='mine' is not a registered gradient strategy"):
        zgrad.run.set_mode(autograd="mine")
    assert zgrad.run.mode["autograd"] is True


def test_unregistering_the_active_strategy_is_refused():
    strategy = _Strategy()
    zgrad.gradients.register("mine", strategy)
    zgrad.run.set_mode(autograd="mine")
    with pytest.raises(ValueError, match=r"Cannot unregister 'mine': it is the active gradient strategy"):
        zgrad.gradients.unregister("mine")
    assert zgrad.gradients.get("mine") is strategy
    assert zgrad.run.current_gradient_strategy() is strategy


def test_unregistering_the_strategy_active_in_a_with_block_is_refused():
    zgrad.gradients.register("mine", _Strategy())
    with zgrad.run.set_mode(autograd="mine"):
        with pytest.raises(ValueError, match=r"Cannot unregister 'mine': it is the active"):
            zgrad.gradients.unregister("mine")
    zgrad.gradients.unregister("mine")
    assert "mine" not in zgrad.gradients.available()


def test_registering_changes_the_table_generation():
    # the generation is part of every graph-cache key, so a changed table never reuses a stale trace
    start = _strategy_table.generation()
    zgrad.gradients.register("mine", _Strategy())
    after_register = _strategy_table.generation()
    zgrad.gradients.unregister("mine")
    assert start < after_register < _strategy_table.generation()


# --- lazy loading, in a fresh interpreter ---------------------------------------------------------

_FRESH_PROCESS_CHECK = """
import sys
import zgrad
from zgrad import _strategy_table

builtins = ("autodiff", "numerical", "minuit")
assert all(isinstance(_strategy_table._table[n], str) for n in builtins), _strategy_table._table
assert zgrad.gradients.available() == ("autodiff", "numerical", "minuit")
assert "tensorflow" not in sys.modules, "listing strategies imported tensorflow"
# selecting a built-in by name and asking whether it is automatic needs no import either
zgrad.run.set_mode(autograd="minuit")
assert zgrad.run.current_policy_autograd() is False
zgrad.run.set_mode(autograd=True)
assert zgrad.run.current_policy_autograd() is True
assert "tensorflow" not in sys.modules, "reading the gradient policy imported tensorflow"
assert isinstance(_strategy_table._table["autodiff"], str)

strategy = zgrad.gradients.get("autodiff")
assert type(strategy).__name__ == "AutodiffStrategy"
assert _strategy_table._table["autodiff"] is strategy
# only the built-in that was asked for is loaded
assert isinstance(_strategy_table._table["minuit"], str)
assert "zgrad.gradients.minuit" not in sys.modules
print("fresh-process-ok")
"""


@pytest.mark.subprocess
def test_builtins_load_on_first_use_and_listing_imports_no_tensorflow():
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FRESH_PROCESS_CHECK)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("fresh-process-ok")
