"""Rewrite the stored reference numbers: ``python -m validation.regenerate [--cases PATTERN ...]``.

Run it after an intended change of a closed form, a case's points or its seeded data, and
review the diff of ``validation/data/reference.json`` before committing it. With
``--cases`` only the matching cases are recomputed; the others keep their stored entries.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: Sequence[str] | None = None) -> int:
    """Recompute and write the stored numbers; return the exit status (2 for an unknown case)."""
    parser = argparse.ArgumentParser(
        prog="python -m validation.regenerate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--cases", nargs="+", metavar="PATTERN", help="shell-style patterns (default: all)")
    args = parser.parse_args(argv)

    from validation import cases, reference

    try:
        chosen = [c.name for c in cases.select(args.cases)]
    except ValueError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    document = reference.compute(chosen)
    if args.cases:  # keep every other case as stored
        document["cases"] = {**reference.load().get("cases", {}), **document["cases"]}
        document["cases"] = {
            name: document["cases"][name] for name in cases.CASES if name in document["cases"]
        }
    path = reference.write(document)
    print(f"wrote {len(chosen)} case(s) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
