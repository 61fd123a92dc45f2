"""A toy study (zfit issue #664), zgrad against its peers, each contender in a fresh process.

Run from the repository root::

    python benchmarks/bench_toys.py [--toys 200] [--budget 60] [--contenders zgrad tf roofit ...]
    python benchmarks/bench_toys.py --python-roofit PATH --python-jax PATH --python-zfit PATH

The workload (``_toy_common.py``): Gauss + Exponential with two yields on [0, 10];
each toy resets the parameters, draws 2000 events at the start values, builds the
loss and fits MIGRAD + HESSE. Every contender runs in a process of its own with the
fixed allocator settings of ``_harness.py``; a peer can run under the interpreter of
its own virtual environment (``--python-jax`` ...). Ratios are to RooFit from the
same run, or to hand-written TensorFlow when RooFit is not there.
"""

from __future__ import annotations

import _harness

_harness.fix_environment()

import argparse  # noqa: E402  (the imports below must follow the re-execution)
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import _toy_common as common  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ALL_CONTENDERS = ["roofit", "jax", "tf", "tf-grad", "zfit", "zgrad", "zgrad-toys"]
#: The first of these that ran is the baseline of every ratio.
BASELINES = ["roofit", "tf"]
WORKERS = {"zgrad": "_toy_zgrad.py", "zgrad-toys": "_toy_zgrad.py"}
DESCRIPTIONS = {
    "roofit": "RooFit fitTo (cpu backend) + HESSE",
    "jax": "JAX jit value, grad, hessian + iminuit",
    "tf": "hand-written TF (tape grad + Hessian) + iminuit",
    "tf-grad": "hand-written TF, tape grad only + iminuit",
    "zfit": "zfit (create_sampler/resample, one loss)",
    "zgrad": "zgrad, new loss per toy (documented way)",
    "zgrad-toys": "zgrad.toys",
}
#: Peers that can run under an interpreter of their own: option --python-<name>.
OWN_PYTHON = ("jax", "zfit", "roofit")
HOW_TO_GET = {
    "jax": "python -m venv VENV && VENV/bin/pip install jax iminuit numpy; then --python-jax VENV/bin/python",
    "zfit": "python -m venv VENV && VENV/bin/pip install zfit; then --python-zfit VENV/bin/python",
    "roofit": "python -m venv VENV && VENV/bin/pip install root iminuit numpy (ROOT's wheel, about 250 MB; "
    "`import ROOT`); then --python-roofit VENV/bin/python",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contenders", nargs="+", default=ALL_CONTENDERS, choices=ALL_CONTENDERS)
    parser.add_argument("--toys", type=int, default=200, help="at most this many toys per contender")
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds of toys per contender: it stops after max(--min-toys toys, this); 0: no limit",
    )
    parser.add_argument(
        "--min-toys", type=int, default=common.EARLY_TOYS, help="toys run whatever the budget"
    )
    parser.add_argument("--seed", type=int, default=664)
    for name in OWN_PYTHON:
        parser.add_argument(
            f"--python-{name}", default=sys.executable, metavar="PATH", help=f"interpreter for {name}"
        )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per contender process")
    parser.add_argument("--json", help="also write every record (per-toy columns included) to this file")
    args = parser.parse_args()
    if args.toys < 1 or args.min_toys < 1 or args.budget < 0:
        parser.error(
            f"--toys and --min-toys must be >= 1 and --budget >= 0; got {args.toys}, "
            f"{args.min_toys}, {args.budget}"
        )
    args.contenders = sorted(set(args.contenders), key=ALL_CONTENDERS.index)
    return args


def interpreter(name: str, args: argparse.Namespace) -> str:
    return getattr(args, f"python_{name}") if name in OWN_PYTHON else sys.executable


def run_contender(name: str, args: argparse.Namespace, workdir: str) -> dict:
    out_path = os.path.join(workdir, f"{name}.json")
    command = [
        interpreter(name, args),
        os.path.join(HERE, WORKERS.get(name, "_toy_peers.py")),
        *("--contender", name, "--toys", str(args.toys), "--budget", str(args.budget)),
        *("--min-toys", str(args.min_toys), "--seed", str(args.seed), "--out", out_path),
    ]
    record = _harness.run_json_worker(command, out_path, timeout=args.timeout)
    record.setdefault("contender", name)
    record["python"] = command[0]
    return record


# --- tables ---------------------------------------------------------------------------------------


def _t(seconds: float | None) -> str:
    return "-" if seconds is None else _harness.format_seconds(seconds)


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} MiB"


def _ratio(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}x"


def _growth(r: dict) -> str:
    if r.get("rss_early_mib") is None:
        return "-"
    return f"{100 * (r['rss_last_mib'] / r['rss_early_mib'] - 1):+.1f} %"


def absolute_rows(records: list[dict]) -> list[list[str]]:
    rows = []
    for r in records:
        label = r["contender"]
        if "toys" not in r:
            rows.append([label, "skipped" if "skipped" in r else "FAILED", *[""] * 9])
            continue
        rows.append(
            [
                label,
                f"{r['valid']}/{r['toys']}",
                str(r["at_limit"]),
                _t(r["median_toy_s"]),
                _t(r["first_toy_s"]),
                _t(r["import_s"]),
                _t(r["wall_s"]),
                _mib(r["rss_early_mib"]),
                _mib(r["rss_last_mib"]),
                _growth(r),
                " / ".join(_t(r[f"median_{step}_s"]) for step in ("sample", "loss", "fit")),
            ]
        )
    return rows


def ratio_rows(records: list[dict], base: dict) -> list[list[str]]:
    rows = []
    for r in records:
        if "toys" not in r:
            continue
        same_toys = r["toys"] == base["toys"]
        rows.append(
            [
                r["contender"],
                _ratio(r["median_toy_s"], base["median_toy_s"]),
                _ratio(r["first_toy_s"], base["first_toy_s"]),
                _ratio(r["wall_s"], base["wall_s"]) if same_toys else f"- ({r['toys']} toys)",
                _ratio(r["rss_last_mib"], base["rss_last_mib"]),
                f"{100 * (r['valid'] / r['toys'] - base['valid'] / base['toys']):+.1f}",
                "-" if r["mu_mean"] is None else f"{r['mu_mean']:.4f} +- {r['mu_sd'] or 0:.4f}",
            ]
        )
    return rows


def print_results(records: list[dict], args: argparse.Namespace) -> None:
    _harness.print_table(
        [
            "contender",
            "valid",
            "at limit",
            "per toy (median)",
            "first toy",
            "import",
            "process total",
            f"RSS after {common.EARLY_TOYS}",
            "RSS after last",
            "growth",
            "sample / loss / fit (median)",
        ],
        absolute_rows(records),
        title=f"Toy study: {common.N_EVENTS} events per toy, MIGRAD + HESSE",
    )
    base = next((r for name in BASELINES for r in records if r["contender"] == name and "toys" in r), None)
    if base is None:
        print("\nNo ratios: neither RooFit nor hand-written TF ran.")
        return
    _harness.print_table(
        [
            "contender",
            "per toy",
            "first toy",
            "process total",
            "RSS after last",
            "valid % - base",
            "mu (valid)",
        ],
        ratio_rows(records, base),
        title=f"Ratio to {base['contender']} ({DESCRIPTIONS[base['contender']]}), same run",
    )


def target_rows(records: list[dict]) -> list[list[str]]:
    """The repeated-fits issue's targets for each zgrad row; RooFit's numbers are the reference."""
    roofit = next((r for r in records if r["contender"] == "roofit" and "toys" in r), None)
    rows = []
    for r in (r for r in records if r["contender"].startswith("zgrad") and "toys" in r):
        name = r["contender"]
        ratio = r["median_toy_s"] / roofit["median_toy_s"] if roofit else None
        rows.append(_target(f"{name}: per toy / RooFit's", ratio, 2.0, "<= 2x", f"{ratio or 0:.2f}x"))
        rows.append(_target(f"{name}: first toy", r["first_toy_s"], 1.5, "<= 1.5 s", _t(r["first_toy_s"])))
        growth = r["rss_last_mib"] / r["rss_early_mib"] - 1 if r["rss_early_mib"] else None
        label = f"{name}: RSS after {r['toys']} toys over after {common.EARLY_TOYS} (issue: 1000)"
        rows.append(_target(label, growth, 0.05, "<= +5 %", f"{100 * (growth or 0):+.1f} %"))
        diff = 100 * (r["valid"] / r["toys"] - roofit["valid"] / roofit["toys"]) if roofit else None
        shown = f"{diff or 0:+.1f} points"
        rows.append(_target(f"{name}: valid % - RooFit's", diff and abs(diff), 2.0, "within 2 points", shown))
    return rows


def _target(label: str, measured: float | None, limit: float, limit_text: str, shown: str) -> list[str]:
    """A row of the targets table; ``-`` where the number is missing (no RooFit, too few toys)."""
    if measured is None:
        return [label, "-", limit_text, "-"]
    return [label, shown, limit_text, "met" if measured <= limit else "missed"]


def print_notes(records: list[dict], args: argparse.Namespace) -> None:
    limit = f"stopping after max({args.min_toys} toys, {args.budget:g} s)" if args.budget else "no time limit"
    notes = [
        f"Each contender ran at most {args.toys} toys, {limit}; seed {args.seed}.",
        f"Each toy: a fixed {common.N_EVENTS} events (not Poisson) drawn at the start values.",
        "Per toy = reset + sampling + loss construction + MIGRAD + HESSE (median over the toys).",
        "First toy: includes building the model (and the traces or compilation where there are any).",
        "Process total: wall time of the whole process, interpreter start and imports included;",
        "  it depends on the number of toys, so its ratio is shown only for the baseline's number.",
        f"at limit: toys with a fitted value within {common.AT_LIMIT_ERRORS} of its error of a limit.",
        "valid: each system's own verdict (iminuit: fmin.is_valid after HESSE; RooFit: status 0 and",
        "  covQual 3; zfit and zgrad: result.valid).",
    ]
    print("\n" + "\n".join(notes))
    for r in records:
        if str(r.get("skipped", "")).startswith("not installed") and r["contender"] in HOW_TO_GET:
            print(f"To get {r['contender']}: {HOW_TO_GET[r['contender']]}")
        if "traces" in r:
            print(f"{r['contender']}: graph traces alive at the end: {r['traces']}")


def print_environment(records: list[dict]) -> None:
    env = _harness.describe_environment()
    for r in records:
        env.extend(
            (f"{library} ({r['contender']})", version) for library, version in r.get("versions", {}).items()
        )
    _harness.print_table(["setting", "value"], env, title="Environment")
    rows = [
        [
            r["contender"],
            DESCRIPTIONS[r["contender"]],
            "this one" if r["python"] == sys.executable else r["python"],
            r.get("skipped") or r.get("failed") or "",
        ]
        for r in records
    ]
    _harness.print_table(
        ["contender", "what", "interpreter", "not measured because"], rows, title="Contenders"
    )


def main() -> int:
    args = parse_args()
    records = []
    with tempfile.TemporaryDirectory(prefix="zgrad-bench-toys-") as workdir:
        for name in args.contenders:
            print(f"[{time.strftime('%H:%M:%S')}] {name} ...", file=sys.stderr, flush=True)
            record = run_contender(name, args, workdir)
            status = (
                record.get("skipped")
                or record.get("failed")
                or (f"{record['toys']} toys, median {_t(record['median_toy_s'])}")
            )
            print(f"    {status}", file=sys.stderr, flush=True)
            records.append(record)
    print_environment(records)
    print_results(records, args)
    rows = target_rows(records)
    if rows:
        _harness.print_table(
            ["target (repeated-fits issue)", "measured", "limit", "result"],
            rows,
            title="Targets (informational)",
        )
    print_notes(records, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    return 1 if any("failed" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
