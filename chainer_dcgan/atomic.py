"""The one atomic-write helper: write to a temporary file beside the target, then rename."""
import contextlib
import os
import tempfile


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
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_save(path, writer):
    """Call ``writer(tmp_path)`` to produce a file, then rename it onto ``path`` atomically.

    For libraries that insist on a file name (``numpy.savez``, ``chainer.serializers``): the
    temporary name keeps ``path``'s extension so they do not append their own.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix="." + base + ".", suffix=".tmp" + ext, dir=folder)
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
