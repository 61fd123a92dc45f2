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
