"""Draw docs/_static/toys-pulls.png, the pull histogram shown on docs/toys.rst.

Run from the repository root: ``python docs/make_toys_figure.py``. It draws the figure
exactly as ``ToyStudy.to_html`` does, for the page's model with more toys.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import zgrad  # noqa: E402
from zgrad.toystudy import _page  # noqa: E402

OUT = Path(__file__).resolve().parent / "_static" / "toys-pulls.png"


def main() -> None:
    obs = zgrad.Space("x", limits=(-5.0, 5.0))
    mu = zgrad.Parameter("mu", 0.2, lower=-1.0, upper=1.0)
    sigma = zgrad.Parameter("sigma", 1.1, lower=0.5, upper=2.0)
    model = zgrad.models.Gauss(obs=obs, mu=mu, sigma=sigma)
    study = zgrad.toys(model, 1000, n_events=500, seed=1, progress=True)
    OUT.write_bytes(_page.pull_png(study.pulls("mu"), "mu", study.summary()["mu"]))
    print(study)
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
