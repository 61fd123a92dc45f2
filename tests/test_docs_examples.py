"""Every Python example in docs/ runs: code blocks in order, one fresh interpreter per page.

Blocks written as ``>>>`` sessions run as doctests (their output is compared); other
blocks are executed. A block marked ``:class: not-run`` (code of another library, shown
for comparison) is skipped. A fresh interpreter per page, because some pages show what
must happen before TensorFlow's runtime starts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"\.\. code-block:: python\n((?:[ \t]+:[\w-]+:.*\n)*)((?:\n|[ \t]+.*\n)+)")
PAGES = sorted(p for p in (ROOT / "docs").glob("*.rst") if BLOCK.search(p.read_text()))

RUNNER = """
import doctest, sys, textwrap, warnings
warnings.simplefilter("error")  # as in the test suite: docs must not show deprecated usage
warnings.filterwarnings(
    "ignore", category=DeprecationWarning, module=r"(tensorflow|keras|google|flatbuffers)\\."
)
blocks = {blocks!r}
namespace = {{"__name__": "docs_example"}}
parser = doctest.DocTestParser()
runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
for index, code in enumerate(blocks):
    name = "{page}[%d]" % index
    if code.lstrip().startswith(">>>"):
        test = parser.get_doctest(code, namespace, name, name, 0)
        runner.run(test, clear_globs=False)
        namespace = test.globs
    else:
        exec(compile(code, name, "exec"), namespace)
failed = runner.summarize(verbose=False).failed
sys.exit(1 if failed else 0)
"""


def _blocks(page: Path) -> list[str]:
    out = []
    for options, body in BLOCK.findall(page.read_text()):
        if "not-run" not in options:
            out.append(textwrap.dedent(body))
    return out


def test_docs_have_examples():
    assert len(PAGES) >= 6


@pytest.mark.subprocess
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_docs_examples_run(page, tmp_path):
    script = RUNNER.format(blocks=_blocks(page), page=page.name)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{page.name}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
