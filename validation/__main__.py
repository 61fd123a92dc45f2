"""The command line: ``python -m validation [--quick] [--output DIR] [--cases ...] [--strategies ...]``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

# before TensorFlow is first imported (by the runner), or its C++ start-up chatter floods stderr
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_OUTPUT = "validation-report"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m validation",
        description=(
            "Check every gradient strategy against closed-form gradients and Hessians of the reference "
            "cases; print a summary and write DIR/report.json. Exit status: 0 all passed, 1 some failed, "
            "2 bad arguments."
        ),
    )
    parser.add_argument("--quick", action="store_true", help="only the first point of each case")
    parser.add_argument(
        "--output", metavar="DIR", default=DEFAULT_OUTPUT, help=f"report folder (default: {DEFAULT_OUTPUT}/)"
    )
    parser.add_argument(
        "--cases", nargs="+", metavar="PATTERN", help="shell-style patterns of case names (default: all)"
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        metavar="NAME",
        help="strategies to check (default: every registered strategy that provides a gradient)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite as the command line does and return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)  # exits with status 2 on malformed arguments

    # imported here, after the environment default above and after argument errors (which need no TensorFlow)
    from validation import report, runner

    try:
        result = runner.run_suite(
            quick=args.quick, cases=args.cases, strategies=args.strategies, progress=True
        )
    except ValueError as exc:  # unknown case pattern or strategy: a usage error, found before any work
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report.print_table(result)
    path = report.write(result, args.output)
    print(f"report written to {path}")
    return EXIT_OK if result.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
