"""No file the project loads unpickles anything; shapes are checked before data is read.

The hostile files are made here: an npz whose member is an object array holding an object whose
``__reduce__`` would create a marker file when unpickled.
"""
import os
import subprocess
import sys
import tracemalloc
import zipfile

import h5py
import numpy
import pytest

from conftest import REPO

from chainer_dcgan.evaluation import metrics
from chainer_dcgan.models import Generator
from chainer_dcgan.zspace import tagging
from chainer_dcgan.models.serialization import (ModelFileError, SafeNpz, load_generator, load_model, load_npz_into,
                                         save_model)


class Payload:
    """Unpickling it creates ``marker`` (what a hostile file could do instead)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def hostile_npz(path, marker, base, key):
    """Copy the npz ``base`` to ``path`` with member ``key`` replaced by a pickle payload."""
    with numpy.load(base) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays[key] = numpy.array([Payload(str(marker))], dtype=object)
    numpy.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def gen_file(tmp_path_factory):
    numpy.random.seed(0)
    path = tmp_path_factory.mktemp("gen") / "gen.npz"
    save_model(str(path), Generator())
    return str(path)


@pytest.mark.parametrize("key", ["dc4/W", "l0z/b", "_meta"])
def test_pickled_member_runs_no_code_and_is_named(gen_file, tmp_path, key):
    marker = tmp_path / "pwned"
    base = gen_file
    if key != "_meta":  # without the record the file is read as a faithful Generator: every member
        base = str(tmp_path / "plain.npz")
        with numpy.load(gen_file) as npz:
            numpy.savez(base, **{k: npz[k] for k in npz.files if k != "_meta"})
    path = hostile_npz(str(tmp_path / "evil.npz"), marker, base, key)
    with pytest.raises(ModelFileError, match="{}.*object array".format(key)):
        load_generator(path)
    with pytest.raises(ModelFileError, match="object array"):
        load_model(path, Generator())
    assert not marker.exists()


def test_none_members_of_chainer_snapshots_still_load(tmp_path):
    """Chainer saves None as an object array; those exact bytes are recognised, not unpickled."""
    path = str(tmp_path / "none.npz")
    numpy.savez(path, a=numpy.asarray(None), b=numpy.arange(3))
    with SafeNpz(path) as npz:
        assert npz["a"][()] is None and list(npz["b"]) == [0, 1, 2]


def test_oversized_member_is_refused_before_it_is_read(gen_file, tmp_path):
    """A 256 MiB zero array compresses to a few MB; its header alone gets it refused."""
    path = str(tmp_path / "bomb.npz")
    with numpy.load(gen_file) as npz:
        arrays = {k: npz[k] for k in npz.files}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for k, v in arrays.items():
            if k != "dc4/W":
                with z.open(k + ".npy", "w") as f:
                    numpy.lib.format.write_array(f, v)
        with z.open("dc4/W.npy", "w", force_zip64=True) as f:
            numpy.lib.format.write_array_header_1_0(
                f, {"descr": "<f4", "fortran_order": False, "shape": (8192, 8192)})
            chunk = bytes(1 << 22)
            for _ in range(64):
                f.write(chunk)
    assert os.path.getsize(path) < (256 << 20) // 8  # far smaller than what it declares
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"dc4/W.*\(8192, 8192\).*expects \(64, 3, 4, 4\)"):
            load_generator(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < (128 << 20), peak  # the Generator itself is ~15 MB; the array would be 256 MiB


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04truncated", b"not a zip at all"])
def test_empty_or_truncated_npz_is_a_model_file_error(tmp_path, content, gen_file):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match="bad.npz"):
        load_generator(str(path))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(open(gen_file, "rb").read()[:5000])
    with pytest.raises(ModelFileError, match="cut.npz"):
        load_generator(str(cut))


def test_hdf5_wrong_shape_empty_and_truncated(tmp_path):
    numpy.random.seed(0)
    good = str(tmp_path / "g.h5")
    save_model(good, Generator())
    wrong = str(tmp_path / "wrong.h5")
    with h5py.File(good, "r") as src, h5py.File(wrong, "w") as dst:
        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):
                dst[name] = numpy.zeros((2, 2), obj.dtype) if name == "dc4/W" else obj[()]
        src.visititems(copy)
    with pytest.raises(ModelFileError, match=r"dc4/W.*\(2, 2\)"):
        load_generator(wrong)
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty.h5"):
        load_generator(str(tmp_path / "empty.h5"))
    (tmp_path / "cut.h5").write_bytes(open(good, "rb").read()[:3000])
    with pytest.raises(ModelFileError, match="cut.h5"):
        load_generator(str(tmp_path / "cut.h5"))


def _rewrite_h5(src_path, dst_path, replace):
    """Copy the HDF5 weights ``src_path`` to ``dst_path``, letting ``replace(dst, name, array)`` write
    the datasets it wants (returning True) in its own way."""
    with h5py.File(src_path, "r") as src, h5py.File(dst_path, "w") as dst:
        def copy(name, obj):
            if isinstance(obj, h5py.Dataset) and not replace(dst, name, obj[()]):
                dst[name] = obj[()]
        src.visititems(copy)


def test_hdf5_that_reads_other_files_or_holds_no_numbers_is_refused(tmp_path, capsys):
    """An HDF5 dataset with external raw storage reads another local file as its data; loaded, the
    bytes of that file became weights and an export published them. Every such layout is refused."""
    numpy.random.seed(0)
    good = str(tmp_path / "g.h5")
    save_model(good, Generator())
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"password=hunter2")  # 16 bytes; dc4/b is 3 float32 = 12 bytes
    def replace(case, dst, name, a):
        if case == "filter" and name == "dc4/W":
            dst.create_dataset(name, data=a, scaleoffset=4)
            return True
        if name != "dc4/b":
            return False
        if case == "external":
            dst.create_dataset(name, shape=a.shape, dtype=a.dtype, external=[(str(secret), 0, a.nbytes)])
        elif case == "soft":
            dst["hidden/b"] = a
            dst[name] = h5py.SoftLink("/hidden/b")
        elif case == "external-link":
            dst[name] = h5py.ExternalLink(good, "/dc4/b")
        elif case == "strings":
            dst[name] = numpy.array([b"a", b"b", b"c"])
        else:
            return False
        return True

    messages = {"external": "stored outside the file", "soft": "SoftLink", "external-link": "ExternalLink",
                "strings": "not numbers", "filter": "filter"}
    for case in messages:
        path = str(tmp_path / "{}.h5".format(case))
        _rewrite_h5(good, path, lambda dst, name, a: replace(case, dst, name, a))
        with pytest.raises(ModelFileError, match=messages[case]):
            load_generator(path)
    assert load_generator(good).dc4.b.shape == (3,)  # Chainer's own gzip-compressed file still loads
    # The export tool: one error line naming the file, status 2, and nothing written.
    out = tmp_path / "export"
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "export_weights.py"), "--model",
                           str(tmp_path / "external.h5"), "--out", str(out), "--no-tags"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "external.h5" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "hunter2" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_tag_classifier_files_run_no_code(tmp_path):
    numpy.random.seed(0)
    clf = tagging.TagClassifier(["a", "b"], width=4, downscale=4)
    good = str(tmp_path / "clf.npz")
    tagging.save_classifier(good, clf)
    assert tagging.load_classifier(good).tags == ["a", "b"]
    marker = tmp_path / "pwned"
    with numpy.load(good) as npz:
        first = next(k for k in npz.files if k != "config.json")
    for key in ("config.json", first):
        with pytest.raises(tagging.TaggedDatasetError, match="object array"):
            tagging.load_classifier(hostile_npz(str(tmp_path / "evil.npz"), marker, good, key))
    assert not marker.exists()
    for content in (b"", open(good, "rb").read()[:200]):
        (tmp_path / "bad.npz").write_bytes(content)
        with pytest.raises(tagging.TaggedDatasetError, match="bad.npz"):
            tagging.load_classifier(str(tmp_path / "bad.npz"))


def test_damaged_or_hostile_fid_cache_is_recomputed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "cache.npz"
    numpy.savez(str(path), features=numpy.zeros((3, 4), numpy.float32), meta=numpy.array('{"key": "k"}'))
    assert metrics._load_cached(str(path), "k").shape == (3, 4)
    hostile_npz(str(path), marker, str(path), "features")
    assert metrics._load_cached(str(path), "k") is None
    assert not marker.exists()
    path.write_bytes(open(path, "rb").read()[:100])
    assert metrics._load_cached(str(path), "k") is None


def test_trainer_snapshot_with_a_pickle_runs_no_code(tmp_path):
    from chainer_dcgan.datasets import SyntheticFaces
    from chainer_dcgan.training.distributed import resolve_device
    from chainer_dcgan.training import build_trainer, resume

    def trainer(out):
        return build_trainer(SyntheticFaces(4, seed=0), str(out), (1, "iteration"), resolve_device(-1),
                             batchsize=2, display_interval=1, preview_shape=(1, 2), progress=False,
                             statistics=False)
    first = trainer(tmp_path / "a")
    first.run()
    snapshot = str(tmp_path / "a" / "snapshot_iter_1")
    marker = tmp_path / "pwned"
    evil = hostile_npz(str(tmp_path / "evil.npz"), marker, snapshot, "updater/optimizer:gen/t")
    with pytest.raises(ModelFileError, match="optimizer:gen/t.*object array"):
        resume(trainer(tmp_path / "b"), evil)
    assert not marker.exists()
    resume(trainer(tmp_path / "c"), snapshot)  # the intact one still loads
    with pytest.raises(ModelFileError, match="nope"):
        load_npz_into(str(tmp_path / "nope"), Generator())
