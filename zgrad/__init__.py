"""zgrad: execution and gradient policies for likelihood fits on TensorFlow.

``import zgrad`` is cheap: TensorFlow, numdifftools and iminuit are imported only
when a name that needs them is first used, and TensorFlow's runtime is never
started by the import, so thread settings can still be made afterwards.

The package is layered (base, core, graph ``z``, ``gradients``, ``models``, ``losses``,
``minimize``, ``checks``, ``toystudy``, entry points), each layer importing only from those
below it; :mod:`zgrad.typing` names the protocols by which a layer finds the capabilities
of another's objects. The docs page "Architecture" draws the map.

Examples
--------
>>> import zgrad
>>> zgrad.run.current_policy_graph()
'auto'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zgrad import errors
from zgrad._runmanager import RunManager, run
from zgrad._version import __version__ as __version__

# public name -> "module:attribute" (or "module" for a subpackage), imported on first access
_LAZY = {
    "Parameter": "zgrad.params:Parameter",
    "Space": "zgrad.space:Space",
    "z": "zgrad.z",
    "gradients": "zgrad.gradients",
    "models": "zgrad.models",
    "losses": "zgrad.losses",
    "minimize": "zgrad.minimize",
    "checks": "zgrad.checks",
    "crosscheck": "zgrad.checks.compare:crosscheck",
    "GradientResult": "zgrad.gradients.result:GradientResult",
    "derivatives": "zgrad.gradients._api:derivatives",
    "gradient": "zgrad.gradients._api:gradient",
    "hessian": "zgrad.gradients._api:hessian",
    "value_gradient": "zgrad.gradients._api:value_gradient",
    "toys": "zgrad.toystudy._api:toys",
    "ToyStudy": "zgrad.toystudy.study:ToyStudy",
    "set_values": "zgrad._values:set_values",
    "typing": "zgrad.typing",
}

__all__ = ["RunManager", "errors", "run", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from zgrad import checks, gradients, losses, minimize, models, typing, z
    from zgrad._values import set_values
    from zgrad.checks.compare import crosscheck
    from zgrad.gradients._api import derivatives, gradient, hessian, value_gradient
    from zgrad.gradients.result import GradientResult
    from zgrad.params import Parameter
    from zgrad.space import Space
    from zgrad.toystudy._api import toys
    from zgrad.toystudy.study import ToyStudy


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'zgrad' has no attribute {name!r}")
    module_name, _, attr = target.partition(":")
    value = importlib.import_module(module_name)
    if attr:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
