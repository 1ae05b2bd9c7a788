"""The z-space command lines: tools/interpolate.py, tools/variations.py, tools/tag_vectors.py."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy
import pytest
from conftest import REPO
from PIL import Image

import chainer_dcgan  # noqa: F401  (installs the chainer shims)
from chainer_dcgan import zspace
from chainer_dcgan.datasets.synthetic import write_dataset
from chainer_dcgan.models import Generator
from chainer_dcgan.models.serialization import save_model
from chainer_dcgan.utils.images import save_animation

ROOT = REPO


def load_tool(name):
    spec = importlib.util.spec_from_file_location("tool_" + name, os.path.join(ROOT, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """An untrained faithful Generator (seeded), saved as npz and as HDF5 like the 2015 original."""
    folder = tmp_path_factory.mktemp("models")
    state = numpy.random.get_state()
    numpy.random.seed(0)
    gen = Generator()
    numpy.random.set_state(state)
    save_model(folder / "gen.npz", gen)
    save_model(folder / "gen.h5", gen)
    return {"npz": str(folder / "gen.npz"), "hdf5": str(folder / "gen.h5"), "gen": gen}


@pytest.mark.parametrize("tool", ["interpolate", "variations", "tag_vectors"])
def test_help_explains_every_flag(tool, capsys):
    module = load_tool(tool)
    with pytest.raises(SystemExit) as info:
        module.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--model", "--seed", "--device"):
        assert flag in out
    assert "(default" in out


def test_help_runs_as_a_script():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "variations.py"), "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--strength" in result.stdout


@pytest.mark.parametrize("fmt", ["npz", "hdf5"])
def test_interpolate_writes_a_sheet_and_an_animation(tmp_path, models, fmt, capsys):
    tool = load_tool("interpolate")
    code = tool.main(["--model", models[fmt], "--seed", "3", "--rows", "2", "--steps", "3",
                      "--out", str(tmp_path / "sheet.png"), "--animation", str(tmp_path / "loop.gif"),
                      "--keys", "2", "--frames-per-key", "3", "--scale", "1", "--pad", "0",
                      "--save-z", str(tmp_path / "z.npy")])
    assert code == 0, capsys.readouterr().err
    sheet = numpy.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape == (2 * 96, 3 * 96, 3)
    with Image.open(tmp_path / "loop.gif") as gif:
        assert gif.n_frames == 4 and gif.size == (96, 96) and gif.info.get("loop") == 0
    z = numpy.load(tmp_path / "z.npy")
    numpy.testing.assert_array_equal(z, zspace.sample_z(3, 100, 3))
    # the sheet's first and last faces are those of z_0 and z_1 (the first row's ends)
    faces = zspace.generate(models["gen"], z[:2])
    from chainer_dcgan.utils.images import to_image

    numpy.testing.assert_array_equal(sheet[:96, :96], to_image(faces[0]))
    numpy.testing.assert_array_equal(sheet[:96, 192:], to_image(faces[1]))


def test_interpolate_from_given_z_with_slerp_and_webp(tmp_path, models, capsys):
    zspace.write_z(tmp_path / "keys.json", zspace.sample_z(3, 100, 9))
    tool = load_tool("interpolate")
    code = tool.main(["--model", models["npz"], "--z", str(tmp_path / "keys.json"), "--rows", "5", "--steps", "2",
                      "--method", "slerp", "--out", str(tmp_path / "s.png"), "--animation", str(tmp_path / "a.webp"),
                      "--keys", "3", "--frames-per-key", "2", "--scale", "2"])
    assert code == 0, capsys.readouterr().err
    assert "2 rows" in capsys.readouterr().out  # 3 given z's make 2 interpolations
    with Image.open(tmp_path / "a.webp") as anim:
        assert anim.n_frames == 3 and anim.size == (192, 192)


def test_interpolate_reports_bad_input(tmp_path, models, capsys):
    tool = load_tool("interpolate")
    assert tool.main(["--model", str(tmp_path / "none.npz")]) == 2
    assert "none.npz: no such model file" in capsys.readouterr().err
    zspace.write_z(tmp_path / "one.npy", zspace.sample_z(1, 100, 0))
    assert tool.main(["--model", models["npz"], "--z", str(tmp_path / "one.npy"),
                      "--out", str(tmp_path / "x.png")]) == 2
    assert "at least 2 vectors" in capsys.readouterr().err
    for bad in (["--steps", "1"], ["--animation", str(tmp_path / "x.mp4")]):
        with pytest.raises(SystemExit) as info:
            tool.main(["--model", models["npz"]] + bad)
        assert info.value.code == 2
    assert ".gif or .webp" in capsys.readouterr().err


def test_variations_grid_has_z_in_the_centre(tmp_path, models, capsys):
    tool = load_tool("variations")
    code = tool.main(["--model", models["npz"], "--seed", "4", "--rows", "3", "--cols", "3", "--strength", "0.2",
                      "--pad", "0", "--out", str(tmp_path / "v.png"), "--save-z", str(tmp_path / "v.npy")])
    assert code == 0, capsys.readouterr().err
    grid = numpy.load(tmp_path / "v.npy")
    z = zspace.sample_z(1, 100, 4)[0]
    numpy.testing.assert_array_equal(grid[4], z)
    assert numpy.abs(grid - z).max() <= 0.2 + 1e-6 and numpy.abs(numpy.delete(grid, 4, 0) - z).min(axis=1).max() > 0
    assert numpy.asarray(Image.open(tmp_path / "v.png")).shape == (288, 288, 3)
    # --z/--index picks a saved vector: the neighbour becomes the new centre
    code = tool.main(["--model", models["hdf5"], "--z", str(tmp_path / "v.npy"), "--index", "0", "--rows", "1",
                      "--cols", "2", "--strength", "0", "--out", str(tmp_path / "w.png"),
                      "--save-z", str(tmp_path / "w.npy")])
    assert code == 0
    numpy.testing.assert_array_equal(numpy.load(tmp_path / "w.npy"), numpy.tile(grid[0], (2, 1)))
    assert tool.main(["--model", models["npz"], "--z", str(tmp_path / "v.npy"), "--index", "9"]) == 2
    assert "--index 9 out of range" in capsys.readouterr().err


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    write_dataset(folder, 40, seed=1)
    return str(folder)


def test_tag_vectors_cli_writes_json_and_prints_the_effect(tmp_path, models, dataset, capsys):
    tool = load_tool("tag_vectors")
    out = tmp_path / "tags.json"
    argv = ["--model", models["npz"], "--dataset", dataset, "--out", str(out), "--seed", "0",
            "--tags", "short_hair,long_hair,smile", "--min-tag-images", "3", "--epochs", "1", "--downscale", "4",
            "--width", "4", "--samples", "24", "--min-count", "1", "--threshold", "0.0", "--effect-samples", "2",
            "--save-classifier", str(tmp_path / "clf.npz")]
    code = tool.main(argv)
    captured = capsys.readouterr()
    assert "held-out accuracy" in captured.out and "wrote" in captured.out  # the classifier was saved
    # threshold 0 makes every face positive: no tag has negatives, so no vectors: an error, no file
    assert code == 2 and "0 of 3 tags have vectors" in captured.out
    assert captured.err.strip().splitlines()[-1].startswith("error: no tag has --min-count 1")
    assert not out.exists()
    # with the saved classifier and a threshold that splits the faces, vectors and effects appear
    from chainer_dcgan.zspace import tagging

    clf = tagging.load_classifier(tmp_path / "clf.npz")
    probs = tagging.label_faces(models["gen"], clf, zspace.sample_z(24, 100, 0))
    argv = ["--model", models["npz"], "--classifier", str(tmp_path / "clf.npz"), "--out", str(out),
            "--samples", "24", "--min-count", "1", "--threshold", repr(float(numpy.median(probs[:, 0]))),
            "--effect-samples", "2", "--strengths", "0.5", "1", "--sheet", str(tmp_path / "sheet.png")]
    assert tool.main(argv) == 0
    captured = capsys.readouterr()
    doc = json.loads(out.read_text())
    assert doc["z_dim"] == 100 and doc["seed"] == 0
    assert doc["tags"] and all(len(t["v"]) == 100 and max(map(abs, t["v"])) == pytest.approx(1.0) for t in doc["tags"])
    assert all(set(t["effect"]["shifted"]) == {"0.5", "1"} for t in doc["tags"])
    assert "rise with s" in captured.out and doc["tags"][0]["name"] in captured.out
    assert numpy.asarray(Image.open(tmp_path / "sheet.png")).shape == (len(doc["tags"]) * 98 - 2, 5 * 98 - 2, 3)
    # --refine moves each vector through the generator and the classifier, and says so in the file
    refined_out = tmp_path / "refined.json"
    argv[argv.index(str(out))] = str(refined_out)
    assert tool.main(argv + ["--refine", "2", "--no-effect"]) == 0
    assert "refined {} vectors (2 steps each)".format(len(doc["tags"])) in capsys.readouterr().out
    refined = json.loads(refined_out.read_text())
    assert refined["method"].endswith("refined by 2 Adam steps through the generator and the classifier")
    assert [t["name"] for t in refined["tags"]] == [t["name"] for t in doc["tags"]]
    assert all(t["v"] != u["v"] for t, u in zip(refined["tags"], doc["tags"]))
    # --max-side-effect keeps the sliders that move no other tag by more than its limit, and says so in the file
    assert tool.main(argv + ["--max-side-effect", "1"]) == 0
    assert "--max-side-effect 1: dropped 0 tag(s) whose slider draws another tag: none" in capsys.readouterr().out
    kept = json.loads(refined_out.read_text())
    assert kept["method"].endswith("; sliders that move another tag by more than 1 at slider 1 dropped")
    assert [t["name"] for t in kept["tags"]] == [t["name"] for t in doc["tags"]]
    # --calibrate scales each vector through the generator and prints the scales; the file says so
    assert tool.main(argv + ["--calibrate", "0.7", "--calibrate-samples", "6", "--no-effect"]) == 0
    said = capsys.readouterr().out
    assert "calibrated {} vectors to a mean probability of 0.7 on 6 labelled faces".format(len(doc["tags"])) in said
    scaled = json.loads(refined_out.read_text())
    assert scaled["method"].endswith(", scaled to a mean probability of 0.7 at slider 1 through the generator")
    for t, u in zip(scaled["tags"], doc["tags"]):
        c = float(said.split(" {} ".format(t["name"]))[-1].split()[0])  # the printed scale (3 decimals)
        numpy.testing.assert_allclose(t["v"], numpy.asarray(u["v"]) * c, rtol=0.01, atol=1e-6)


def test_tag_vectors_cli_reports_bad_input(tmp_path, models, capsys):
    tool = load_tool("tag_vectors")
    assert tool.main(["--model", models["npz"], "--dataset", str(tmp_path)]) == 2
    assert "no manifest.jsonl" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        tool.main(["--model", models["npz"]])
    assert info.value.code == 2
    assert "--dataset is required" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        tool.main(["--model", models["npz"], "--classifier", "x.npz", "--no-effect", "--max-side-effect", "0.6"])
    assert info.value.code == 2
    assert "--max-side-effect needs the effect measurement" in capsys.readouterr().err


def test_save_animation(tmp_path):
    frames = [numpy.full((8, 8, 3), v, numpy.uint8) for v in (0, 120, 255)]
    save_animation(tmp_path / "a.gif", frames, duration_ms=50)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 3 and gif.info["duration"] == 50
        gif.seek(1)
        assert abs(int(numpy.asarray(gif.convert("RGB"))[0, 0, 0]) - 120) <= 2
    with pytest.raises(ValueError, match="no frames"):
        save_animation(tmp_path / "b.gif", [])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif"]


def test_zspace_tools_take_the_size_from_the_model(tmp_path, capsys):
    numpy.random.seed(5)
    path = str(tmp_path / "g64.npz")
    save_model(path, Generator(size=64))
    code = load_tool("interpolate").main(["--model", path, "--seed", "1", "--rows", "1", "--steps", "3",
                                          "--out", str(tmp_path / "sheet.png"), "--scale", "1", "--pad", "0"])
    assert code == 0, capsys.readouterr().err
    assert numpy.asarray(Image.open(tmp_path / "sheet.png")).shape == (64, 3 * 64, 3)
