"""examples/train_faces.py --resume: fallback past damaged snapshots, stored configuration, the lock."""
import importlib.util
import os

import pytest
from conftest import REPO

from chainer_dcgan.training.snapshots import read_snapshot
from chainer_dcgan.utils.atomic import FolderLock


def _tool(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], os.path.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_faces = _tool("examples/train_faces.py")
TINY = ["--synthetic-size", "6", "--batchsize", "2", "--display-interval", "1", "--snapshot-interval", "1",
        "--no-progress"]


def _train(out, *extra):
    return train_faces.main(["--out", str(out)] + TINY + list(extra))


@pytest.fixture(scope="module")
def two_iterations(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert _train(out, "--iteration", "2") == 0
    return out


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_snapshots_and_model_files_are_stored_not_deflated(two_iterations):
    """Deflating trained float32 arrays saves a few per cent at about ten times the writing time."""
    import zipfile

    for name in ("snapshot_iter_2", "gen_iter_2.npz", "dis_iter_2.npz"):
        with zipfile.ZipFile(str(two_iterations / name)) as z:
            assert {info.compress_type for info in z.infolist()} == {zipfile.ZIP_STORED}, name


def test_the_snapshot_stores_every_run_defining_flag(two_iterations):
    """Built from parse_args automatically: a flag added later is covered without edits."""
    iteration, config = read_snapshot(str(two_iterations / "snapshot_iter_2"))
    assert iteration == 2
    every = set(vars(train_faces.parse_args([])))
    assert set(config) == every - set(train_faces.RESUMABLE_FLAGS)
    assert config["batchsize"] == 2 and config["loss"] == "softmax" and config["seed"] == 0


def test_damaged_newest_snapshots_are_skipped_and_stale_files_removed(two_iterations, tmp_path, capsys):
    out = _copy(two_iterations, tmp_path / "out")
    with open(out / "snapshot_iter_2", "r+b") as f:
        f.truncate(os.path.getsize(out / "snapshot_iter_2") // 2)
    (out / "snapshot_iter_3").write_bytes(b"")
    os.makedirs(out / "tmpsnapshot_iter_4x1y2z_ab")  # chainer: mkdtemp(prefix="tmp" + name)
    (out / ".gen_iter_4.npz.0a1b2c3d.tmp").write_bytes(b"partial")  # atomic_write
    capsys.readouterr()
    assert _train(out, "--iteration", "3", "--resume") == 0
    err = capsys.readouterr().err
    assert "skipped {}".format(out / "snapshot_iter_3") in err and "skipped {}".format(out / "snapshot_iter_2") in err
    assert read_snapshot(str(out / "snapshot_iter_3"))[0] == 3  # resumed from 1, trained 2 and 3
    names = set(os.listdir(out))
    assert not any(n.startswith(("tmp", ".gen", ".dis")) for n in names), names
    # no stray model files: exactly those of iterations 1..3
    assert {n for n in names if n.endswith(".npz")} == {"{}_iter_{}.npz".format(m, i)
                                                        for m in ("gen", "dis") for i in (1, 2, 3)}


def test_changed_flags_are_refused_naming_each(two_iterations, capsys):
    capsys.readouterr()
    before = sorted(os.listdir(two_iterations))
    assert _train(two_iterations, "--iteration", "3", "--resume", "--loss", "hinge", "--seed", "5") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --resume") and "--loss (snapshot: softmax, now: hinge)" in err[-1]
    assert "--seed (snapshot: 0, now: 5)" in err[-1] and "--batchsize" not in err[-1]
    assert sorted(os.listdir(two_iterations)) == before


def test_iteration_below_the_snapshot_is_an_error(two_iterations, capsys):
    capsys.readouterr()
    assert _train(two_iterations, "--iteration", "1", "--resume") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: --iteration 1 is below the resumed snapshot's iteration 2 ({})".format(
            two_iterations / "snapshot_iter_2"))


def test_no_loadable_snapshot_is_an_error(tmp_path, capsys):
    (tmp_path / "snapshot_iter_5").write_bytes(b"garbage")
    assert _train(tmp_path, "--iteration", "6", "--resume") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: --resume: no loadable snapshot_iter_* in {}".format(tmp_path)
    assert any("skipped" in line and "snapshot_iter_5" in line for line in err)


def test_second_training_into_the_same_out_is_refused(tmp_path, capsys):
    with FolderLock(tmp_path, "a training"):
        assert _train(tmp_path, "--iteration", "1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: {} is in use by another process (a training)".format(tmp_path)
    assert os.listdir(tmp_path) == [".lock"]


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_full_disk_stops_with_one_line_and_keeps_the_last_snapshot(tmp_path, capsys):
    """A 160 MiB tmpfs holds one round of files (about 111 MB), not two. The half-written archive is
    closed where the write failed: none is left for the collector, whose finalizer would raise (a
    closed file) at whatever moment it runs (once inside CPython 3.11.7's AST builder, breaking it)."""
    import gc
    import subprocess

    out = tmp_path / "small"
    out.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(out)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        capsys.readouterr()
        assert _train(out, "--iteration", "3") == 2
        gc.collect()  # an archive left open would be finalized here, its error raised by the filter
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and "No space left on device" in err[-1], err[-3:]
        assert not any("Traceback" in line or "Exception in main training loop" in line for line in err), err
        assert read_snapshot(str(out / "snapshot_iter_1"))[0] == 1  # the last good one is whole
        names = os.listdir(out)
        assert not any(n.startswith(("tmp", ".")) and n != ".lock" for n in names), names
    finally:
        subprocess.run(["umount", str(out)], check=True)


def test_resume_writes_model_files_only_at_snapshot_iterations(tmp_path):
    """Resuming from snapshot_iter_2 with --snapshot-interval 2 writes iteration 4's files, no stray 3rd
    (with --snapshot-interval 1, as above, a stray gen/dis_iter_{N+1}.npz would go unseen)."""
    every_two = ["--snapshot-interval", "2", "--display-interval", "2"]
    assert _train(tmp_path, "--iteration", "2", *every_two) == 0
    assert _train(tmp_path, "--iteration", "4", "--resume", *every_two) == 0
    names = set(os.listdir(tmp_path))
    assert {n for n in names if "_iter_" in n} == {"{}_iter_{}{}".format(m, i, ext) for i in (2, 4)
                                                   for m, ext in (("gen", ".npz"), ("dis", ".npz"), ("snapshot", ""))}


def test_diffaugment_run_resumes_exactly_and_its_flag_is_run_defining(tmp_path, capsys):
    import numpy

    aug = ["--diffaugment", "color,translation,cutout", "--size", "64"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert _train(straight, "--iteration", "3", *aug) == 0
    assert _train(split, "--iteration", "2", *aug) == 0
    assert _train(split, "--iteration", "3", "--resume", *aug) == 0
    with numpy.load(straight / "gen_iter_3.npz") as a, numpy.load(split / "gen_iter_3.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            numpy.testing.assert_array_equal(a[name], b[name], err_msg=name)
    capsys.readouterr()
    assert _train(split, "--iteration", "4", "--resume", "--size", "64") == 2
    assert '--diffaugment (snapshot: ["color", "translation", "cutout"], now: null)' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        _train(split, "--iteration", "4", "--diffaugment", "colour", "--size", "64")
    assert exit_.value.code == 2
    assert "expected a comma-separated subset of color, translation, cutout" in capsys.readouterr().err


def test_a_flag_added_since_the_snapshot_resumes_while_it_is_off():
    from chainer_dcgan.snapshots import config_differences

    assert config_differences({"loss": "softmax"}, {"loss": "softmax", "diffaugment": None}) == []
    assert config_differences({"loss": "softmax"}, {"loss": "softmax", "diffaugment": ["color"]}) == [
        'diffaugment (snapshot: (unset), now: ["color"])']
    assert config_differences({}, {"min_tag_count": 2}, name=lambda key: "--" + key.replace("_", "-")) == [
        '--min-tag-count (snapshot: (unset), now: 2)']


def _rewrite_member(path, key, array):
    """Replace the npz member ``key`` of ``path`` with ``array`` (every other member byte for byte)."""
    import io
    import zipfile

    import numpy

    with zipfile.ZipFile(path) as src:
        members = {info.filename: src.read(info) for info in src.infolist()}
    buf = io.BytesIO()
    numpy.lib.format.write_array(buf, array, allow_pickle=False)
    members[key + ".npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)


@pytest.mark.parametrize("iteration", [[3, 3, 3], "3", 3.0, -3], ids=["vector", "string", "float", "negative"])
def test_a_snapshot_with_a_wrong_typed_iteration_is_skipped(two_iterations, tmp_path, capsys, iteration):
    """The newest snapshot's updater/iteration is not one integer: resumed from the one before, with a warning."""
    import numpy

    out = _copy(two_iterations, tmp_path / "out")
    _rewrite_member(out / "snapshot_iter_2", "updater/iteration", numpy.array(iteration))
    capsys.readouterr()
    assert _train(out, "--iteration", "2", "--resume") == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "skipped {}: {}: updater/iteration is".format(out / "snapshot_iter_2", out / "snapshot_iter_2") in err, err
    assert read_snapshot(str(out / "snapshot_iter_2"))[0] == 2  # resumed from 1, trained 2 again


def test_an_image_pil_cannot_decode_is_skipped_in_training(tmp_path, capsys):
    """A DDS texture named .png among the faces: one warning naming it; the training runs to its end."""
    import struct

    import numpy

    from chainer_dcgan.datasets import UnreadableImageWarning
    from chainer_dcgan.utils.images import save_image

    data = tmp_path / "faces"
    os.makedirs(data)
    rs = numpy.random.RandomState(0)
    for i in range(4):
        save_image(data / "{}.png".format(i), rs.randint(0, 256, (96, 96, 3)).astype(numpy.uint8))
    (data / "texture.png").write_bytes(b"DDS " + struct.pack("<7I", 124, 0x1007, 64, 64, 2048, 0, 0) + b"\0" * 44
                                       + struct.pack("<2I4s5I", 32, 0x4, b"ZZZZ", 0, 0, 0, 0, 0) + b"\0" * 20)
    capsys.readouterr()
    with pytest.warns(UnreadableImageWarning, match="texture.png: cannot decode"):
        assert train_faces.main(["--out", str(tmp_path / "run"), "--dataset", str(data), "--batchsize", "2",
                                 "--iteration", "1", "--no-progress"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert os.path.exists(tmp_path / "run" / "gen_iter_1.npz")
