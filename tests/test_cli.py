"""The ``zgrad crosscheck module:factory`` command, in-process and as ``python -m zgrad.cli``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from zgrad.cli import load_factory, main

FACTORY_MODULE = textwrap.dedent(
    """
    import zgrad

    def _loss():
        x, y = zgrad.Parameter("x", -0.7), zgrad.Parameter("y", 1.3)
        return zgrad.losses.SimpleLoss(lambda: (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2, [x, y], errordef=1.0)

    def rosenbrock_gradient(v):
        a, b = v
        return [-2.0 * (1.0 - a) - 400.0 * a * (b - a**2), 200.0 * (b - a**2)]

    def loss_only():
        return _loss()

    def with_reference():
        return _loss(), rosenbrock_gradient

    def wrong_reference():
        return _loss(), lambda v: [g * 1.01 for g in rosenbrock_gradient(v)]

    def not_a_loss():
        return 42

    def raises():
        raise RuntimeError("factory failed on purpose")
    """
)


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    """Write the factory module under a unique name into tmp_path and put tmp_path on sys.path."""
    name = f"zgrad_cli_factories_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(FACTORY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_a_passing_check_writes_both_files_and_exits_0(factory_module, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["crosscheck", f"{factory_module}:with_reference", "--output", str(out)]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["ok"] is True and doc["reference_source"] == "closed form"
    assert doc["strategies"] == ["autodiff", "numerical"]
    assert "data:image/png;base64," in (out / "index.html").read_text()
    printed = capsys.readouterr().out
    assert printed.startswith("zgrad crosscheck: OK  reference: closed form")
    assert f"wrote {out / 'report.json'}, {out / 'index.html'}" in printed


def test_a_loss_without_reference_is_checked_against_autodiff(factory_module, tmp_path):
    out = tmp_path / "r"
    args = [
        "crosscheck",
        f"{factory_module}:loss_only",
        "-o",
        str(out),
        "--hessian",
        "--no-html",
        "--strategies",
        "numerical",
    ]
    assert main(args) == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["reference_source"] == "autodiff" and doc["strategies"] == ["numerical"]
    assert [r["level"] for r in doc["rows"]] == ["gradient"] * 2 + ["hessian"] * 3
    assert not (out / "index.html").exists()


def test_a_wrong_reference_gradient_exits_1(factory_module, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["crosscheck", f"{factory_module}:wrong_reference", "-o", str(out), "--no-html"]) == 1
    doc = json.loads((out / "report.json").read_text())
    assert doc["summary"]["n_failures"] == 4
    assert capsys.readouterr().out.startswith("zgrad crosscheck: FAILED")
    # a loose enough tolerance accepts the 1 % error
    assert (
        main(
            ["crosscheck", f"{factory_module}:wrong_reference", "-o", str(out), "--no-html", "--rtol", "0.02"]
        )
        == 0
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon_here", "expected 'package.module:factory', got 'no_colon_here'"),
        ("zgrad_no_such_module_xyz:f", "cannot import 'zgrad_no_such_module_xyz'"),
        ("{mod}:missing", "has no attribute 'missing'"),
        (
            "{mod}:not_a_loss",
            "must return a zgrad loss (a callable with .params), or (loss, reference); got int",
        ),
    ],
)
def test_bad_factories_exit_2_with_a_message(factory_module, tmp_path, capsys, target, message):
    target = target.format(mod=factory_module)
    assert main(["crosscheck", target, "-o", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_raising_factory_and_bad_options_exit_2(factory_module, tmp_path, capsys):
    assert main(["crosscheck", f"{factory_module}:raises", "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "RuntimeError: factory failed on purpose" in err and "(traceback above)" in err
    assert main(["crosscheck", f"{factory_module}:loss_only", "--strategies", "nope"]) == 2
    assert "Unknown gradient strategy 'nope'" in capsys.readouterr().err


def test_load_factory_follows_dotted_attributes():
    assert load_factory("os:path.join") is os.path.join
    with pytest.raises(Exception, match="is not callable: it is str"):
        load_factory("os:sep")


def test_usage_errors_come_from_argparse(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def _run_module(factory_module: str, tmp_path: Path, out: Path, factory: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "zgrad.cli",
            "crosscheck",
            f"{factory_module}:{factory}",
            "--output",
            str(out),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.subprocess
def test_python_m_zgrad_cli_writes_the_report_and_exits_0(factory_module, tmp_path):
    out = tmp_path / "cli-report"
    proc = _run_module(factory_module, tmp_path, out, "with_reference")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "report.json").read_text())["schema_version"] == "1.0"
    assert (out / "index.html").read_text().count("data:image/png;base64,") == 3
    assert "zgrad crosscheck: OK" in proc.stdout


@pytest.mark.subprocess
def test_python_m_zgrad_cli_exits_1_for_a_wrong_reference_gradient(factory_module, tmp_path):
    out = tmp_path / "cli-report"
    proc = _run_module(factory_module, tmp_path, out, "wrong_reference")
    assert proc.returncode == 1, proc.stderr
    assert json.loads((out / "report.json").read_text())["ok"] is False
    assert (out / "index.html").exists()
