"""The README is valid reStructuredText (it is also the docs' front page and the package description)."""
import os

import docutils.core
import docutils.utils

from conftest import REPO


def test_readme_renders_without_errors():
    with open(os.path.join(REPO, "README.rst"), encoding="utf-8") as f:
        text = f.read()
    docutils.core.publish_string(text, writer_name="null", settings_overrides={"halt_level": 2,
                                                                              "report_level": 5})
    assert "make demo" in text and "make test" in text


def test_docs_build_without_warnings(tmp_path):
    """``make docs`` (Sphinx with -W): the README's pictures resolve from docs/ and no reference is ambiguous."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", os.path.join(REPO, "docs"),
                           str(tmp_path / "html")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {"demo_page.png", "default_grid.png"} <= set(os.listdir(tmp_path / "html" / "_images"))
