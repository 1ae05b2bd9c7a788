"""The one atomic-write helper: write to a temporary file beside the target, then rename.

Files come out with the mode any other new file gets (``0o666`` less the umask), not mkstemp's 0600.
A crash, a full disk or an exception leaves the previous file as it was. :func:`atomic_folder` does
the same for a folder of files that belong together (an export): the old one or the new one, whole.
:func:`write_npz` is the one npz writer (models, snapshots, caches).
"""
import contextlib
import ctypes
import errno
import fcntl
import json
import os
import secrets
import shutil
import stat
import tempfile
import zipfile

import numpy

from chainer_dcgan.utils import Closing


def _create_exclusive(folder, prefix, suffix):
    """Create and open a new file ``folder/prefix<random>suffix`` (mode 0o666 less the umask)."""
    for _ in range(100):
        path = os.path.join(folder, "{}{}{}".format(prefix, secrets.token_hex(4), suffix))
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", os.path.join(folder, prefix))


def fsync_folder(folder):
    """Make the names in ``folder`` (a rename, a new file) durable; a file system that cannot is let be."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _disk_full(error, folder, path):
    """``error`` as an ENOSPC OSError naming ``path`` when the disk is full (numpy's own message on a
    short write says only "N requested and M written"), else ``error`` itself."""
    full = getattr(error, "errno", None) == errno.ENOSPC
    if not full:
        with contextlib.suppress(OSError):
            full = os.statvfs(folder).f_bavail == 0
    if not full:
        return error
    return OSError(errno.ENOSPC, "No space left on device while writing {} (the previous file, if any, "
                   "is kept)".format(path))


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file next to ``path``; on a clean exit, fsync it and rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was, so a reader
    never sees a half-written file and a crash loses nothing already saved.

    Args:
        path (str): destination file; its folder is created if missing.
        mode (str): ``"wb"`` or ``"w"`` (text, UTF-8).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = _create_exclusive(folder, "." + os.path.basename(path) + ".", ".tmp")
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_folder(folder)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            full = _disk_full(e, folder, path)
            if full is not e:
                raise full from None
        raise


def atomic_save(path, writer):
    """Call ``writer(tmp_path)`` to produce a file, then rename it onto ``path`` atomically.

    For libraries that insist on a file name (``numpy.save``, ``chainer.serializers``). ``tmp_path``
    has ``path``'s base name, inside a private temporary folder beside ``path``; a writer that
    appends its own extension (``numpy.save("z")`` writes ``z.npy``) or writes the one file under
    another name there is still caught, and what it wrote lands at ``path``.

    Raises:
        OSError: the writer failed (``path`` is untouched) or left no single file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    tmpdir = tempfile.mkdtemp(prefix="." + base + ".", suffix=".tmp", dir=folder)
    try:
        writer(os.path.join(tmpdir, base))
        names = os.listdir(tmpdir)
        if len(names) != 1:
            raise OSError(errno.EIO, "the writer of {} left {} files instead of one ({})".format(
                path, len(names), ", ".join(sorted(names)) or "none"), path)
        produced = os.path.join(tmpdir, names[0])
        with open(produced, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(produced, path)
        fsync_folder(folder)
    except OSError as e:
        full = _disk_full(e, folder, path)  # before the partial file is removed
        shutil.rmtree(tmpdir, ignore_errors=True)
        if full is not e:
            raise full from None
        raise
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def write_npz(dest, arrays, compress=False):
    """Write ``arrays`` (name -> array) as an npz archive, as ``numpy.savez`` lays it out.

    ``dest`` is a path (written atomically, through :func:`atomic_write`) or a binary file object.
    A write that fails (a full disk) closes the archive where it fails. numpy 1.x's ``savez`` leaves it
    open, and the collector finalizes it later, at any moment, where its close raises on the closed
    file; once that moment fell inside CPython 3.11.7's AST builder while numpy parsed a header with
    it, and that read failed. Object arrays (pickles) are refused, except
    ``numpy.asarray(None)``, Chainer's mark for a missing value, which the readers recognise byte for
    byte (:class:`chainer_dcgan.models.serialization.SafeNpz`). ``compress`` deflates the members.

    Raises:
        ValueError: an object array other than None.
        OSError: the write failed; a path is left as it was.
    """
    if isinstance(dest, (str, os.PathLike)):
        with atomic_write(dest) as f:
            write_npz(f, arrays, compress)
        return
    checked = {}
    for name, value in arrays.items():
        value = numpy.asanyarray(value)
        if value.dtype.hasobject and not (value.shape == () and value.item() is None):
            raise ValueError("{}: an object array (a pickle) is not written".format(name))
        checked[name] = value
    archive = zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED, allowZip64=True)
    try:
        for name, value in checked.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as member:
                numpy.lib.format.write_array(member, value, allow_pickle=value.dtype.hasobject)
    except BaseException:
        with contextlib.suppress(Exception):
            archive.close()  # leaves it closed even where the close itself fails
        raise
    archive.close()


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a, b):
    """Swap the names ``a`` and ``b`` in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or the file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), b)


def _link_or_copy(src, dst):
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _carry_over(old, new):
    """Put into ``new`` (as hard links, copies where links cannot be made) every entry of ``old`` that
    ``new`` does not have: files in the folder that the writer does not write are kept."""
    for name in os.listdir(old):
        src, dst = os.path.join(old, name), os.path.join(new, name)
        if os.path.lexists(dst):
            continue
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.isdir(src):
            shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(src, dst)


@contextlib.contextmanager
def atomic_folder(path):
    """Yield a new temporary folder beside ``path`` to fill; on a clean exit it takes ``path``'s place
    whole, so a reader sees the old folder or the new one, never a mix of the two.

    The swap is one ``renameat2(RENAME_EXCHANGE)`` on Linux; where that is missing, two renames (between
    which ``path`` is briefly absent, never mixed). Entries of the old folder that the new one lacks
    (files the writer does not write: a user's own) are carried over as hard links first. The folder
    keeps the old one's mode (a new one gets ``0o777`` less the umask). On an exception (an interrupt
    raised as ``KeyboardInterrupt`` included) the temporary folder is removed and ``path`` is as it
    was; only a kill that no handler sees (SIGKILL, power loss) can leave a hidden
    ``.NAME.<8 characters>.tmp`` sibling, and then ``path`` is still whole. A symlink ``path`` keeps
    pointing where it did: the folder it names is replaced.

    Raises:
        NotADirectoryError: ``path`` exists and is not a folder.
    """
    path = os.path.realpath(os.fspath(path))
    if os.path.lexists(path) and not os.path.isdir(path):
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", path)
    parent, base = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="." + base + ".", suffix=".tmp", dir=parent)
    try:
        yield tmp
        if os.path.isdir(path):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
            _carry_over(path, tmp)
            fsync_folder(tmp)
            if not _exchange(tmp, path):
                aside = tmp + ".old"
                os.rename(path, aside)
                try:
                    os.rename(tmp, path)
                except BaseException:
                    os.rename(aside, path)
                    raise
                shutil.rmtree(aside, ignore_errors=True)
            # tmp now names the old folder (removed below)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
            fsync_folder(tmp)
            os.rename(tmp, path)
        fsync_folder(parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class FolderLocked(RuntimeError):
    """Another process holds the lock of an output folder."""


class FolderLock(Closing):
    """An exclusive advisory lock (``flock``) on ``folder/.lock``, held until :meth:`release`.

    Two processes writing into one output folder would overwrite each other's files; the second
    to ask is refused. The lock dies with the process, so a killed run leaves no stale lock.

    Raises:
        FolderLocked: another process holds it.
        OSError: the folder cannot be created or written.
    """

    NAME = ".lock"

    def __init__(self, folder, what="this folder"):
        self.folder = os.fspath(folder)
        os.makedirs(self.folder, exist_ok=True)
        self._file = open(os.path.join(self.folder, self.NAME), "a")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise FolderLocked("{} is in use by another process ({})".format(self.folder, what)) from None

    def release(self):
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()

    close = release


def drop_torn_tail(path):
    """Cut a last line without its newline (left by a writer killed mid-line) from the file ``path``."""
    if not os.path.exists(path):
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


class JsonlAppender(Closing):
    """Appends JSON records to ``path``, one line each, every line durable (flushed and fsynced) when
    :meth:`append` returns. A torn last line left by a killed writer is cut when the file is opened,
    so a reader sees whole records only."""

    def __init__(self, path):
        self.path = os.fspath(path)
        drop_torn_tail(self.path)
        self._file = open(self.path, "a", encoding="utf-8")

    def append(self, record):
        self._file.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self):
        self._file.close()
