"""bench/chainer_suite.py on a small source tree shaped like Chainer v7.8.1's: it counts per file what
pytest ran under the tree's own configuration and the CPU markers, and refuses bad arguments."""
import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

SCRIPT = os.path.join(REPO, "bench", "chainer_suite.py")

SETUP_CFG = """[tool:pytest]
filterwarnings =
    error
markers =
    gpu: Tests to run on GPU
    slow: Tests thats takes time
"""

MIXED = """import warnings
import pytest
import chainer


def test_adds():
    assert 1 + 1 == 2


def test_imports_the_installed_chainer():
    assert chainer.__version__ == "7.8.1" and "site-packages" in chainer.__file__


def test_fails():
    assert chainer.__version__ == "0"


def test_warns():  # every warning is an error under the tree's setup.cfg
    warnings.warn("old", DeprecationWarning)


@pytest.mark.skip(reason="not here")
def test_skipped():
    pass


@pytest.mark.gpu
def test_on_gpu():
    raise AssertionError("a CPU run leaves this out")


@pytest.mark.slow
def test_slow():
    raise AssertionError("a CPU run leaves this out")
"""


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "chainer-v7.8.1"
    (root / "chainer").mkdir(parents=True)
    (root / "chainer" / "_version.py").write_text("__version__ = '7.8.1'\n")
    # a chainer package in the tree that must not be the one tested
    (root / "chainer" / "__init__.py").write_text("raise ImportError('the checkout was imported')\n")
    (root / "setup.cfg").write_text(SETUP_CFG)
    tests = root / "tests" / "chainer_tests"
    tests.mkdir(parents=True)
    (tests / "__init__.py").write_text("")
    (tests / "test_mixed.py").write_text(MIXED)
    (tests / "test_passes.py").write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    (tests / "test_broken.py").write_text("import surely_not_a_module\n")
    return root


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_counts_per_file_under_the_trees_configuration(checkout, tmp_path):
    out = tmp_path / "result.json"
    proc = run(checkout, "tests/chainer_tests/test_mixed.py", "chainer_tests/test_passes.py",
               "tests/chainer_tests/test_broken.py", "--json", out)
    assert proc.returncode == 1, proc.stderr
    rows = {r["file"]: r for r in json.loads(out.read_text())["rows"]}
    mixed = rows["tests/chainer_tests/test_mixed.py"]
    assert (mixed["passed"], mixed["failed"], mixed["errors"], mixed["skipped"]) == (2, 2, 0, 1)
    passes = rows["tests/chainer_tests/test_passes.py"]
    assert (passes["passed"], passes["failed"], passes["errors"]) == (2, 0, 0)
    broken = rows["tests/chainer_tests/test_broken.py"]
    assert broken["errors"] == 1 and "surely_not_a_module" in broken["note"]
    assert "chainer 7.8.1 from " in proc.stdout and "site-packages" in proc.stdout.splitlines()[0]
    total = proc.stdout.strip().splitlines()[-1].split()
    assert total[:5] == ["total", "4", "2", "1", "1"]


def test_a_node_id_and_keyword_narrow_the_run(checkout):
    proc = run(checkout, "tests/chainer_tests/test_mixed.py::test_adds", "tests/chainer_tests/test_passes.py",
               "-k", "one or adds")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split()[:3] == ["tests/chainer_tests/test_mixed.py::test_adds", "1", "0"] for line in lines)
    assert any(line.split()[:5] == ["tests/chainer_tests/test_passes.py", "1", "0", "0", "0"] for line in lines)


@pytest.mark.parametrize("mutate, args, message", [
    (lambda root: None, ["tests/chainer_tests/test_absent.py"], "no such test file"),
    (lambda root: (root / "chainer" / "_version.py").write_text("__version__ = '6.0.0'\n"),
     ["tests/chainer_tests/test_passes.py"], "Chainer 6.0.0, not 7.8.1"),
    (lambda root: (root / "chainer" / "_version.py").unlink(), ["tests/chainer_tests/test_passes.py"],
     "not a Chainer checkout"),
    (lambda root: (root / "setup.cfg").unlink(), ["tests/chainer_tests/test_passes.py"], "no setup.cfg"),
    (lambda root: None, [os.__file__], "outside the checkout"),
    (lambda root: None, ["tests/chainer_tests/test_passes.py", "--timeout", "-1"], "--timeout must be positive"),
])
def test_bad_arguments_exit_2_with_one_error_line(checkout, mutate, args, message):
    mutate(checkout)
    proc = run(checkout, *args)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert message is None or message in lines[0]
