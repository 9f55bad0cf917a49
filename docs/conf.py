"""Sphinx configuration of the softmaxreg site.

Build (from the repository root):

    pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

Every example and every command shown is run during the build; a failing one fails it.  The
MNIST tutorial uses MNIST when ``SOFTMAXREG_DATA`` names the folder of its IDX files, and
scikit-learn's 8×8 digits otherwise (the page says which).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

import softmaxreg  # noqa: E402

project = "softmaxreg"
author = "the softmaxreg developers"
copyright = "2026, the softmaxreg developers"  # noqa: A001 - Sphinx's name
release = version = softmaxreg.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "executed",
    "api_check",
]

exclude_patterns = ["_build", "**/GALLERY_HEADER.rst", "**.ipynb_checkpoints",
                    "auto_tutorials/*.md5", "auto_tutorials/*.py", "auto_tutorials/*.ipynb",
                    "auto_tutorials/*.zip", "auto_tutorials/*.json"]
templates_path = ["_templates"]
html_static_path = []
root_doc = "index"

# -- API reference -------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # the docstrings state shapes in words, as the notes do
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False


# -- tutorials (sphinx-gallery) ------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["tutorials"],
    "gallery_dirs": ["auto_tutorials"],
    "filename_pattern": r"/plot_",  # every tutorial runs
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": False,  # run them all, then fail the build if any raised
    "only_warn_on_example_error": False,
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "min_reported_time": 10**6,  # no "Total running time" noise on the pages
    "write_computation_times": False,
    "show_memory": False,
    "capture_repr": (),  # what a tutorial shows, it prints
}

# -- HTML -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"softmaxreg {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"**": ["sidebar-nav-bs"], "index": []}
html_show_sourcelink = False

# Data the pages read: the benchmark results and where MNIST is (for the page that says so).
os.environ.setdefault("SOFTMAXREG_DOCS_ROOT", str(DOCS.parent))
