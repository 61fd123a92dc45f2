"""The main job: ``python -m validation``, the whole suite from the command line.

``python -m validation [--quick] [--output DIR] [--cases ...] [--strategies ...] [--toys N]
[--workers N | --scheduler ADDRESS] [--no-fits]``

The output folder is checked before any work (exit 2 naming the path and what is wrong), and
the report files an earlier run left there are removed then. The report is written
atomically and last: ``index.html`` and ``report.json`` go to temporary names in the folder and
are renamed into place only when both were written, so a run that fails or is interrupted
leaves no report, and never one that claims success.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from zgrad import _files

# before TensorFlow is first imported (by the runner), or its C++ start-up chatter floods stderr
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_OUTPUT = "validation-report"
#: The report's files, in the order they are renamed into place.
REPORT_FILES = ("index.html", "report.json")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _non_negative(text: str) -> int:
    if text.strip() == "0":
        return 0
    return _positive(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m validation",
        description=(
            "Check every gradient strategy against closed-form gradients and Hessians of the reference "
            "cases, fit the model cases with every strategy (optionally toy studies), print a summary "
            "and write DIR/report.json and DIR/index.html. Exit status: 0 all passed, 1 some failed, "
            "2 bad arguments (an output folder that cannot hold the report included) or the report "
            "could not be written."
        ),
    )
    parser.add_argument(
        "--quick", action="store_true", help="only the first point of each case, one precision plot"
    )
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
        help="strategies to check (default: every registered one; derivatives need one with a gradient)",
    )
    parser.add_argument(
        "--toys", type=_non_negative, default=0, metavar="N", help="toy data sets per model case"
    )
    parser.add_argument("--no-fits", dest="fits", action="store_false", help="skip the fit-level comparison")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=_positive, metavar="N", help="run tasks in N spawned local processes"
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run tasks on a dask.distributed scheduler (pip install zgrad[dask])",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite as the command line does and return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)  # exits with status 2 on malformed arguments

    def usage_error(exc: Exception) -> int:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    try:  # before any work; also removes an earlier run's report, which this run may not replace
        output = _files.prepare_folder(args.output, REPORT_FILES)
    except _files.OutputPathError as exc:
        return usage_error(exc)
    # imported here, after the environment default above and after argument errors (which need no TensorFlow)
    from validation import executors, page, report, runner

    try:
        executor = executors.make_executor(workers=args.workers, scheduler=args.scheduler)
    except (ImportError, ValueError, OSError) as exc:  # no dask, a malformed address, or no scheduler there
        return usage_error(exc)
    try:
        result = runner.run_suite(
            quick=args.quick,
            cases=args.cases,
            strategies=args.strategies,
            toys=args.toys,
            fits=args.fits,
            executor=executor,
            progress=True,
        )
    except ValueError as exc:  # unknown case pattern or strategy: a usage error, found before any work
        return usage_error(exc)
    finally:
        executor.close()
    report.print_table(result)
    # report.json last: it is the file that says the run completed and whether it passed
    contents = {"index.html": page.render_html(result), "report.json": report.render(result)}
    try:
        html_path, path = _files.write_files(output, contents)
    except OSError as exc:
        print(f"{parser.prog}: error: cannot write the report into {str(output)!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"report written to {path} and {html_path}")
    return EXIT_OK if result.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
