"""chainer_dcgan.utils.atomic: writers that rename, file modes, full disks, the output-folder lock."""
import errno
import io
import os
import stat
import subprocess
import sys
import uuid

import numpy
import pytest

from chainer_dcgan import zspace
from chainer_dcgan.models.serialization import SafeNpz
from chainer_dcgan.utils.atomic import (FolderLock, FolderLocked, JsonlAppender, atomic_folder, atomic_save,
                                       atomic_write, drop_torn_tail, write_npz)
from chainer_dcgan.utils.images import save_image


def test_writer_appending_an_extension_still_lands_at_the_path(tmp_path):
    """numpy.save("keep_z") writes keep_z.npy: the data must end up at keep_z, nothing left over."""
    z = numpy.random.RandomState(0).uniform(-1, 1, (3, 100)).astype(numpy.float32)
    zspace.write_z(str(tmp_path / "keep_z"), z)
    assert os.listdir(tmp_path) == ["keep_z"]
    assert numpy.array_equal(zspace.read_z(str(tmp_path / "keep_z")), z)
    atomic_save(tmp_path / "arrays", lambda tmp: numpy.savez(tmp, a=z))  # savez appends .npz
    with numpy.load(str(tmp_path / "arrays")) as npz:
        assert numpy.array_equal(npz["a"], z)
    assert sorted(os.listdir(tmp_path)) == ["arrays", "keep_z"]


class _SmallDisk(io.BytesIO):
    """A file on a disk with ``room`` bytes left: a write past them fails as a full disk does."""

    def __init__(self, room):
        super().__init__()
        self.room = room

    def write(self, data):
        if self.tell() + len(memoryview(data).cast("B")) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_write_npz_reads_back_in_numpy_and_in_the_safe_reader():
    arrays = {"w": numpy.arange(6, dtype=numpy.float32).reshape(2, 3), "n": numpy.asarray(None),
              "i": numpy.asarray(7, numpy.int64)}
    for compress in (False, True):
        f = io.BytesIO()
        write_npz(f, arrays, compress)
        f.seek(0)
        with numpy.load(f, allow_pickle=True) as npz:
            assert sorted(npz.files) == ["i", "n", "w"] and npz["n"].item() is None
            assert numpy.array_equal(npz["w"], arrays["w"]) and npz["i"] == 7
        f.seek(0)
        with SafeNpz(f) as npz:  # None is the one pickle the reader recognises
            assert npz["n"].item() is None and numpy.array_equal(npz["w"], arrays["w"])
    with pytest.raises(ValueError, match="b: an object array"):
        write_npz(io.BytesIO(), {"b": numpy.asarray([None, 1], dtype=object)})


@pytest.mark.parametrize("room", [0, 40, 200, 1000, 2300, 2550])
def test_write_npz_on_a_full_disk_leaves_no_open_archive(room):
    """numpy 1.x's savez leaves its ZipFile open when a member's write fails; the collector's close of
    it later raises, at a moment no one chose. The room covers a failure in a header, in a member's data,
    in the last member and in the closing directory (the archive is 2,610 bytes)."""
    import gc

    raised = []
    hook, sys.unraisablehook = sys.unraisablehook, raised.append
    try:
        f = _SmallDisk(room)
        with pytest.raises(OSError, match="No space"):
            write_npz(f, {"a": numpy.zeros(500, numpy.float32), "b": numpy.zeros(30, numpy.float32)})
        f.close()  # as atomic_write does
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert raised == [], [(r.exc_value, r.object) for r in raised]


def test_writer_that_writes_nothing_or_two_files_is_an_error(tmp_path):
    (tmp_path / "f").write_text("old")
    with pytest.raises(OSError, match="left 0 files"):
        atomic_save(tmp_path / "f", lambda tmp: None)

    def two(tmp):
        open(tmp, "w").close()
        open(tmp + ".extra", "w").close()
    with pytest.raises(OSError, match="left 2 files"):
        atomic_save(tmp_path / "f", two)
    assert (tmp_path / "f").read_text() == "old" and os.listdir(tmp_path) == ["f"]


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_modes_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        with atomic_write(tmp_path / "a.txt", "w") as f:
            f.write("x")
        atomic_save(tmp_path / "b.bin", lambda tmp: open(tmp, "wb").close())
        save_image(tmp_path / "c.png", numpy.zeros((2, 2, 3), numpy.uint8))
    finally:
        os.umask(old)
    for name in ("a.txt", "b.bin", "c.png"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~umask, name


@pytest.fixture
def full_disk(tmp_path):
    """A 256 KiB tmpfs (needs root: skipped elsewhere), unmounted after."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_keeps_the_last_good_file_and_says_so(full_disk):
    path = full_disk / "z.npy"
    small = numpy.zeros((2, 100), numpy.float32)
    zspace.write_z(str(path), small)
    with pytest.raises(OSError) as e:
        zspace.write_z(str(path), numpy.zeros((2000, 100), numpy.float32))  # 800 KB: does not fit
    assert "No space left" in str(e.value)
    assert numpy.array_equal(numpy.load(str(path)), small)
    assert os.listdir(full_disk) == ["z.npy"]
    with pytest.raises(OSError, match="No space left"):
        with atomic_write(full_disk / "z.npy") as f:
            f.write(bytes(1 << 20))
    assert numpy.array_equal(numpy.load(str(path)), small) and os.listdir(full_disk) == ["z.npy"]


def test_folder_lock_refuses_a_second_holder_and_dies_with_its_process(tmp_path):
    with FolderLock(tmp_path, "a training"):
        with pytest.raises(FolderLocked, match="in use by another process"):
            FolderLock(tmp_path)
    FolderLock(tmp_path).release()  # free again
    # a process that holds it and is killed leaves no stale lock
    code = "import sys, time; from chainer_dcgan.utils.atomic import FolderLock; l = FolderLock(sys.argv[1]); " \
           "print('held', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, MARK=uuid.uuid4().hex))
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(FolderLocked):
            FolderLock(tmp_path)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    FolderLock(tmp_path).release()


def test_jsonl_appender_cuts_a_torn_tail_and_appends_whole_lines(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2, "tor')  # a writer killed mid-line
    with JsonlAppender(path) as out:
        assert path.read_bytes() == b'{"a": 1}\n'
        out.append({"b": "\u00e9", "a": 3})
        assert path.read_bytes() == '{"a": 1}\n{"a": 3, "b": "\u00e9"}\n'.encode("utf-8")  # durable on return
    drop_torn_tail(tmp_path / "missing.jsonl")  # nothing to cut
    assert not (tmp_path / "missing.jsonl").exists()


def test_the_safebooru_store_and_a_training_share_one_folder_lock(tmp_path):
    from chainer_dcgan.collection.safebooru import PostStore, StoreLocked

    with PostStore(tmp_path):
        with pytest.raises(StoreLocked, match="in use by another process") as info:
            PostStore(tmp_path)
        assert isinstance(info.value, FolderLocked)  # one error for one event, whoever asks
        with pytest.raises(FolderLocked, match="in use by another process"):
            FolderLock(tmp_path, "a training")
    with FolderLock(tmp_path, "a training"):
        with pytest.raises(FolderLocked):
            PostStore(tmp_path)


def _fill(folder, files):
    for name, data in files.items():
        with atomic_write(os.path.join(folder, name)) as f:
            f.write(data)


def _read(folder):
    return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, n))}


def test_atomic_folder_makes_a_new_folder_whole(tmp_path):
    out = tmp_path / "export"
    with atomic_folder(str(out)) as folder:
        assert not out.exists() and os.path.dirname(folder) == str(tmp_path)
        _fill(folder, {"a": b"1", "b": b"2"})
    assert _read(out) == {"a": b"1", "b": b"2"}
    assert os.listdir(tmp_path) == ["export"]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o777 & ~_umask()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_atomic_folder_swaps_in_the_new_files_and_keeps_others(tmp_path, monkeypatch, exchange):
    from chainer_dcgan.utils import atomic

    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    out = tmp_path / "export"
    out.mkdir()
    _fill(str(out), {"a": b"old a", "b": b"old b", "notes.txt": b"the user's"})
    os.makedirs(out / "mine")
    (out / "mine" / "x").write_bytes(b"the user's too")
    os.chmod(out, 0o750)
    with atomic_folder(str(out)) as folder:
        _fill(folder, {"a": b"new a", "b": b"new b"})
        assert _read(out)["a"] == b"old a"  # nothing changes until the block ends
    assert _read(out) == {"a": b"new a", "b": b"new b", "notes.txt": b"the user's"}
    assert (out / "mine" / "x").read_bytes() == b"the user's too"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o750
    assert sorted(os.listdir(tmp_path)) == ["export"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_atomic_folder_interrupted_leaves_the_old_folder(tmp_path, error):
    out = tmp_path / "export"
    out.mkdir()
    _fill(str(out), {"a": b"old a", "b": b"old b"})
    with pytest.raises(type(error)):
        with atomic_folder(str(out)) as folder:
            _fill(folder, {"a": b"new a"})
            raise error
    assert _read(out) == {"a": b"old a", "b": b"old b"}
    assert os.listdir(tmp_path) == ["export"]


def test_atomic_folder_through_a_symlink_replaces_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    _fill(str(tmp_path / "real"), {"a": b"old"})
    os.symlink("real", tmp_path / "link")
    with atomic_folder(str(tmp_path / "link")) as folder:
        _fill(folder, {"a": b"new"})
    assert os.path.islink(tmp_path / "link") and _read(tmp_path / "link") == {"a": b"new"}
    assert sorted(os.listdir(tmp_path)) == ["link", "real"]


def test_atomic_folder_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        with atomic_folder(str(tmp_path / "f")):
            pass
    assert (tmp_path / "f").read_text() == "x"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
