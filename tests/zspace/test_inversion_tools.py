"""tools/invert.py and tools/train_encoder.py on small models: what they write (the bad inputs are rows of
tests/test_cli_harness.py)."""
import importlib.util
import json
import os

import numpy
import pytest
from conftest import REPO

from chainer_dcgan.datasets.synthetic import SyntheticFaces
from chainer_dcgan.models.serialization import save_model
from chainer_dcgan.utils.images import read_image, save_image
from chainer_dcgan.zspace import inversion, read_z
from chainer_dcgan.zspace.tagging import TagVector, write_tag_vectors

SAMPLES = os.path.join(REPO, os.pardir, "shared", "data", "anime_samples")
CASCADE = os.path.join(REPO, os.pardir, "shared", "data", "lbpcascade_animeface.xml")


def _main(script):
    spec = importlib.util.spec_from_file_location("tool_" + os.path.basename(script)[:-3], os.path.join(REPO, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture(scope="module")
def files(demo_generator, tmp_path_factory):
    d = tmp_path_factory.mktemp("invert_files")
    save_model(str(d / "gen.npz"), demo_generator)
    numpy.random.seed(0)
    inversion.save_encoder(str(d / "enc.npz"), inversion.Encoder(
        width=4, generator=inversion.generator_digest(demo_generator)))
    rs = numpy.random.RandomState(1)
    write_tag_vectors(str(d / "tags.json"), [TagVector("tag{}".format(i), rs.uniform(-1, 1, 100), 10) for i in range(3)])
    face = SyntheticFaces(1, seed=3).image(0)
    save_image(str(d / "face.png"), face)
    # the same face, 120x110 (within 25% of square): its middle square is used
    from PIL import Image
    Image.fromarray(face).resize((120, 110)).save(str(d / "face_wide.jpg"))
    return d


def test_invert_writes_z_reconstruction_sheet_and_summary(files, tmp_path, capsys):
    out = tmp_path / "out"
    code = _main("tools/invert.py")([str(files / "face.png"), str(files / "face_wide.jpg"), "--model",
                                     str(files / "gen.npz"), "--encoder", str(files / "enc.npz"), "--tags",
                                     str(files / "tags.json"), "--move", "tag0,tag2", "--steps", "4",
                                     "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert [f["name"] for f in summary["faces"]] == ["face", "face_wide"]
    for record in summary["faces"]:
        assert record["pixel_error"] <= record["pixel_error_start"]
        assert record["sheet"] == ["original", "start", "refined", "tag0+1", "tag2+1"]
        z = read_z(str(out / record["files"]["z"]))
        assert z.shape == (1, 100) and numpy.abs(z).max() <= 1
        assert read_image(str(out / record["files"]["reconstruction"])).shape == (96, 96, 3)
        assert read_image(str(out / record["files"]["sheet"])).shape == (96, 5 * 96 + 4 * 2, 3)
    assert "face: pixel error" in capsys.readouterr().out


@pytest.mark.skipif(not os.path.isdir(SAMPLES), reason="../shared/data (the real illustrations) is not here")
def test_invert_detect_cuts_the_faces_of_an_illustration(files, tmp_path):
    out = tmp_path / "out"
    code = _main("tools/invert.py")([os.path.join(SAMPLES, "renpy_eileen_happy.png"), "--detect", "--cascade",
                                     CASCADE, "--model", str(files / "gen.npz"), "--encoder", "none",
                                     "--candidates", "4", "--steps", "1", "--out", str(out)])
    assert code == 0
    assert [f["name"] for f in json.loads((out / "summary.json").read_text())["faces"]] == ["renpy_eileen_happy_face0"]
    assert (out / "renpy_eileen_happy_face0_sheet.png").is_file()


def test_train_encoder_writes_an_encoder_for_the_model_and_resumes(files, demo_generator, tmp_path, capsys):
    out = str(tmp_path / "e.npz")
    args = ["--model", str(files / "gen.npz"), "--out", out, "--iterations", "2", "--batch-size", "2",
            "--width", "4", "--checkpoint-interval", "1", "--display-interval", "1"]
    assert _main("tools/train_encoder.py")(args) == 0
    assert "step 2 (stage 1)" in capsys.readouterr().out
    enc = inversion.load_encoder(out, demo_generator)
    assert enc.width == 4 and os.path.isfile(str(tmp_path / "e.ckpt.npz"))
    # Started again with one step more, it resumes from the checkpoint: only step 3 runs.
    assert _main("tools/train_encoder.py")(args[:5] + ["3"] + args[6:]) == 0
    printed = capsys.readouterr().out
    assert "step 3 (stage 1)" in printed and "step 2 " not in printed
    # With a feature loss read by a tag classifier.
    from chainer_dcgan.zspace.tagging import TagClassifier, save_classifier

    save_classifier(str(tmp_path / "clf.npz"), TagClassifier(["red"], width=4))
    assert _main("tools/train_encoder.py")(["--model", str(files / "gen.npz"), "--out", str(tmp_path / "f.npz"),
                                             "--iterations", "1", "--batch-size", "2", "--width", "4",
                                             "--display-interval", "1", "--feature-weight", "0.5", "--classifier",
                                             str(tmp_path / "clf.npz")]) == 0
    assert "feature " in capsys.readouterr().out


def test_an_image_of_too_many_pixels_is_refused_in_one_line(files, tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 96x96 face is then over twice the limit
    code = _main("tools/invert.py")([str(files / "face.png"), "--model", str(files / "gen.npz"), "--encoder",
                                     "none", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: ") and "face.png: refused, too many pixels" in err
