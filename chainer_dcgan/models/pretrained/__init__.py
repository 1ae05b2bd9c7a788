"""Generators shipped with the package, addressed by name (``--model default``).

Each lives in a folder of its own beside this file:

* ``generator.npz``: float16 weights with the ``_meta`` record (:mod:`chainer_dcgan.models.serialization`);
* ``tags.json``: its tag vectors (the format of ``tools/tag_vectors.py``);
* ``classifier.npz``: the tag classifier those vectors were measured with;
* ``MODEL_CARD.md``: what it is, how it was trained, and how good it is;
* ``first_face.json`` (optional): ``{"z": [...], ...}``, the z the browser demo opens on;
* ``encoder.npz`` (optional): the inversion encoder trained for this generator (:mod:`chainer_dcgan.zspace.inversion`).

:func:`resolve` turns a name into the path of the generator, tag vectors or classifier shipped
under it (an existing path always wins), so every tool that takes such a file takes a name too
(``--model default``, ``--tags default``, ``--classifier default``).
:func:`chainer_dcgan.demo.shipped.demo_export` makes (once, cached) the browser demo's export of one.
"""
import os

from chainer_dcgan.utils import jsonio

ROOT = os.path.dirname(os.path.abspath(__file__))
GENERATOR = "generator.npz"
TAGS = "tags.json"
CLASSIFIER = "classifier.npz"
CARD = "MODEL_CARD.md"
FIRST_FACE = "first_face.json"
ENCODER = "encoder.npz"
DEFAULT = "default"

__all__ = ["ROOT", "DEFAULT", "FIRST_FACE", "ENCODER", "PretrainedError", "names", "file_of", "shipped_name", "resolve",
           "companion", "read_first_face"]


class PretrainedError(ValueError):
    """A shipped model that is not there (unknown name, or its file is missing)."""


def names():
    """The shipped models' names, sorted (folders beside this file holding a ``generator.npz``)."""
    return sorted(entry for entry in os.listdir(ROOT)
                  if os.path.isfile(os.path.join(ROOT, entry, GENERATOR)))


def file_of(name, what=GENERATOR):
    """Path of ``what`` (``GENERATOR``, ``TAGS``, ``CLASSIFIER``, ``ENCODER``, ``CARD``) of the shipped model ``name``.

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
