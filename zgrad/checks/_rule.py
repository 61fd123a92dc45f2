"""The numbers of the verdict rule of :mod:`zgrad.checks.compare`, shared by the check and its report."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "CLOSED_FORM",
    "DEFAULT_RTOL",
    "ERROR_COVERED",
    "INCONCLUSIVE_FRACTION",
    "NUMERICAL_REFERENCE",
    "OTHER_RTOL",
    "RULE",
    "SCALE_FLOOR",
]

#: Relative tolerance per strategy name when ``tolerances`` does not say otherwise.
DEFAULT_RTOL: Mapping[str, float] = {"autodiff": 1e-8, "numerical": 1e-6}
#: Relative tolerance of strategies not named in :data:`DEFAULT_RTOL`.
OTHER_RTOL = 1e-6
#: Strategies whose own error estimate may cover a deviation larger than ``rtol * scale``.
ERROR_COVERED = frozenset({"numerical"})
#: A component's scale is at least this fraction of the largest reference component.
SCALE_FLOOR = 1e-3
#: Error estimates larger than this fraction of a component's scale make its row inconclusive.
INCONCLUSIVE_FRACTION = 0.1

CLOSED_FORM = "closed form"
NUMERICAL_REFERENCE = "numerical (accurate)"

#: The rule in words, as the JSON document and the HTML page state it.
RULE = (
    "ok when |deviation| <= tolerance; tolerance = max(rtol * scale, cover); "
    "scale = max(|reference_i|, scale_floor * max_j |reference_j|) over the same level and point; "
    "cover = the strategy's own error estimate (for the strategies in error_covered) "
    "+ the reference's error estimate (when the reference is numerical)"
)
