"""``chainer-dcgan COMMAND`` (and ``python -m chainer_dcgan COMMAND``) runs the command lines of
examples/ and tools/, which keep working by path."""
import os
import shutil
import subprocess
import sys

from conftest import REPO, run_script
from PIL import Image

from chainer_dcgan import commands


def run_module(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "chainer_dcgan"] + [str(a) for a in args], cwd=REPO,
                          capture_output=True, text=True, timeout=600, **kwargs)


def test_every_command_names_a_script_of_the_checkout_and_the_listing_shows_each():
    assert {"train", "generate", "export", "serve", "evaluate"} <= set(commands.COMMANDS)
    proc = run_module("--help")
    assert proc.returncode == 0, proc.stderr
    for command, relative in commands.COMMANDS.items():
        path = os.path.join(REPO, relative)
        assert os.path.isfile(path) and commands.script_of(command) == path
        assert "  {:<16} {}".format(command, commands.summary(path)) in proc.stdout.splitlines()
    assert run_module().returncode == 2  # no command: the listing, and a failure status


def test_an_unknown_command_is_one_error_line():
    proc = run_module("trian", "--iteration", "1")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["error: unknown command 'trian' (one of: {})".format(
        ", ".join(commands.COMMANDS))]


def test_generate_by_command_draws_what_the_script_draws(tmp_path):
    args = ["default", "--rows", 2, "--cols", 3, "--seed", 5]
    proc = run_module("generate", *args, "--out", tmp_path / "command.png")
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_script("examples/generate.py", *args, "--out", tmp_path / "script.png")
    command, script = Image.open(tmp_path / "command.png"), Image.open(tmp_path / "script.png")
    assert command.size == (3 * 96, 2 * 96) and command.tobytes() == script.tobytes()


def test_a_script_error_keeps_its_status_and_line_through_the_command(tmp_path):
    proc = run_module("export", "--model", tmp_path / "missing.npz", "--out", tmp_path / "out")
    direct = run_script("tools/export_weights.py", "--model", tmp_path / "missing.npz", "--out", tmp_path / "out",
                        check=False)
    assert proc.returncode == direct.returncode == 2
    assert proc.stderr == direct.stderr and len(proc.stderr.splitlines()) == 1


def test_the_installed_console_script(tmp_path):
    """setup.py installs ``chainer-dcgan`` beside the interpreter (make venv reinstalls when setup.py changes)."""
    with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
        assert '"chainer-dcgan = chainer_dcgan.commands:main"' in f.read()
    exe = shutil.which("chainer-dcgan", path=os.path.dirname(sys.executable))
    assert exe is not None, "chainer-dcgan is not installed beside {}: run make venv".format(sys.executable)
    proc = subprocess.run([exe, "make-synthetic", "--out", tmp_path / "faces", "--n", "3", "--seed", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "faces" / "manifest.jsonl", encoding="utf-8") as f:
        assert len(f.read().splitlines()) == 3
