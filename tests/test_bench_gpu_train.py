"""bench/gpu_train.py's bookkeeping, on files laid out as train_faces.py writes them: which generator
each arm last wrote, and the tar of logs and grids that must come back from the device under its limit."""
import importlib.util
import json
import os
import tarfile
import types

from conftest import REPO


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_train", os.path.join(REPO, "bench", "gpu_train.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_newest_generator_and_the_tar_of_logs_and_grids(tmp_path, monkeypatch):
    gpu_train = load_script()
    work, keep = tmp_path / "work", tmp_path / "keep"
    arm = work / "b32-s0"
    (arm / "preview").mkdir(parents=True)
    keep.mkdir()
    for name in ("gen_iter_500.npz", "gen_iter_2000.npz", "gen_ema_iter_1500.npz"):
        (arm / name).write_bytes(b"x")
    for it in (500, 1000, 2000):
        (arm / "preview" / "image_iter_{:08d}.png".format(it)).write_bytes(os.urandom(3000))
    (arm / "log").write_text("[]")
    assert gpu_train.newest(str(arm), "gen") == (str(arm / "gen_iter_2000.npz"), 2000)
    assert gpu_train.newest(str(arm), "gen_ema") == (str(arm / "gen_ema_iter_1500.npz"), 1500)
    assert gpu_train.newest(str(work / "b16-s0"), "gen") == (None, -1)
    # room for the summary, the log and two grids: the newest grid goes in first, then the later of the rest
    monkeypatch.setattr(gpu_train, "TAR_LIMIT", 14000)
    args = types.SimpleNamespace(arms=["b32-s0", "b16-s0"], work=str(work), keep=str(keep))
    gpu_train.write_tar(args, {"b32-s0": 2000}, started=0)
    with tarfile.open(keep / "train_extra.tar") as tar:
        names = tar.getnames()
        assert json.load(tar.extractfile("summary.json"))["kept"] == {"b32-s0": 2000}
    assert names == ["summary.json", "b32-s0/log", "b32-s0/image_iter_00002000.png", "b32-s0/image_iter_00001000.png"]
    assert sorted(os.listdir(keep)) == ["train_extra.tar"]  # written atomically, no temporary left
