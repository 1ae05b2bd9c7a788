"""Loading and saving models: npz (ours), HDF5 (the 2015 original's) and trainer snapshots.

An npz written by :func:`save_model` holds, beside the parameters, one member ``_meta``: UTF-8 JSON
as a uint8 array (no pickle) naming the Chain's class and its ``config`` (constructor arguments),
e.g. ``{"format": 1, "class": "Generator", "config": {"z_dim": 100, ...}}``.
:func:`load_generator` rebuilds the right Chain from it. Files without it (the 2015 original's HDF5,
older npz files) are read as the faithful :class:`~chainer_dcgan.models.Generator`.
"""
import json
import os

import chainer
import h5py
import numpy

from chainer_dcgan.atomic import atomic_save, atomic_write

HDF5_EXTENSIONS = (".h5", ".hdf5", ".model")
META_KEY = "_meta"
META_FORMAT = 1


class ModelFileError(ValueError):
    """A model file that is missing, unreadable or does not match the Chain it is loaded into."""


def _npz_prefix(path, link):
    """Where ``link``'s parameters live in an npz: a bare object snapshot, or inside a trainer snapshot."""
    with numpy.load(path) as npz:
        keys = set(npz.files)
    first = next(iter(sorted(name for name, _ in link.namedparams())))  # e.g. "/bn0l/beta"
    for prefix in ("", "updater/model:gen/", "updater/model:main/"):
        if prefix + first.lstrip("/") in keys:
            return prefix
    raise ModelFileError("{}: holds no parameters of a {} (looked for {!r})".format(
        path, type(link).__name__, first.lstrip("/")))


def load_model(path, link):
    """Load ``path`` into ``link`` (returned) by extension: ``.npz``, or HDF5 (``.h5/.hdf5/.model``).

    npz files may be object snapshots (``gen_iter_N.npz``) or whole trainer snapshots
    (``snapshot_iter_N``, whose generator is read). HDF5 files are those of
    ``chainer.serializers.save_hdf5``, as the 2015 original wrote them; unknown extra entries
    (its unused ``bn0``) are ignored.

    Raises:
        ModelFileError: naming the file, when it is missing or does not fit ``link``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelFileError("{}: no such model file".format(path))
    try:
        if path.lower().endswith(HDF5_EXTENSIONS) or h5py.is_hdf5(path):
            chainer.serializers.load_hdf5(path, link)
        else:
            prefix = _npz_prefix(path, link)
            _check_size(path, read_meta(path, prefix), link)
            chainer.serializers.load_npz(path, link, path=prefix)
    except ModelFileError:
        raise
    except (KeyError, ValueError, OSError) as e:
        raise ModelFileError("{}: cannot be loaded into a {}: {}".format(path, type(link).__name__, e)) from e
    return link


def _check_size(path, meta, link):
    """Refuse a file whose record gives another image size than ``link``'s (older files say none: 96 px)."""
    want = getattr(link, "size", None)
    if meta is None or want is None:
        return
    have = meta.get("config", {}).get("size", 96)
    if have != want:
        raise ModelFileError("{}: holds a {} px {}, not the {} px one it is loaded into".format(
            path, have, meta.get("class"), want))


def model_meta(link):
    """The ``_meta`` record of ``link``: ``{"format", "class", "config"}`` (JSON-able)."""
    return {"format": META_FORMAT, "class": type(link).__name__, "config": dict(getattr(link, "config", {}))}


def read_meta(path, prefix=""):
    """The ``_meta`` record stored in the npz at ``path`` (under ``prefix``), or None if it has none.

    Raises:
        ModelFileError: the record is there but is not a UTF-8 JSON object.
    """
    path = os.fspath(path)
    if path.lower().endswith(HDF5_EXTENSIONS) or h5py.is_hdf5(path):
        return None
    key = prefix + META_KEY
    try:
        with numpy.load(path) as npz:  # allow_pickle stays False
            if key not in npz.files:
                return None
            raw = npz[key]
        meta = json.loads(raw.astype(numpy.uint8).tobytes().decode("utf-8"))
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise ModelFileError("{}: unreadable {} record: {}".format(path, key, e)) from e
    if not isinstance(meta, dict) or not isinstance(meta.get("config", {}), dict):
        raise ModelFileError("{}: {} is not a JSON object with a config".format(path, key))
    return meta


def build_from_meta(meta, path="model"):
    """An untrained Chain as ``meta`` (see :func:`model_meta`) describes it."""
    from chainer_dcgan.models import MODEL_CLASSES

    cls = MODEL_CLASSES.get(meta.get("class"))
    if cls is None:
        raise ModelFileError("{}: unknown model class {!r} (known: {})".format(
            path, meta.get("class"), ", ".join(sorted(MODEL_CLASSES))))
    try:
        return cls(**meta.get("config", {}))
    except (TypeError, ValueError) as e:
        raise ModelFileError("{}: bad {} config {}: {}".format(path, cls.__name__, meta.get("config"), e)) from e


def load_generator(path, **kwargs):
    """The generator stored in ``path`` (or shipped under that name, see :mod:`chainer_dcgan.pretrained`).

    The Chain is rebuilt from the file's ``_meta`` record when it has one; otherwise it is a faithful
    :class:`~chainer_dcgan.models.Generator` built with ``kwargs``. ``kwargs`` given for a file with
    a record must agree with it (a 96 px file asked for as 128 px is an error, not a silent reshape).
    """
    from chainer_dcgan import pretrained
    from chainer_dcgan.models import Generator

    path = pretrained.resolve(path)
    if not os.path.isfile(path):
        raise ModelFileError("{}: no such model file (shipped models, by name: {})".format(
            path, ", ".join(pretrained.names()) or "none"))
    meta = read_meta(path)
    if meta is None:
        return load_model(path, Generator(**kwargs))
    config = meta.get("config", {})
    clashes = ["{}={!r} (file: {!r})".format(k, v, config.get(k)) for k, v in sorted(kwargs.items())
               if k in config and config[k] != v]
    if clashes:
        raise ModelFileError("{}: holds a {} that differs from what was asked: {}".format(
            path, meta.get("class"), ", ".join(clashes)))
    link = build_from_meta(meta, path)
    if not hasattr(link, "make_hidden"):
        raise ModelFileError("{}: holds a {}, not a generator".format(path, meta.get("class")))
    return load_model(path, link)


def _save_npz(f, link, dtype=None):
    arrays = chainer.serializers.DictionarySerializer()
    arrays.save(link)
    target = dict(arrays.target)
    if dtype is not None:
        target = {k: v.astype(dtype) if numpy.issubdtype(v.dtype, numpy.floating) else v for k, v in target.items()}
    record = json.dumps(model_meta(link), sort_keys=True).encode("utf-8")
    target[META_KEY] = numpy.frombuffer(record, dtype=numpy.uint8)
    numpy.savez_compressed(f, **target)  # a file object: numpy appends no ".npz" to its name


def save_model(path, link, dtype=None):
    """Save ``link`` atomically: HDF5 when ``path`` ends in ``.h5/.hdf5``, npz otherwise.

    npz files carry the ``_meta`` record (class and config) that :func:`load_generator` reads.
    ``dtype`` (npz only), e.g. ``numpy.float16``, stores the floating-point arrays in that type
    (half the size); loading casts them back to the Chain's float32.
    """
    path = os.fspath(path)
    if dtype is not None and path.lower().endswith(HDF5_EXTENSIONS):
        raise ValueError("{}: dtype is for npz files".format(path))
    if path.lower().endswith(HDF5_EXTENSIONS):
        atomic_save(path, lambda tmp: chainer.serializers.save_hdf5(tmp, link))
    else:
        with atomic_write(path) as f:
            _save_npz(f, link, dtype)
