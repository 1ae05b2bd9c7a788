"""Sphinx configuration: ``make docs`` (``python -m sphinx -W -q -b html docs docs/_build/html``)."""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
sys.path.insert(0, ROOT)

# Importing chainer_dcgan registers the chainer 7.8.1 shims also where the package is not
# installed (the startup hook then did not run), before autodoc imports chainer.
import chainer_dcgan  # noqa: E402

project = "chainer-dcgan"
author = "the chainer-dcgan contributors"
copyright = "2026, " + author
release = version = chainer_dcgan.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

# Google-style "Args:"/"Returns:" docstrings.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
# Methods that override chainer's without a docstring of their own stay out of the pages
# (chainer's docstrings refer to labels of chainer's documentation).
autodoc_inherit_docstrings = False

exclude_patterns = ["_build", "dev", "Thumbs.db", ".DS_Store"]
html_theme = "alabaster"
html_static_path = []
