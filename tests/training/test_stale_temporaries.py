"""remove_stale_temporaries deletes exactly what the project's writers leave when killed, nothing else."""
import os
import tempfile

from chainer_dcgan.training.snapshots import generator_files, preview_grids, remove_stale_temporaries
from chainer_dcgan.utils.atomic import atomic_save, atomic_write


def _tree(root):
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files)


def test_only_the_projects_own_temporaries_are_removed(tmp_path):
    out = tmp_path
    # what killed writers leave, made with the writers' own naming
    chainer_tmp = tempfile.mkdtemp(prefix="tmpsnapshot_iter_12", dir=str(out))
    open(os.path.join(chainer_tmp, "snapshot_iter_12"), "wb").close()
    os.makedirs(out / ".gen_iter_3.npz.k2_9abcd.tmp")
    (out / ".gen_iter_3.npz.k2_9abcd.tmp" / "gen_iter_3.npz").write_bytes(b"half")
    (out / ".dis_iter_3.npz.0a1b2c3d.tmp").write_bytes(b"half")
    (out / ".snapshot_iter_3.deadbeef.tmp").write_bytes(b"half")
    # what is someone else's: look-alikes with other names, other contents, or symlinks
    (out / ".notes.tmp").write_text("mine")
    os.makedirs(out / "tmpsnapshot_iter_backup")
    (out / "tmpsnapshot_iter_backup" / "snapshot_iter_1").write_bytes(b"my backup")
    os.makedirs(out / "tmpsnapshot_iter_5abcdefgh")
    (out / "tmpsnapshot_iter_5abcdefgh" / "thesis.tex").write_text("mine")  # not what chainer writes there
    (out / ".notes.txt.0a1b2c3d.tmp").write_text("a name the trainer never writes")
    (out / ".gen_iter_3.npz.tmp").write_text("no random part")
    os.makedirs(out / "elsewhere")
    os.symlink(out / "elsewhere", out / "tmpsnapshot_iter_7abcdefgh")
    os.symlink(out / "elsewhere", out / ".gen_iter_4.npz.01234567.tmp")
    mine = {".notes.tmp", "tmpsnapshot_iter_backup", "tmpsnapshot_iter_backup/snapshot_iter_1",
            "tmpsnapshot_iter_5abcdefgh", "tmpsnapshot_iter_5abcdefgh/thesis.tex", ".notes.txt.0a1b2c3d.tmp",
            ".gen_iter_3.npz.tmp", "elsewhere", "tmpsnapshot_iter_7abcdefgh", ".gen_iter_4.npz.01234567.tmp"}
    removed = remove_stale_temporaries(out)
    assert set(removed) == {os.path.basename(chainer_tmp), ".gen_iter_3.npz.k2_9abcd.tmp",
                            ".dis_iter_3.npz.0a1b2c3d.tmp", ".snapshot_iter_3.deadbeef.tmp"}
    assert set(_tree(out)) == mine


def test_the_atomic_helpers_names_are_what_is_matched(tmp_path, monkeypatch):
    """The patterns follow the writers: a killed atomic_write/atomic_save leaves a name that is removed."""
    seen = []

    def die(path):
        seen.append(sorted(os.listdir(tmp_path)))
        raise KeyboardInterrupt

    for writer in (lambda: atomic_save(str(tmp_path / "gen_iter_9.npz"), die),):
        try:
            writer()
        except KeyboardInterrupt:
            pass
    with atomic_write(str(tmp_path / "dis_iter_9.npz")) as f:
        seen.append(sorted(os.listdir(tmp_path)))
        f.write(b"x")
    temporaries = [n for names in seen for n in names if n.endswith(".tmp")]
    assert len(temporaries) == 2
    for name in temporaries:  # re-create each as a killed writer would leave it
        if name.startswith(".gen"):
            os.makedirs(tmp_path / name, exist_ok=True)
        else:
            (tmp_path / name).write_bytes(b"half")
    assert set(remove_stale_temporaries(tmp_path)) == set(temporaries)


def test_generator_files_and_preview_grids_find_what_a_run_wrote(tmp_path):
    for name in ("gen_iter_500.npz", "gen_iter_1500.npz", "gen_ema_iter_500.npz", "dis_iter_500.npz",
                 "gen_iter_x.npz", "gen_iter_700.npz.tmp", "notgen_iter_9.npz"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "preview").mkdir()
    for name in ("image_iter_00001000.png", "image_iter_00000200.png", "image_iter_3.png", "legend.txt",
                 "image_iter_00000300.png.tmp"):
        (tmp_path / "preview" / name).write_bytes(b"")
    assert generator_files(tmp_path) == {500: str(tmp_path / "gen_iter_500.npz"),
                                         1500: str(tmp_path / "gen_iter_1500.npz")}
    assert generator_files(tmp_path, "gen_ema") == {500: str(tmp_path / "gen_ema_iter_500.npz")}
    assert [os.path.basename(p) for p in preview_grids(tmp_path)] == [
        "image_iter_3.png", "image_iter_00000200.png", "image_iter_00001000.png"]
    assert generator_files(tmp_path / "missing") == {} and preview_grids(tmp_path / "missing") == []
