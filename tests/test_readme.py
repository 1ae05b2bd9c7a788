"""The README is valid reStructuredText (it is also the docs' front page and the package description),
and its Python example draws what examples/generate.py draws."""
import os
import subprocess
import sys
import textwrap

import docutils.core
import docutils.utils
import numpy
import pytest
from conftest import REPO, run_script
from PIL import Image

from chainer_dcgan.models import pretrained


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


def readme_python_example():
    """The code of the README's ``.. code-block:: python``, as a reader copies it."""
    with open(os.path.join(REPO, "README.rst"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    start = lines.index(".. code-block:: python") + 1
    block = []
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip() + "\n"


def _pixels(path):
    return numpy.asarray(Image.open(path).convert("RGB"))


@pytest.mark.skipif(not os.path.isfile(os.path.join(pretrained.ROOT, pretrained.DEFAULT, pretrained.GENERATOR)),
                    reason="no default model shipped")
def test_python_example_draws_the_pixels_of_generate_py(tmp_path):
    code = readme_python_example()
    assert 'load_generator("default")' in code and "gen.generate(" in code
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.listdir(tmp_path) == ["faces.png"]
    # The same seed and grid as the example's make_hidden(16, random_state=0) and tile(x, 4, 4).
    run_script("examples/generate.py", "default", "--rows", 4, "--cols", 4, "--seed", 0,
               "--out", tmp_path / "cli" / "faces.png")
    example, cli = _pixels(tmp_path / "faces.png"), _pixels(tmp_path / "cli" / "faces.png")
    assert example.shape == (4 * 96, 4 * 96, 3)
    numpy.testing.assert_array_equal(example, cli)
    faces = example.reshape(4, 96, 4, 96, 3).transpose(0, 2, 1, 3, 4).reshape(16, -1).astype(numpy.float32)
    assert numpy.abs(faces[1:] - faces[0]).max(axis=1).min() > 50  # every z its own face, not one blur


def public_modules():
    """Dotted names of every module and package in chainer_dcgan/ whose name has no leading underscore."""
    root = os.path.join(REPO, "chainer_dcgan")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")) and os.path.isfile(
            os.path.join(folder, d, "__init__.py")))
        relative = os.path.relpath(folder, root)
        package = ["chainer_dcgan"] + ([] if relative == "." else relative.split(os.sep))
        found.append(".".join(package))
        found += [".".join(package + [f[:-3]]) for f in sorted(files) if f.endswith(".py") and not f.startswith("_")]
    return found


def test_every_public_module_is_in_the_api_docs_and_the_package_docstring():
    import re

    import chainer_dcgan

    modules = public_modules()
    assert {"chainer_dcgan.zspace", "chainer_dcgan.models.faithful", "chainer_dcgan.models.pretrained",
            "chainer_dcgan.cli"} <= set(modules) and "chainer_dcgan._compat" not in modules
    with open(os.path.join(REPO, "docs", "api.rst"), encoding="utf-8") as f:
        documented = set(re.findall(r"^\.\. automodule:: (\S+)$", f.read(), re.M))
    assert sorted(set(modules) - documented) == []
    assert sorted(documented - set(modules)) == []
    listed = set(re.findall(r"\w+", chainer_dcgan.__doc__.split("The public modules", 1)[1]))
    assert sorted(m.split(".")[-1] for m in modules[1:] if m.split(".")[-1] not in listed) == []


def _demo_command(out):
    """The train_faces.py command line that ``make demo`` runs (``make -n``), 2 iterations into ``out``."""
    import shlex
    import shutil

    if shutil.which("make") is None:
        pytest.skip("no make")
    proc = subprocess.run(["make", "-n", "-s", "--no-print-directory", "-o", "venv", "demo",
                           "DEMO_ITERATIONS=2", "DEMO_OUT=" + str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.replace("\\\n", " ").splitlines()
    command = [shlex.split(line) for line in lines if "examples/train_faces.py" in line]
    assert len(command) == 1, proc.stdout
    return command[0]


def test_make_demo_runs_its_recipe_and_says_so(tmp_path):
    """``make demo``'s training command, at 2 iterations: the recipe it announces is the one it trains,
    and it writes the averaged generator it names."""
    out = tmp_path / "demo"
    command = _demo_command(out)
    assert command[1] == "examples/train_faces.py"
    proc = subprocess.run([sys.executable] + command[1:] + ["--no-progress"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "recipe: size 64 px" in proc.stdout and "ema 0.99" in proc.stdout
    assert {"gen_ema_iter_2.npz", "gen_iter_2.npz", "snapshot_iter_2"} <= set(os.listdir(out))
    with Image.open(out / "preview" / "image_iter_00000002.png") as grid:
        assert grid.size == (10 * 64, 10 * 64)
