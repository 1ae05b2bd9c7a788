"""Every command line explains itself: ``--help`` exits 0 and describes each flag."""
import glob
import os
import re

import pytest

from conftest import REPO, run_script

SCRIPTS = sorted(os.path.relpath(p, REPO) for pattern in ("examples/*.py", "tools/*.py")
                 for p in glob.glob(os.path.join(REPO, pattern)))


def test_scripts_found():
    assert "examples/train_faces.py" in SCRIPTS and "tools/export_weights.py" in SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    proc = run_script(script, "--help", timeout=120)
    text = proc.stdout
    assert text.startswith("usage:"), text[:200]
    # every option line of argparse's listing carries a description
    options = re.findall(r"^  (-[^\n]*)$", text, flags=re.M)
    assert options, text
    for block in re.split(r"\n(?=  -)", text.split("options:", 1)[-1])[1:]:
        flag = block.strip().splitlines()[0]
        described = len(block.strip().split(None, 1)) > 1 and (len(block.strip().splitlines()) > 1
                                                                 or "  " in block.strip())
        assert described, "{}: {} has no help text".format(script, flag)
