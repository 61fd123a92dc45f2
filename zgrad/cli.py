"""The ``zgrad`` command line.

``zgrad crosscheck package.module:factory`` imports ``factory`` from ``package.module``, calls
it without arguments and cross-checks what it returns: a loss, or a pair ``(loss, reference)``
where ``reference`` is the closed-form gradient as a callable of the values array (or a dict
with ``'gradient'`` and ``'hessian'`` callables), or a dict for a function of a vector or an
iminuit cost: ``{'fcn': ..., 'x0': ...}`` with optionally ``'gradient'``, ``'hessian'``,
``'names'``, ``'limits'`` and ``'reference'``, passed on as :func:`zgrad.crosscheck`'s
arguments of those names (``fcn`` is its first argument). It prints the table, writes
``report.json`` and ``index.html`` into the output folder, and exits with 0 when every row
passes, 1 when some row fails, and 2 when the factory cannot be loaded or called or the
options are invalid or the output folder cannot hold the report (checked before any work).
The files are written atomically and last: a run that fails or is interrupted leaves no
report, and the report files of an earlier run in that folder are removed when a run starts.
``python -m zgrad.cli`` is the same command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from zgrad import _files
from zgrad.errors import ZgradError

__all__ = ["load_factory", "main"]

#: Where ``zgrad crosscheck`` writes its report unless ``--output`` says otherwise.
DEFAULT_OUTPUT = "crosscheck-report"
EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
#: The files of a report; ``report.json`` is renamed into place last.
_REPORT_FILES = ("index.html", "report.json")


class FactoryError(ZgradError):
    """The factory named on the command line could not be imported, found or called.

    A :class:`~zgrad.errors.ZgradError`, like every error zgrad defines; the command reports it
    and exits with status 2.
    """


def load_factory(spec: str) -> Callable[[], Any]:
    """Return the callable named by ``'package.module:attribute'`` (the attribute may be dotted).

    The current directory is searched first, as ``python -m`` does, so a module next to where
    the command runs is found without installing it.

    Raises
    ------
    FactoryError
        If the spec is malformed, the module cannot be imported, or the attribute is missing
        or not callable.

    Examples
    --------
    >>> from zgrad.cli import load_factory
    >>> load_factory("os.path:join")("a", "b") == "a" + __import__("os").sep + "b"
    True
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise FactoryError(f"expected 'package.module:factory', got {spec!r}")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:  # only for this import: a caller of main() keeps its sys.path
        sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise FactoryError(f"cannot import {module_name!r}: {exc}") from exc
    finally:
        if added:
            sys.path.remove(cwd)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise FactoryError(f"{module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise FactoryError(f"{spec!r} is not callable: it is {type(obj).__name__}")
    return obj


#: The keys a factory's dict may hold; ``fcn`` is required.
SPEC_KEYS = ("fcn", "x0", "gradient", "hessian", "names", "limits", "reference")


def _unpack_spec(made: dict) -> tuple[Any, Any, dict]:
    """Split a dict spec into ``(fcn, reference or None, crosscheck keywords)``."""
    unknown = sorted(set(map(str, made)) - set(SPEC_KEYS))
    if unknown or "fcn" not in made:
        raise FactoryError(
            f"the factory returned a dict with keys {sorted(map(str, made))}; it needs 'fcn' and may hold "
            f"{list(SPEC_KEYS[1:])}"
        )
    extra = {key: made[key] for key in SPEC_KEYS[1:-1] if made.get(key) is not None}
    return made["fcn"], made.get("reference"), extra


def _unpack(made: Any) -> tuple[Any, Any, dict]:
    """Split a factory's result into ``(target, reference or None, crosscheck keywords)``."""
    if isinstance(made, dict):
        return _unpack_spec(made)
    if isinstance(made, tuple):
        if len(made) != 2:
            raise FactoryError(
                f"the factory returned a tuple of {len(made)} items; expected (loss, reference)"
            )
        loss, reference = made
    else:
        loss, reference = made, None
    if getattr(loss, "params", None) is None or not callable(loss):
        raise FactoryError(
            f"the factory must return a zgrad loss (a callable with .params), or (loss, reference); got "
            f"{type(loss).__name__}. A function of a vector or an iminuit cost comes as a dict "
            f"{{'fcn': ..., 'x0': ...}} (see zgrad crosscheck --help)"
        )
    return loss, reference, {}


def _error(message: Any) -> int:
    print(f"zgrad crosscheck: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _make(spec: str) -> tuple[Any, Any, dict]:
    """Load and call the factory; raise FactoryError for a result that is no loss, pair or dict spec."""
    factory = load_factory(spec)
    try:
        made = factory()
    except SystemExit as exc:  # a factory is not a program: exiting must not pass for success
        raise FactoryError(
            f"calling {spec} called sys.exit({exc.code!r}); a factory must return a loss"
        ) from None
    return _unpack(made)


def _crosscheck(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `zgrad --help` should not wait for TensorFlow.
    from zgrad.checks import crosscheck
    from zgrad.checks import report as report_pages

    try:  # before any work: a bad path is a usage error, and the earlier run's report goes now
        output = _files.prepare_folder(args.output, _REPORT_FILES)
    except _files.OutputPathError as exc:
        return _error(exc)
    try:
        loss, reference, extra = _make(args.factory)
    except FactoryError as exc:
        return _error(exc)
    except Exception:  # the user's factory raised: show where, and do not report it as a failed check
        traceback.print_exc()
        return _error(f"calling {args.factory} raised (traceback above)")
    try:
        if args.hessian and extra.get("hessian") is None:
            extra["hessian"] = True
        report = crosscheck(
            loss,
            strategies=args.strategies,
            reference=reference,
            tolerances=args.rtol,
            scans=not args.no_html,  # the scans are the page's precision plots: no page, no scans
            **extra,
        )
    except (
        TypeError,
        ValueError,
    ) as exc:  # invalid options: unknown strategy, bad tolerance, reference shape
        return _error(exc)
    print(report)
    contents = {} if args.no_html else {"index.html": report_pages.render_html(report)}
    contents["report.json"] = report.to_json()  # last: its presence means the run completed
    try:
        written = _files.write_files(output, contents)
    except OSError as exc:  # e.g. a full disk: nothing was renamed into place
        return _error(f"cannot write the report into {str(output)!r}: {exc}")
    print("wrote " + ", ".join(str(p) for p in reversed(written)))  # report.json first, as documented
    return EXIT_OK if report.ok else EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zgrad", description="zgrad command line tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "crosscheck",
        help="cross-check the gradient strategies on a loss made by a factory",
        description=(
            "Import FACTORY ('package.module:function'), call it, and cross-check the loss it returns "
            "(or the (loss, reference_gradient) pair, or a dict {'fcn': function of a vector or "
            "iminuit cost, 'x0': start values, optionally 'gradient', 'hessian', 'names', 'limits', "
            "'reference'}). Exit code 0: all rows pass; 1: some fail; "
            "2: the factory could not be loaded or called, or the options or the output folder are invalid."
        ),
    )
    check.add_argument(
        "factory",
        metavar="FACTORY",
        help="'package.module:function' returning a loss, (loss, reference) or a dict spec",
    )
    check.add_argument(
        "--output",
        "-o",
        default=DEFAULT_OUTPUT,
        help=f"folder for report.json and index.html (default: {DEFAULT_OUTPUT})",
    )
    check.add_argument(
        "--strategies",
        nargs="+",
        metavar="NAME",
        default=None,
        help="strategy names (default: every registered strategy that provides a gradient)",
    )
    check.add_argument("--hessian", action="store_true", help="also compare the Hessians")
    check.add_argument(
        "--rtol",
        type=float,
        default=None,
        help="one relative tolerance for all strategies (default: per strategy)",
    )
    check.add_argument("--no-html", action="store_true", help="write report.json only")
    check.set_defaults(handler=_crosscheck)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``zgrad`` command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Examples
    --------
    A factory that cannot be found is reported on stderr with exit code 2:

    >>> from zgrad.cli import main
    >>> main(["crosscheck", "os.path:no_such_factory"])
    2
    """
    args = _parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
