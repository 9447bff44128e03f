"""Sphinx configuration of neurodyn's documentation site.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` after
``pip install ".[docs]"`` (neurodyn itself must be importable: the API reference is generated
from its docstrings). The notebooks are shown as committed, with their outputs, and are not
executed here (CI executes them separately).
"""
import pathlib
import shutil

import neurodyn

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

project = "neurodyn"
author = "the neurodyn authors"
copyright = "neurodyn authors"
release = neurodyn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
]

# Markdown pages (MyST) and notebooks; rst for the API reference.
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": True}  # predict, score, save, ...: every model has them
autodoc_typehints = "none"  # numpydoc sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = f"neurodyn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []


def _copy_notebooks() -> None:
    """The notebooks live in notebooks/ at the top of the repository; Sphinx reads only
    below docs/, so they are copied to docs/notebooks/ (ignored by git) before each build."""
    target = HERE / "notebooks"
    shutil.rmtree(target, ignore_errors=True)  # no page for a notebook that is gone
    target.mkdir()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy2(nb, target / nb.name)


_copy_notebooks()
