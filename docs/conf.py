"""Sphinx configuration for the zgrad documentation.

Build from the repository root with::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The build never touches the network: no intersphinx inventories are fetched.
"""

from importlib import metadata

project = "zgrad"
author = "The zgrad developers"
copyright = "zgrad developers"

try:
    release = metadata.version("zgrad")
except metadata.PackageNotFoundError:
    # The config must stay loadable before `pip install -e .`; autodoc will
    # then report the missing package itself.
    release = "unknown"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
nitpicky = False

# autodoc / autosummary
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc sections already give the types

# numpydoc
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# HTML output
html_theme = "pydata_sphinx_theme"
html_title = f"zgrad {release}"
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
