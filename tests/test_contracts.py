"""The contracts between zgrad's layers, checked on the source and on the objects.

- Imports run one way: every module belongs to a layer and imports only from its own layer
  or below (top-level and function-local imports alike), and no two modules import each other
  through any chain.
- Library code never reads ``zgrad.run`` (``_runmanager``), and no loss imports a strategy's
  module.
- Private TensorFlow APIs are imported in ``zgrad/_tf_compat.py`` only.
- Every built-in strategy, loss and model offers exactly the protocols that the table in
  ``zgrad/typing.py`` gives it.
"""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

import zgrad
from zgrad import typing as zt
from zgrad.cli import FactoryError
from zgrad.errors import ZgradError

PACKAGE = pathlib.Path(zgrad.__file__).parent

#: Lowest first. A module belongs to the layer of the longest name here that is a prefix of it.
LAYERS = (
    (
        "zgrad.errors",
        "zgrad.typing",
        "zgrad._tf_compat",
        "zgrad._threads",
        "zgrad._cache",
        "zgrad._convert",
        "zgrad._stencils",
        "zgrad._progress",
        "zgrad._files",
        "zgrad._strategy_table",
        "zgrad._version",
    ),
    (
        "zgrad._policy",
        "zgrad._finite",
        "zgrad._finite_hessian",
        "zgrad.params",
        "zgrad.space",
        "zgrad._values",
        "zgrad._runmanager",
    ),
    ("zgrad.z",),
    ("zgrad.gradients",),
    ("zgrad.models",),
    ("zgrad.losses",),
    ("zgrad.minimize",),
    ("zgrad.checks",),
    ("zgrad.toystudy",),
    ("zgrad.cli", "zgrad"),
)

#: Edges ``(importer, imported)`` that break a contract and are still allowed: none.
ALLOWED = frozenset()

#: The strategies' own modules: what no loss may import.
STRATEGY_MODULES = ("zgrad.gradients.autodiff", "zgrad.gradients.numerical", "zgrad.gradients.minuit")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, tuple[pathlib.Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in sorted(PACKAGE.rglob("*.py"))}


SOURCES = _sources()


def _imported(module: str, path: pathlib.Path, node: ast.AST) -> list[str]:
    """The modules (zgrad's or others') that one import statement names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
    # `from zgrad.gradients import _api` names the module zgrad.gradients._api
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in SOURCES else base for a in node.names]


def _edges() -> set[tuple[str, str]]:
    edges = set()
    for module, (path, tree) in SOURCES.items():
        for node in ast.walk(tree):  # function-local imports too
            edges.update((module, target) for target in _imported(module, path, node))
    return edges


EDGES = _edges()
ZGRAD_EDGES = {(a, b) for a, b in EDGES if (b == "zgrad" or b.startswith("zgrad.")) and a != b}


def _layer(module: str) -> int | None:
    best = None
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > len(best[1])
            ):
                best = (level, prefix)
    return None if best is None else best[0]


def _cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# --- the import graph -------------------------------------------------------------------------


def test_the_graph_is_read():
    # a check that reads no edges would pass for any code: known edges must be there
    assert ("zgrad.gradients.autodiff", "zgrad.z._tape") in EDGES
    assert ("zgrad._threads", "zgrad._tf_compat") in EDGES
    assert ("zgrad.losses._kernel", "zgrad.z._tape") in EDGES
    # a function-local import (in check_params) counts as well
    assert ("zgrad.gradients._api", "tensorflow") in EDGES
    assert len(SOURCES) > 50


def test_every_module_has_a_layer():
    assert [m for m in SOURCES if _layer(m) is None] == []


def test_no_module_imports_a_higher_layer():
    upward = sorted(
        f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
        for a, b in ZGRAD_EDGES
        if _layer(b) > _layer(a) and (a, b) not in ALLOWED
    )
    assert upward == []


def test_there_is_no_import_cycle():
    assert _cycles({e for e in ZGRAD_EDGES if e not in ALLOWED}) == []


def test_the_cycle_finder_finds_cycles():
    edges = {("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles({("a", "b"), ("b", "c")}) == []


def test_library_code_never_imports_the_run_manager():
    # zgrad.run is the user's face of the settings; library code reads _policy, _cache, _threads
    readers = sorted(
        f"{a} imports {b}"
        for a, b in ZGRAD_EDGES
        if b == "zgrad._runmanager" and a != "zgrad" and (a, b) not in ALLOWED
    )
    assert readers == []


def test_no_loss_imports_a_strategy_module():
    offenders = sorted(
        f"{a} imports {b}" for a, b in ZGRAD_EDGES if a.startswith("zgrad.losses") and b in STRATEGY_MODULES
    )
    assert offenders == []


def test_private_tensorflow_only_in_tf_compat():
    offenders = []
    for module, (_, tree) in SOURCES.items():
        if module == "zgrad._tf_compat":
            continue
        imports = [t for a, t in EDGES if a == module and t.startswith("tensorflow.python")]
        # imports by name (importlib) and attributes such as tf.__internal__ count as well
        nodes = list(ast.walk(tree))
        strings = [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        strings = [text for text in strings if text.startswith("tensorflow.python")]
        attributes = [
            n.attr for n in nodes if isinstance(n, ast.Attribute) and n.attr in ("__internal__", "python")
        ]
        offenders += [f"{module}: {name}" for name in imports + strings + attributes]
    assert offenders == []
    # and _tf_compat does hold them (a check that finds none anywhere would pass for nothing)
    _, compat = SOURCES["zgrad._tf_compat"]
    held = {n.value for n in ast.walk(compat) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert {"tensorflow.python.eager.record", "tensorflow.python.eager.context"} <= held


def test_tf_compat_resolves_its_names():
    import tensorflow as tf

    from zgrad import _tf_compat

    assert issubclass(_tf_compat.ResourceVariable, tf.Variable)
    assert isinstance(zgrad.Parameter("p", 1.0), _tf_compat.ResourceVariable)
    assert _tf_compat.should_record_backprop([tf.constant(1.0)]) is False
    x = tf.constant(1.0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        assert _tf_compat.should_record_backprop([x]) is True
    assert _tf_compat.eager_runtime_started() is True  # the tensors above started it
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _tf_compat.nothing  # noqa: B018


# --- errors -----------------------------------------------------------------------------------


def test_bridge_cost_warning_is_zgrads():
    from zgrad.z._bridge import BridgeCostWarning

    assert BridgeCostWarning is zgrad.errors.BridgeCostWarning
    assert issubclass(BridgeCostWarning, zgrad.errors.ZgradWarning)


def test_factory_error_is_a_zgrad_error():
    assert issubclass(FactoryError, ZgradError)


# --- protocols --------------------------------------------------------------------------------

STRATEGY_PROTOCOLS = (zt.GradientStrategy, zt.HessianStrategy, zt.BudgetedStrategy)
LOSS_PROTOCOLS = (
    zt.BatchedValues,
    zt.FusedValueGradient,
    zt.ExactHessian,
    zt.EvaluatesAtPoint,
    zt.CompiledAtPoint,
    zt.CountsEvents,
    zt.BridgesNumpy,
)
MODEL_PROTOCOLS = (zt.BridgesNumpy, zt.LogDensityJets, zt.MixtureJets)
EVERY_PROTOCOL = STRATEGY_PROTOCOLS + LOSS_PROTOCOLS + (zt.LogDensityJets, zt.MixtureJets)


def _offered(obj: object) -> set[str]:
    return {p.__name__ for p in EVERY_PROTOCOL if isinstance(obj, p)}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("autodiff", {"GradientStrategy", "HessianStrategy"}),
        ("numerical", {"GradientStrategy", "HessianStrategy", "BudgetedStrategy"}),
        # its hessian exists to raise GradientError saying that Minuit's HESSE computes one
        ("minuit", {"GradientStrategy", "HessianStrategy"}),
    ],
)
def test_builtin_strategies_offer_their_protocols(name, expected):
    assert _offered(zgrad.gradients.get(name)) == expected


def test_a_strategy_without_hessian_is_no_hessian_strategy():
    class Constant:
        is_autograd = False
        provides_gradient = True

        def value_gradient(self, func, params):
            return float(func()), [0.0 for _ in params]

    assert _offered(Constant()) == {"GradientStrategy"}
    zgrad.gradients.register("constant-contract", Constant())
    try:
        x = zgrad.Parameter("x", 1.0)
        with pytest.raises(zgrad.errors.GradientError, match="provides no Hessian"):
            zgrad.hessian(lambda: x * x, [x], strategy="constant-contract")
    finally:
        zgrad.gradients.unregister("constant-contract")


@pytest.fixture
def parts():
    obs = zgrad.Space("x", limits=(-5.0, 5.0))
    P = zgrad.Parameter
    gauss = zgrad.models.Gauss(obs=obs, mu=P("mu", 0.1), sigma=P("sigma", 1.2))
    expo = zgrad.models.Exponential(obs=obs, lam=P("lam", -0.2))
    return {
        "obs": obs,
        "gauss": gauss,
        "expo": expo,
        "sum": zgrad.models.Sum([gauss, expo], yields=[P("n_sig", 300.0), P("n_bkg", 700.0)]),
        "cb": zgrad.models.CrystalBall(obs, P("cb_mu", 0.0), P("cb_s", 1.0), P("cb_a", 1.5), P("cb_n", 3.0)),
        "poly": zgrad.models.Polynomial(obs, [P("c1", 0.1)]),
        "spline": zgrad.models.SplineShape(obs=obs, x=[-5.0, 0.0, 5.0], y=[1.0, 2.0, 1.0]),
    }


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gauss", {"BridgesNumpy", "LogDensityJets"}),
        ("expo", {"BridgesNumpy", "LogDensityJets"}),
        ("sum", {"BridgesNumpy", "MixtureJets"}),
        ("cb", {"BridgesNumpy"}),
        ("poly", {"BridgesNumpy"}),
        ("spline", {"BridgesNumpy"}),
    ],
)
def test_models_offer_their_protocols(parts, model, expected):
    assert _offered(parts[model]) == expected


def test_bridges_numpy_tells_the_truth(parts):
    flags = [parts[m].uses_py_function for m in ("gauss", "sum", "cb", "spline")]
    assert flags == [False, False, False, True]


LOSS_HOOKS = {"BatchedValues", "FusedValueGradient", "ExactHessian", "EvaluatesAtPoint", "CompiledAtPoint"}


def _loss(parts, kind):
    data = np.linspace(-4.0, 4.0, 50)
    counts, edges = np.full(5, 10.0), np.linspace(-5.0, 5.0, 6)
    gauss, model = parts["gauss"], parts["sum"]
    mu = gauss.params["mu"]
    make = {
        "unbinned": lambda: zgrad.losses.UnbinnedNLL(gauss, data),
        "extended": lambda: zgrad.losses.ExtendedUnbinnedNLL(model, data),
        "binned": lambda: zgrad.losses.BinnedNLL(model, counts, edges),
        "chi2": lambda: zgrad.losses.Chi2(gauss, data[:5], np.ones(5), np.ones(5)),
        "simple": lambda: zgrad.losses.SimpleLoss(lambda: (mu - 1.0) ** 2, [mu], 1.0),
        "sum": lambda: zgrad.losses.UnbinnedNLL(gauss, data) + zgrad.losses.BinnedNLL(model, counts, edges),
    }
    return make[kind]()


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        ("unbinned", LOSS_HOOKS | {"BridgesNumpy", "CountsEvents"}),
        ("extended", LOSS_HOOKS | {"BridgesNumpy", "CountsEvents"}),
        ("binned", LOSS_HOOKS | {"BridgesNumpy"}),
        ("chi2", LOSS_HOOKS | {"BridgesNumpy"}),
        ("simple", LOSS_HOOKS | {"BridgesNumpy"}),
        ("sum", LOSS_HOOKS | {"BridgesNumpy"}),
    ],
)
def test_losses_offer_their_protocols(parts, loss, expected):
    assert _offered(_loss(parts, loss)) == expected


def test_plain_callables_offer_nothing():
    x = zgrad.Parameter("x", 1.0)
    assert _offered(lambda: x**2) == set()
    assert _offered(np.sin) == set()


def test_autodiff_detects_hooks_on_a_plain_function():
    # a function object given a hook as an attribute offers it, as isinstance says
    x = zgrad.Parameter("x", 2.0)

    def f():
        return x**2

    assert not isinstance(f, zt.FusedValueGradient)
    plain = zgrad.gradients.get("autodiff").value_gradient(f, [x])
    assert (float(plain.value), list(plain.gradient)) == (4.0, [4.0])  # the tape: x^2 and 2x at x = 2
    f.zgrad_value_gradient = lambda params, identities: (7.0, [3.0])
    assert isinstance(f, zt.FusedValueGradient)
    result = zgrad.gradients.get("autodiff").value_gradient(f, [x])
    assert (float(result.value), list(result.gradient)) == (7.0, [3.0])
