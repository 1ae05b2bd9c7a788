"""Resuming safely: which trainer snapshot to load, the run configuration stored in it, stale files.

A trainer snapshot (``snapshot_iter_N``) carries the run's configuration as JSON (the
:class:`RunConfig` extension), so a resume with flags that change the run is refused instead of
silently mixing two runs (or failing later with a KeyError).
"""
import json
import os
import re
import shutil
import zipfile

import numpy
from chainer import training

from chainer_dcgan.models.serialization import ModelFileError, SafeNpz
from chainer_dcgan.utils import jsonio

SNAPSHOT_RE = re.compile(r"snapshot_iter_(\d+)")
_GENERATOR_RE = re.compile(r"([a-z]+(?:_[a-z]+)*)_iter_(\d+)\.npz")
_GRID_RE = re.compile(r"image_iter_(\d+)\.png")
CONFIG_NAME = "run_config"
_CONFIG_KEY = "extensions/{}/json".format(CONFIG_NAME)
_ITERATION_KEY = "updater/iteration"
MAX_CONFIG_BYTES = 1 << 20


class RunConfig(training.Extension):
    """Stores ``config`` (a JSON-able dict) in every trainer snapshot; never runs.

    Loading a snapshot leaves it alone: :func:`read_snapshot` reads the stored one before.
    """

    trigger = (1 << 62, "iteration")
    priority = training.PRIORITY_READER

    def __init__(self, config):
        self.config = dict(config)

    def __call__(self, trainer):
        pass

    def serialize(self, serializer):
        if not isinstance(serializer, _deserializer_type()):
            serializer("json", numpy.frombuffer(json.dumps(self.config, sort_keys=True).encode(), numpy.uint8))


def _deserializer_type():
    import chainer

    return chainer.serializer.Deserializer


def read_snapshot(snapshot):
    """``(iteration, config)`` of a trainer snapshot (path or binary file object); ``config`` is None
    for snapshots written before configurations were stored. Checks every member's CRC.

    Raises:
        ModelFileError: naming the file, when it is damaged, truncated or holds pickles.
    """
    with SafeNpz(snapshot) as npz:
        try:
            bad = npz._zip.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise ModelFileError("{}: damaged: {}".format(npz.name, e)) from None
        if bad is not None:
            raise ModelFileError("{}: member {!r} is damaged (CRC mismatch)".format(npz.name, bad))
        if _ITERATION_KEY not in npz:
            raise ModelFileError("{}: not a trainer snapshot (no {})".format(npz.name, _ITERATION_KEY))
        shape, dtype = npz.headers[_ITERATION_KEY]
        if shape not in ((), (1,)) or dtype.kind not in "iu":
            raise ModelFileError("{}: {} is not one integer (shape {}, dtype {})".format(
                npz.name, _ITERATION_KEY, shape, dtype))
        iteration = int(npz[_ITERATION_KEY].reshape(()))
        if iteration < 0:
            raise ModelFileError("{}: {} is negative ({})".format(npz.name, _ITERATION_KEY, iteration))
        config = None
        if _CONFIG_KEY in npz:
            shape, dtype = npz.headers[_CONFIG_KEY]
            if dtype != numpy.uint8 or len(shape) != 1 or shape[0] > MAX_CONFIG_BYTES:
                raise ModelFileError("{}: {} is not a JSON record".format(npz.name, _CONFIG_KEY))
            try:
                config = jsonio.loads(npz[_CONFIG_KEY].tobytes().decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise ModelFileError("{}: unreadable {}: {}".format(npz.name, _CONFIG_KEY, e)) from None
            if not isinstance(config, dict):
                raise ModelFileError("{}: {} is not a JSON object".format(npz.name, _CONFIG_KEY))
    if hasattr(snapshot, "seek"):
        snapshot.seek(0)
    return iteration, config


def snapshots_newest_first(out):
    """Paths of the ``snapshot_iter_N`` files in ``out``, highest N first."""
    try:
        names = os.listdir(os.fspath(out))
    except OSError:
        return []
    found = [(int(m.group(1)), name) for name in names for m in [SNAPSHOT_RE.fullmatch(name)] if m]
    return [os.path.join(os.fspath(out), name) for _, name in sorted(found, reverse=True)]


def generator_files(out, kind="gen"):
    """``{iteration: path}`` of the ``KIND_iter_N.npz`` weights a run wrote into ``out`` (``kind``:
    ``gen``, or ``gen_ema`` for the moving average); empty when there are none or ``out`` is unreadable."""
    try:
        names = os.listdir(os.fspath(out))
    except OSError:
        return {}
    return {int(m.group(2)): os.path.join(os.fspath(out), name)
            for name in names for m in [_GENERATOR_RE.fullmatch(name)] if m and m.group(1) == kind}


def preview_grids(out):
    """Paths of the sample grids ``out/preview/image_iter_N.png``, lowest N first."""
    folder = os.path.join(os.fspath(out), "preview")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = [(int(m.group(1)), name) for name in names for m in [_GRID_RE.fullmatch(name)] if m]
    return [os.path.join(folder, name) for _, name in sorted(found)]


def newest_loadable_snapshot(out, warn=None):
    """The newest snapshot in ``out`` that :func:`read_snapshot` reads, or None.

    Args:
        warn (callable or None): called with one line for each newer snapshot skipped, and why.
    """
    for path in snapshots_newest_first(out):
        if not os.path.isfile(path):
            if warn:
                warn("skipped {}: not a regular file".format(path))
            continue
        try:
            read_snapshot(path)
        except ModelFileError as e:
            if warn:
                warn("skipped {}: {}".format(path, e))
            continue
        return path
    return None


def config_differences(saved, current, name=str):
    """One ``KEY (snapshot: X, now: Y)`` string per key whose value differs (``saved`` is a stored
    configuration, ``current`` this run's; a key present in only one of them counts, except a key
    added since the snapshot was written that is now off, None, as it was then by being absent).
    ``name(key)`` is how a key is written (a command line gives its flag)."""
    out = []
    for key in sorted(set(saved) | set(current)):
        if key not in saved and current[key] is None:
            continue
        a, b = saved.get(key, "(unset)"), current.get(key, "(unset)")
        if a != b:
            out.append("{} (snapshot: {}, now: {})".format(name(key), _show(a), _show(b)))
    return out


def _show(value):
    return value if isinstance(value, str) else json.dumps(value)


# What a killed run can leave in its folder, and nothing else: a user's ``.notes.tmp`` or
# ``tmpsnapshot_iter_backup/`` there is theirs. NAME is a file the trainer writes at the top level.
_OWN_NAME = r"(?:snapshot_iter_\d+|[a-z]+(?:_[a-z]+)*_iter_\d+\.npz)"
_STALE = (
    # chainer's snapshot writer: tempfile.mkdtemp(prefix="tmp" + NAME), holding NAME
    (re.compile(r"tmp(snapshot_iter_\d+)[a-z0-9_]{8}"), True),
    # utils.atomic.atomic_save: a folder .NAME.<8 mkdtemp characters>.tmp, holding NAME (or NAME.npy...)
    (re.compile(r"\.({})\.[a-z0-9_]{{8}}\.tmp".format(_OWN_NAME)), True),
    # utils.atomic.atomic_write: a file .NAME.<8 hex digits>.tmp
    (re.compile(r"\.({})\.[0-9a-f]{{8}}\.tmp".format(_OWN_NAME)), False),
)


def _is_stale_temporary(folder, name):
    """True when ``folder/name`` is exactly what one of the project's writers leaves when killed: its
    name pattern, a folder or file as that writer makes it (never a symlink), and a folder holds only
    files that writer could have put there."""
    path = os.path.join(folder, name)
    for pattern, is_folder in _STALE:
        m = pattern.fullmatch(name)
        if not m or os.path.islink(path):
            continue
        if not is_folder:
            if os.path.isfile(path):
                return True
            continue
        if not os.path.isdir(path):
            continue
        try:
            entries = os.listdir(path)
        except OSError:
            return False
        # a writer's own file: NAME, or (chainer) a snapshot_iter_N that the folder's name begins with
        return all(os.path.isfile(os.path.join(path, e)) and not os.path.islink(os.path.join(path, e))
                   and (e.startswith(m.group(1)) if not name.startswith("tmp")
                        else SNAPSHOT_RE.fullmatch(e) and name.startswith("tmp" + e)) for e in entries)
    return False


def remove_stale_temporaries(out):
    """Remove what a killed run left in ``out``: chainer's ``tmpsnapshot_iter_N<8 characters>`` folders
    and the atomic helpers' hidden ``.NAME.<8 characters>.tmp`` files and folders, where NAME is a file
    the trainer writes (``snapshot_iter_N``, ``gen_iter_N.npz``...), each only as its writer makes it
    (see :func:`_is_stale_temporary`): anyone else's files are left alone. Only safe while holding the
    folder's :class:`~chainer_dcgan.utils.atomic.FolderLock`. Returns the names removed."""
    removed = []
    try:
        names = os.listdir(os.fspath(out))
    except OSError:
        return removed
    for name in names:
        if not _is_stale_temporary(os.fspath(out), name):
            continue
        path = os.path.join(os.fspath(out), name)
        try:
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except OSError:
            continue
        removed.append(name)
    return sorted(removed)
