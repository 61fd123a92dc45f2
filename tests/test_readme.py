"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out.strip()
    assert out  # every example prints what it shows
    if "crosscheck" in BLOCKS[index]:  # the fit converged and every strategy agreed
        assert "valid=True" in out
        assert out.splitlines()[-1] == "True"


CI = README.parent / ".ci" / "run"


def test_quick_start_is_two_self_contained_commands():
    start = README.read_text().index("## Quick start")
    quick = re.findall(r"```bash\n(.*?)```", README.read_text()[start:], flags=re.S)[:2]
    assert quick == [
        "pip install -e . && python -m validation\n",
        'pip install -e ".[test,dask]" && python -m pytest\n',
    ]


def test_ci_runs_the_readme_test_command_with_the_browser_required():
    lines = [line.strip() for line in CI.read_text().splitlines()]
    assert "python -m pytest" in lines  # the command the README's quick start ends with
    install = next(line for line in lines if line.startswith("python -m pip install -e"))
    assert "test" in install and "dask" in install  # at least the extras the README's command installs
    # the variable that turns the browser test's skip into a failure (tests/test_validation.py)
    assert "export ZGRAD_REQUIRE_BROWSER=1" in lines
    assert lines.index("export ZGRAD_REQUIRE_BROWSER=1") < lines.index("python -m pytest")
