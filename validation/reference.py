"""Stored reference numbers: the closed-form gradient of every case at every point, as data.

``validation/data/reference.json`` is written by ``python -m validation.regenerate`` and
read by the suite: a :class:`ReferenceTask` recomputes a case's closed-form gradient and
compares it with the stored numbers, so an accidental change of a closed form (or of the
seeded data it is evaluated on) fails the suite even when every strategy still agrees
with the changed formula.

File layout (``format`` 1)::

    {"format": 1, "generated_by": "python -m validation.regenerate", "created": ...,
     "environment": {...}, "rtol": 1e-9,
     "cases": {NAME: {"dtype": ..., "params": [...],
                      "data": {"n": ..., "sum": ..., "sum_sq": ...},   # fingerprint of the seeded data
                      "points": {LABEL: {"x": [...], "gradient": [...]}}}}}
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from validation import cases as _cases
from validation.derivatives import reference
from zgrad.checks.report import environment

__all__ = ["PATH", "RTOL", "ReferenceCheck", "ReferenceTask", "compute", "load", "write"]

#: Where the stored numbers live.
PATH = Path(__file__).resolve().parent / "data" / "reference.json"
#: Stored and recomputed numbers agree to this relative precision (float64 closed forms in NumPy,
#: summed over at most a few thousand events: rounding differences between platforms stay ~1e-14).
RTOL = 1e-9
FORMAT = 1


def _fingerprint(data: dict[str, np.ndarray]) -> dict[str, float]:
    values = (
        np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in data.values()])
        if data
        else np.zeros(0)
    )
    return {"n": int(values.size), "sum": float(values.sum()), "sum_sq": float((values * values).sum())}


def compute_case(name: str) -> dict[str, Any]:
    """Return the stored-number entry of case ``name``, computed now."""
    case = _cases.CASES[name]
    points = {}
    data = None
    for label, _ in case.points:
        x, data, gradient, *_ = reference(case, label)
        points[label] = {"x": x.tolist(), "gradient": np.asarray(gradient, dtype=float).tolist()}
    return {
        "dtype": case.dtype,
        "params": [p.name for p in case.params],
        "data": _fingerprint(data),
        "points": points,
    }


def compute(names: Sequence[str] | None = None) -> dict[str, Any]:
    """Return the whole document for cases ``names`` (default: every case)."""
    return {
        "format": FORMAT,
        "generated_by": "python -m validation.regenerate",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "rtol": RTOL,
        "cases": {name: compute_case(name) for name in (names or list(_cases.CASES))},
    }


def write(document: dict[str, Any], path: Path | None = None) -> Path:
    """Write ``document`` as JSON to ``path`` (default :data:`PATH`); floats round-trip exactly."""
    path = Path(path) if path is not None else PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return path


def load(path: Path | None = None) -> dict[str, Any]:
    """Return the stored document at ``path`` (default :data:`PATH`); an empty one when there is none."""
    path = Path(path) if path is not None else PATH
    if not path.exists():
        return {"format": FORMAT, "cases": {}}
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ReferenceCheck:
    """The closed-form gradient of one case at one point, now versus stored."""

    case: str
    point: str
    max_deviation: float | None
    ok: bool
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the check as a plain dict."""
        return asdict(self)


def _deviation(now: np.ndarray, stored: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(stored))), 1e-300)
    # each component relative to itself, floored at 1e-3 of the largest (a near-zero component)
    floor = np.maximum(np.abs(stored), 1e-3 * scale)
    return float(np.max(np.abs(now - stored) / floor))


_HINT = "if the change is intended, run python -m validation.regenerate and review the diff"


def check_case(name: str, stored: dict[str, Any]) -> list[ReferenceCheck]:
    """Compare case ``name`` computed now with its entry in ``stored`` (the document's ``cases``)."""
    case = _cases.CASES[name]
    entry = stored.get(name)
    if entry is None:
        return [ReferenceCheck(name, "*", None, False, f"no stored numbers for this case; {_HINT}")]
    now = compute_case(name)
    if now["data"]["n"] != entry["data"]["n"] or not all(
        math.isclose(now["data"][k], entry["data"][k], rel_tol=RTOL) for k in ("sum", "sum_sq")
    ):
        return [
            ReferenceCheck(
                name, "*", None, False, f"the seeded data changed: {entry['data']} -> {now['data']}"
            )
        ]
    checks = []
    for label, _ in case.points:
        if label not in entry["points"]:
            checks.append(
                ReferenceCheck(name, label, None, False, f"no stored numbers for this point; {_HINT}")
            )
            continue
        stored_point, point = entry["points"][label], now["points"][label]
        if not np.array_equal(np.asarray(stored_point["x"]), np.asarray(point["x"])):
            checks.append(
                ReferenceCheck(
                    name, label, None, False, f"the point moved: {stored_point['x']} -> {point['x']}"
                )
            )
            continue
        dev = _deviation(np.asarray(point["gradient"]), np.asarray(stored_point["gradient"]))
        ok = dev <= RTOL
        message = (
            ""
            if ok
            else f"closed-form gradient changed: {stored_point['gradient']} -> {point['gradient']}; {_HINT}"
        )
        checks.append(ReferenceCheck(name, label, dev, ok, message))
    return checks


@dataclass(frozen=True)
class ReferenceTask:
    """Check one case's closed-form gradients against the stored numbers."""

    case: str

    @property
    def label(self) -> str:
        """``case stored numbers``."""
        return f"{self.case} stored numbers"

    def run(self) -> list[ReferenceCheck]:
        """Run :func:`check_case` against the file in the repository."""
        return check_case(self.case, load().get("cases", {}))
