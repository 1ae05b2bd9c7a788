"""Loading and saving models: npz (ours), HDF5 (the 2015 original's) and trainer snapshots."""
import os

import chainer
import h5py
import numpy

from chainer_dcgan.atomic import atomic_save

HDF5_EXTENSIONS = (".h5", ".hdf5", ".model")


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
            chainer.serializers.load_npz(path, link, path=_npz_prefix(path, link))
    except ModelFileError:
        raise
    except (KeyError, ValueError, OSError) as e:
        raise ModelFileError("{}: cannot be loaded into a {}: {}".format(path, type(link).__name__, e)) from e
    return link


def load_generator(path, **kwargs):
    """A :class:`~chainer_dcgan.models.Generator` (built with ``kwargs``) with weights from ``path``."""
    from chainer_dcgan.models import Generator

    return load_model(path, Generator(**kwargs))


def save_model(path, link):
    """Save ``link`` atomically: HDF5 when ``path`` ends in ``.h5/.hdf5``, npz otherwise."""
    path = os.fspath(path)
    if path.lower().endswith(HDF5_EXTENSIONS):
        atomic_save(path, lambda tmp: chainer.serializers.save_hdf5(tmp, link))
    else:
        atomic_save(path, lambda tmp: chainer.serializers.save_npz(tmp, link))
