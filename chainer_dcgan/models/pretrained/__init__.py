"""Generators shipped with the package, addressed by name (``--model default``).

Each lives in a folder of its own beside this file:

* ``generator.npz``: float16 weights with the ``_meta`` record (:mod:`chainer_dcgan.serialization`);
* ``tags.json``: its tag vectors (the format of ``tools/tag_vectors.py``);
* ``classifier.npz``: the tag classifier those vectors were measured with;
* ``MODEL_CARD.md``: what it is, how it was trained, and how good it is;
* ``first_face.json`` (optional): ``{"z": [...], ...}``, the z the browser demo opens on.

:func:`resolve` turns a name into the path of the generator, tag vectors or classifier shipped
under it (an existing path always wins), so every tool that takes such a file takes a name too
(``--model default``, ``--tags default``, ``--classifier default``). :func:`demo_export` makes
(once, cached) the browser demo's export of a shipped model.
"""
import hashlib
import os
import shutil
import tempfile

from chainer_dcgan import jsonio

ROOT = os.path.dirname(os.path.abspath(__file__))
GENERATOR = "generator.npz"
TAGS = "tags.json"
CLASSIFIER = "classifier.npz"
CARD = "MODEL_CARD.md"
FIRST_FACE = "first_face.json"
DEFAULT = "default"

__all__ = ["ROOT", "DEFAULT", "FIRST_FACE", "PretrainedError", "names", "file_of", "shipped_name", "resolve",
           "companion", "demo_export", "read_first_face"]


class PretrainedError(ValueError):
    """A shipped model that is not there (unknown name, or its file is missing)."""


def names():
    """The shipped models' names, sorted (folders beside this file holding a ``generator.npz``)."""
    return sorted(entry for entry in os.listdir(ROOT)
                  if os.path.isfile(os.path.join(ROOT, entry, GENERATOR)))


def file_of(name, what=GENERATOR):
    """Path of ``what`` (``GENERATOR``, ``TAGS``, ``CLASSIFIER``, ``CARD``) of the shipped model ``name``.

    Raises:
        PretrainedError: no such model, or it has no such file.
    """
    if name not in names():
        raise PretrainedError("no shipped model named {!r} (shipped: {})".format(name, ", ".join(names()) or "none"))
    path = os.path.join(ROOT, name, what)
    if not os.path.isfile(path):
        raise PretrainedError("shipped model {!r} has no {}".format(name, what))
    return path


def shipped_name(spec):
    """The shipped model ``spec`` names, or None when it is a path (an existing path always wins)."""
    spec = os.fspath(spec)
    if os.path.exists(spec) or os.sep in spec or spec not in names():
        return None
    return spec


def resolve(spec, what=GENERATOR):
    """``spec`` itself when it is an existing path or no shipped model's name; else that model's ``what``.

    ``what`` is the kind of file asked for (``GENERATOR``, ``TAGS``, ``CLASSIFIER``), so
    ``resolve("default", CLASSIFIER)`` is the classifier shipped with ``default``.

    Raises:
        PretrainedError: ``spec`` names a shipped model that has no such file.
    """
    name = shipped_name(spec)
    return os.fspath(spec) if name is None else file_of(name, what)


def companion(spec, what):
    """The file ``what`` shipped beside the model ``spec`` names; None when ``spec`` is a path or the
    model has no such file (e.g. the tag vectors that go with ``--model default``)."""
    name = shipped_name(spec)
    path = None if name is None else os.path.join(ROOT, name, what)
    return path if path is not None and os.path.isfile(path) else None


def _cache_root():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "chainer-dcgan", "demo")


def demo_export(name=DEFAULT, cache_dir=None):
    """The folder of the browser demo's export of shipped model ``name``, made on first use.

    The export (ONNX checked against Chainer, with the model's tag vectors; see
    :func:`chainer_dcgan.export.export_demo`) goes to ``cache_dir`` (default
    ``$XDG_CACHE_HOME/chainer-dcgan/demo``) under a name holding the generator's sha256, so a
    changed model gets a new export. It is built in a temporary folder and renamed into place.

    Returns:
        str: the export folder (holds ``demo.json``).
    """
    from chainer_dcgan import export
    from chainer_dcgan.serialization import load_generator
    from chainer_dcgan.tagging import read_tag_vectors

    gen_path = file_of(name)
    first_path = companion(name, FIRST_FACE)
    sha = hashlib.sha256()
    for path in filter(None, (gen_path, first_path)):  # a new first face is a new export too
        with open(path, "rb") as f:
            sha.update(hashlib.file_digest(f, "sha256").digest())
    digest = sha.hexdigest()[:16]
    root = cache_dir or _cache_root()
    folder = os.path.join(root, "{}-{}".format(name, digest))
    if os.path.isfile(os.path.join(folder, export.MANIFEST)):
        return folder
    gen = load_generator(gen_path)
    tags_path = companion(name, TAGS)
    tags = read_tag_vectors(tags_path, gen.z_dim) if tags_path else []
    first_z = read_first_face(first_path) if first_path else None
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".{}-".format(name), dir=root)
    try:
        export.export_demo(gen, tmp, tags=tags, check_n=2, first_z=first_z)
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            os.rename(tmp, folder)
        except OSError:  # another process made it first
            if not os.path.isfile(os.path.join(folder, export.MANIFEST)):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def read_first_face(path):
    """The z list of a ``first_face.json``; raises :class:`PretrainedError` naming the file if it is not one."""
    try:
        with open(path) as f:
            record = jsonio.load(f)
        z = record["z"]
        if not isinstance(z, list) or not all(isinstance(v, (int, float)) for v in z):
            raise TypeError("z is not a list of numbers")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PretrainedError("{}: not a first-face record ({})".format(path, e)) from None
    return z


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
