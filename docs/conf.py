"""Sphinx configuration for the reparam documentation (built by ``make docs``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the notebooks are small: one thread each is fastest
# Figures in the executed notebooks: the inline backend turns plt.show() into an embedded PNG.
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

project = "reparam"
author = "reparam contributors"
copyright = "reparam contributors, MIT licence"

import reparam  # noqa: E402

release = version = reparam.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx-mathjax-offline",  # MathJax 3 copied into the site: no CDN needed to typeset math
    "myst_nb",
]

exclude_patterns = ["_build", "figures/**/*.md", "figures/**/*.jsonl", "figures/**/*.json"]
html_theme = "furo"
html_title = f"reparam {release}"
html_static_path: list[str] = []

# Docstrings: Google-style sections (Args, Returns, Raises, References) in reST bodies.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_preserve_defaults = True

# MyST: $...$ and $$...$$ math in the pages, ::: fences, heading anchors for cross-links.
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Tutorials and the concepts page are notebooks in MyST markdown, executed on every build.
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# ``|B|`` (a batch size) appears in reparam.nn.ELBOLoss's docstring outside a literal; define it
# so that reST reads it as the text it is rather than an undefined substitution.
rst_prolog = r"""
.. |B| replace:: \|B\|
"""
