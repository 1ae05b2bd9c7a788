"""``chainer-dcgan COMMAND [ARGS]``: one installed command in front of the command lines of examples/ and tools/.

``chainer-dcgan train --iteration 300`` is ``python examples/train_faces.py --iteration 300``, and so on
(``chainer-dcgan --help`` lists them). The scripts stay where they are, runnable as before; this runs
the one a command names from the checkout the package is installed from (``pip install -e .`` or
``make venv``), under its own ``__main__``, as if it were run by path. Also
``python -m chainer_dcgan COMMAND``.
"""
import ast
import os
import runpy
import sys

#: Command -> the script it runs, relative to the checkout.
COMMANDS = {
    "train": "examples/train_faces.py",
    "generate": "examples/generate.py",
    "evaluate": "tools/evaluate.py",
    "interpolate": "tools/interpolate.py",
    "variations": "tools/variations.py",
    "tag-vectors": "tools/tag_vectors.py",
    "invert": "tools/invert.py",
    "train-encoder": "tools/train_encoder.py",
    "export": "tools/export_weights.py",
    "serve": "tools/serve_demo.py",
    "scrape": "tools/scrape_safebooru.py",
    "crop": "tools/crop_faces.py",
    "make-synthetic": "tools/make_synthetic_faces.py",
    "fetch-cascade": "tools/fetch_cascade.py",
    "fetch-inception": "tools/fetch_inception.py",
    "fake-safebooru": "tools/fake_safebooru.py",
}
PROG = "chainer-dcgan"


def checkout():
    """The folder holding examples/ and tools/: the package's parent (a source checkout)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script_of(command):
    """The absolute path of the script ``command`` runs (it may be missing: see :func:`main`)."""
    return os.path.join(checkout(), *COMMANDS[command].split("/"))


def summary(path):
    """The first line of the script's docstring (read, not run)."""
    with open(path, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    return doc.split("\n")[0]


def usage():
    lines = ["usage: {} COMMAND [ARGS...]   ({} COMMAND --help explains each)".format(PROG, PROG), "", "commands:"]
    for command, relative in COMMANDS.items():
        path = script_of(command)
        text = summary(path) if os.path.isfile(path) else "(not in this install: {})".format(relative)
        lines.append("  {:<16} {}".format(command, text))
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        print("error: unknown command {!r} (one of: {})".format(command, ", ".join(COMMANDS)), file=sys.stderr)
        return 2
    path = script_of(command)
    if not os.path.isfile(path):
        print("error: {} {} runs {} of the source checkout, which this install ({}) does not have; "
              "install from a checkout (pip install -e .)".format(PROG, command, COMMANDS[command], checkout()),
              file=sys.stderr)
        return 2
    saved = sys.argv
    sys.argv = [path] + args
    try:
        runpy.run_path(path, run_name="__main__")
    finally:
        sys.argv = saved
    return 0
