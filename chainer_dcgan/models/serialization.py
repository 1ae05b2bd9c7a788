"""Loading and saving models: npz (ours), HDF5 (the 2015 original's) and trainer snapshots.

An npz written by :func:`save_model` holds, beside the parameters, one member ``_meta``: UTF-8 JSON
as a uint8 array (no pickle) naming the Chain's class and its ``config`` (constructor arguments),
e.g. ``{"format": 1, "class": "Generator", "config": {"z_dim": 100, ...}}``.
:func:`load_generator` rebuilds the right Chain from it. Files without it (the 2015 original's HDF5,
older npz files) are read as the faithful :class:`~chainer_dcgan.models.Generator`.
"""
import io
import json
import os
import zipfile

import chainer
import h5py
import numpy

from chainer_dcgan.models import MODEL_CLASSES, Generator, hparams, pretrained
from chainer_dcgan.utils import Closing, jsonio, limits
from chainer_dcgan.utils.atomic import atomic_save, write_npz

HDF5_EXTENSIONS = (".h5", ".hdf5", ".model")
META_KEY = "_meta"
META_FORMAT = 1
MAX_META_BYTES = 1 << 20


class ModelFileError(ValueError):
    """A model file that is missing, unreadable or does not match the Chain it is loaded into."""


def read_npy_header(f):
    """``(shape, fortran_order, dtype)`` of the ``.npy`` stream ``f``, left at its data; reads no data.

    Uses numpy's public header readers (numpy 1.x and 2.x). Format 3.0 (UTF-8 field names) is
    refused: numpy writes it only for structured dtypes, which no model file holds.
    """
    version = numpy.lib.format.read_magic(f)
    if version == (1, 0):
        return numpy.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return numpy.lib.format.read_array_header_2_0(f)
    raise ValueError("unsupported .npy format version {}.{}".format(*version))


def _none_pickles():
    """The data ``numpy.save`` writes for ``numpy.asarray(None)`` (Chainer stores None this way), as
    this numpy writes it and as numpy 1.x/2.x name their module: recognised byte for byte, never run."""
    f = io.BytesIO()
    numpy.save(f, numpy.asarray(None))
    f.seek(0)
    read_npy_header(f)
    data = f.read()
    return frozenset((data, data.replace(b"numpy.core.", b"numpy._core."),
                      data.replace(b"numpy._core.", b"numpy.core.")))


_NONE_PICKLES = _none_pickles()
#: The most bytes a member may declare where the object loaded into has no array to compare with.
MAX_UNCHECKED_BYTES = 64 << 20


def _source_name(source):
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "name", None) or "<{}>".format(type(source).__name__)


class SafeNpz(Closing):
    """An npz archive (path or binary file object) opened without ever unpickling anything.

    Every member's npy header (shape, dtype) is read when it is opened, before any data: object
    arrays are refused by name (their data is a pickle, which can run code), except the exact bytes
    numpy writes for ``None``, which Chainer's snapshots may hold. Members are read lazily, like
    ``numpy.load``'s ``NpzFile``, so :meth:`check_shapes` can refuse an oversized array before a
    byte of it is decompressed. Usable as a mapping by ``chainer.serializers.NpzDeserializer``.

    Attributes:
        headers (dict): member name (without ``.npy``) -> ``(shape, dtype)``.

    Raises:
        ModelFileError: naming the file (and member), when it is not a readable npz or holds pickles.
    """

    def __init__(self, source, name=None):
        self.name = name or _source_name(source)
        self.headers = {}
        self._none = set()
        try:
            self._zip = zipfile.ZipFile(source)
        except FileNotFoundError:
            raise ModelFileError("{}: no such file".format(self.name)) from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise ModelFileError("{}: not an npz archive (empty, truncated or another format): {}".format(
                self.name, e)) from None
        try:
            for info in self._zip.infolist():
                self._read_header(info)
        except BaseException:
            self._zip.close()
            raise

    def _read_header(self, info):
        if not info.filename.endswith(".npy"):
            raise ModelFileError("{}: member {!r} is not an array (.npy)".format(self.name, info.filename))
        key = info.filename[:-len(".npy")]
        try:
            with self._zip.open(info) as f:
                shape, _, dtype = read_npy_header(f)
                if dtype.hasobject:
                    if shape == () and f.read(len(max(_NONE_PICKLES, key=len)) + 1) in _NONE_PICKLES:
                        self._none.add(key)
                    else:
                        raise ModelFileError(
                            "{}: member {!r} is an object array (pickled Python objects, which could run "
                            "code); refused".format(self.name, key))
        except ModelFileError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, SyntaxError) as e:
            raise ModelFileError("{}: member {!r} is damaged: {}".format(self.name, key, e)) from None
        self.headers[key] = (tuple(shape), dtype)

    @property
    def files(self):
        return list(self.headers)

    def __contains__(self, key):
        return key in self.headers

    def __iter__(self):
        return iter(self.headers)

    def __len__(self):
        return len(self.headers)

    def __getitem__(self, key):
        if key not in self.headers:
            raise KeyError("{}: no member {!r}".format(self.name, key))
        if key in self._none:
            return numpy.asarray(None)  # built here: the file's pickle is never run
        try:
            with self._zip.open(key + ".npy") as f:
                return numpy.lib.format.read_array(f, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise ModelFileError("{}: member {!r} is damaged: {}".format(self.name, key, e)) from None

    def check_shapes(self, obj, path=""):
        """Refuse, before reading data, members under ``path`` whose declared shape differs from the
        array ``obj`` (anything with ``serialize``: a Link, a Trainer) will load them into, and members
        ``obj`` holds no array for that declare more than :data:`MAX_UNCHECKED_BYTES`."""
        for key, value in expected_values(obj).items():
            header = self.headers.get(path + key)
            if header is None:
                continue
            shape, dtype = header
            if hasattr(value, "shape") and hasattr(value, "dtype"):
                if shape != tuple(value.shape):
                    raise ModelFileError("{}: member {!r} has shape {}, the {} expects {}".format(
                        self.name, path + key, shape, type(obj).__name__, tuple(value.shape)))
                if dtype.kind not in "biuf" or dtype.itemsize > limits.MAX_ITEMSIZE:
                    raise ModelFileError("{}: member {!r} declares dtype {} ({} in all); the {} holds numbers of at "
                                         "most {} bytes".format(self.name, path + key, dtype.str, limits.human(
                                             limits.declared_bytes(shape, dtype)), type(obj).__name__,
                                             limits.MAX_ITEMSIZE))
            elif limits.declared_bytes(shape, dtype) > MAX_UNCHECKED_BYTES:
                raise ModelFileError("{}: member {!r} declares {} of {}: too large".format(
                    self.name, path + key, shape, dtype))

    def close(self):
        self._zip.close()


class _Recorder(chainer.serializer.Serializer):
    """A serializer that only notes what ``obj.serialize`` would save, by key (no copies)."""

    def __init__(self, target, path=""):
        self.target, self.path = target, path

    def __getitem__(self, key):
        return _Recorder(self.target, self.path + key.strip("/") + "/")

    def __call__(self, key, value):
        self.target[self.path + key.lstrip("/")] = value
        return value


def expected_values(obj):
    """What ``obj`` (a Link, Optimizer, Trainer...) serializes, by npz key: the live arrays or values."""
    target = {}
    try:
        obj.serialize(_Recorder(target))
    except RuntimeError:
        # A Trainer that has not run yet cannot tell its elapsed time, which it saves last.
        if not isinstance(obj, chainer.training.Trainer):
            raise
    return target


def load_npz_into(source, obj, path="", strict=True, name=None):
    """Load the npz ``source`` (path, binary file object or open :class:`SafeNpz`) into ``obj`` safely.

    The project's one replacement for ``chainer.serializers.load_npz``, which unpickles.

    Raises:
        ModelFileError: naming the file, when it is unreadable, holds pickles or does not fit ``obj``.
    """
    if isinstance(source, SafeNpz):
        npz = source
    else:
        with SafeNpz(source, name) as npz:
            return load_npz_into(npz, obj, path, strict)
    npz.check_shapes(obj, path)
    try:
        chainer.serializers.NpzDeserializer(npz, path=path, strict=strict).load(obj)
    except (KeyError, ValueError, TypeError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError("{}: cannot be loaded into a {}: {}".format(
            npz.name, type(obj).__name__, e.args[0] if e.args else e)) from None
    return obj


#: HDF5 filters a weights file may use: Chainer's ``save_hdf5`` compresses with gzip; lzf and the byte
#: shuffle are plain too. Anything else (plugins, scale-offset) is refused.
HDF5_FILTERS = (None, "gzip", "lzf")


def _check_hdf5_storage(f, path):
    """Refuse what would make reading ``f`` touch anything but its own bytes, or hold anything but numbers:
    external and soft links, virtual datasets, datasets whose data lives in other files (external
    raw storage: reading them would copy a local file into the weights), unknown filters, and
    non-numeric dtypes."""
    def walk(group, prefix):
        for name in group:
            where = prefix + name
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise ModelFileError("{}: {!r} is a {} (a weights file holds its data itself)".format(
                    path, where, type(link).__name__))
            obj = group[name]
            if isinstance(obj, h5py.Group):
                walk(obj, where + "/")
                continue
            if obj.is_virtual:
                raise ModelFileError("{}: dataset {!r} is virtual (its data lives in other files)".format(path, where))
            if obj.external:
                raise ModelFileError("{}: dataset {!r} is stored outside the file (in {}); refused".format(
                    path, where, ", ".join(repr(os.fsdecode(e[0])) for e in obj.external)))
            if obj.compression not in HDF5_FILTERS or obj.scaleoffset is not None or obj.fletcher32:
                raise ModelFileError("{}: dataset {!r} uses the filter {!r}; only gzip and lzf are read".format(
                    path, where, obj.compression or "scale-offset/fletcher32"))
            if obj.dtype.kind not in "biuf":
                raise ModelFileError("{}: dataset {!r} holds {} values, not numbers".format(path, where, obj.dtype))
    walk(f, "")


def _load_hdf5_into(path, link):
    """``chainer.serializers.load_hdf5`` after checking every dataset's storage (:func:`_check_hdf5_storage`)
    and shape against ``link``."""
    try:
        with h5py.File(path, "r") as f:
            _check_hdf5_storage(f, path)
            for key, value in expected_values(link).items():
                if key not in f or not isinstance(f[key], h5py.Dataset):
                    continue
                if hasattr(value, "shape") and f[key].shape != tuple(value.shape):
                    raise ModelFileError("{}: dataset {!r} has shape {}, the {} expects {}".format(
                        path, key, f[key].shape, type(link).__name__, tuple(value.shape)))
                declared = limits.declared_bytes(f[key].shape or (), f[key].dtype)
                if not hasattr(value, "shape") and declared > MAX_UNCHECKED_BYTES:
                    raise ModelFileError("{}: dataset {!r} declares {} of {} ({}): too large for a {} value".format(
                        path, key, f[key].shape, f[key].dtype, limits.human(declared), type(value).__name__))
        chainer.serializers.load_hdf5(path, link)
        return link
    except ModelFileError:
        raise
    except (KeyError, ValueError, TypeError, OSError) as e:
        raise ModelFileError("{}: not an HDF5 file of a {} (empty, truncated or another layout): {}".format(
            path, type(link).__name__, e)) from None


def _npz_prefix(path, link):
    """Where ``link``'s parameters live in an npz: a bare object snapshot, or inside a trainer snapshot."""
    with SafeNpz(path) as npz:
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
    if path.lower().endswith(HDF5_EXTENSIONS) or h5py.is_hdf5(path):
        return _load_hdf5_into(path, link)
    prefix = _npz_prefix(path, link)
    _check_size(path, read_meta(path, prefix), link)
    return load_npz_into(path, link, path=prefix)


def nonfinite_parameters(link):
    """Names of ``link``'s parameters and persistent arrays (e.g. ``/dc4/W``) holding NaN or infinity."""
    out = []
    for name, value in sorted(expected_values(link).items()):
        if hasattr(value, "dtype") and value.dtype.kind == "f" and not bool(link.xp.isfinite(value).all()):
            out.append("/" + name)
    return out


def nonfinite_warning(link, path):
    """The one-line warning the command lines print when ``link`` (loaded from ``path``) holds NaN or
    infinite parameters (its faces come out blank), or None when all are finite."""
    bad = nonfinite_parameters(link)
    if not bad:
        return None
    return "warning: {}: {} parameter arrays hold NaN or infinite values ({}): the faces will be blank".format(
        path, len(bad), ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else ""))


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
    with SafeNpz(path) as npz:
        if key not in npz:
            return None
        if npz.headers[key][1] != numpy.uint8 or len(npz.headers[key][0]) != 1 \
                or npz.headers[key][0][0] > MAX_META_BYTES:
            raise ModelFileError("{}: {} is not a uint8 vector of at most {} bytes".format(
                path, key, MAX_META_BYTES))
        raw = npz[key]
    try:
        meta = jsonio.loads(raw.astype(numpy.uint8).tobytes().decode("utf-8"))
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise ModelFileError("{}: unreadable {} record: {}".format(path, key, e)) from e
    if not isinstance(meta, dict) or not isinstance(meta.get("config", {}), dict):
        raise ModelFileError("{}: {} is not a JSON object with a config".format(path, key))
    return meta


def _check_config(config, path):
    """Refuse, before a Chain is built, a record whose sizes are outside what the architecture allows
    (a ``z_dim`` of 2,000,000 would allocate a Linear of 37 billion weights)."""
    z_dim = config.get("z_dim", hparams.Z_DIM)
    if isinstance(z_dim, bool) or not isinstance(z_dim, int) or not 1 <= z_dim <= limits.MAX_Z_DIM:
        raise ModelFileError("{}: its record gives z_dim {!r}; a model's z_dim is an integer in 1..{}".format(
            path, z_dim, limits.MAX_Z_DIM))
    size = config.get("size", hparams.IMAGE_SIZE)
    if size not in hparams.SIZES or isinstance(size, bool):
        raise ModelFileError("{}: its record gives size {!r}; the architecture has {}".format(
            path, size, ", ".join(map(str, hparams.SIZES))))
    tags = config.get("tags", [])
    if not isinstance(tags, list) or len(tags) > limits.MAX_TAGS:
        raise ModelFileError("{}: its record gives {} tags; a model has at most {}".format(
            path, len(tags) if isinstance(tags, list) else repr(tags)[:40], limits.MAX_TAGS))


def build_from_meta(meta, path="model"):
    """An untrained Chain as ``meta`` (see :func:`model_meta`) describes it."""
    cls = MODEL_CLASSES.get(meta.get("class"))
    if cls is None:
        raise ModelFileError("{}: unknown model class {!r} (known: {})".format(
            path, meta.get("class"), ", ".join(sorted(MODEL_CLASSES))))
    _check_config(meta.get("config", {}), path)
    try:
        return cls(**meta.get("config", {}))
    except (TypeError, ValueError) as e:
        raise ModelFileError("{}: bad {} config {}: {}".format(path, cls.__name__, meta.get("config"), e)) from e


def load_generator(path, **kwargs):
    """The generator stored in ``path`` (or shipped under that name, see :mod:`chainer_dcgan.models.pretrained`).

    The Chain is rebuilt from the file's ``_meta`` record when it has one; otherwise it is a faithful
    :class:`~chainer_dcgan.models.Generator` built with ``kwargs``. ``kwargs`` given for a file with
    a record must agree with it (a 96 px file asked for as 128 px is an error, not a silent reshape).
    """
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


def _npz_arrays(link, dtype):
    """``link``'s arrays (floating ones cast to ``dtype`` unless None) and its ``_meta`` record."""
    arrays = chainer.serializers.DictionarySerializer()
    arrays.save(link)
    target = dict(arrays.target)
    if dtype is not None:
        target = {k: v.astype(dtype) if numpy.issubdtype(v.dtype, numpy.floating) else v for k, v in target.items()}
    record = json.dumps(model_meta(link), sort_keys=True).encode("utf-8")
    target[META_KEY] = numpy.frombuffer(record, dtype=numpy.uint8)
    return target


def save_model(path, link, dtype=None, compress=None):
    """Save ``link`` atomically: HDF5 when ``path`` ends in ``.h5/.hdf5``, npz otherwise.

    npz files carry the ``_meta`` record (class and config) that :func:`load_generator` reads.
    ``dtype`` (npz only), e.g. ``numpy.float16``, stores the floating-point arrays in that type
    (half the size); loading casts them back to the Chain's float32. ``compress`` (npz only)
    deflates the arrays, a few per cent smaller and about ten times slower to write; by default
    only files written with a ``dtype`` (files made to be shipped) are deflated.
    """
    path = os.fspath(path)
    if compress is None:
        compress = dtype is not None
    if dtype is not None and path.lower().endswith(HDF5_EXTENSIONS):
        raise ValueError("{}: dtype is for npz files".format(path))
    if path.lower().endswith(HDF5_EXTENSIONS):
        atomic_save(path, lambda tmp: chainer.serializers.save_hdf5(tmp, link))
    else:
        # Trained float32 weights deflate by about 8 % at about 10x the time of a plain write
        # (a 96 px G: 17.3 of 18.8 MB, 1.2 s against 0.1 s).
        write_npz(path, _npz_arrays(link, dtype), compress)
