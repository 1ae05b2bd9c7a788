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
