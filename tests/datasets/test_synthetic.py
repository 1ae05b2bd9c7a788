"""The procedural anime-face dataset: determinism, tags, tags visible in pixels, writer and CLI."""
import os
import subprocess
import sys

import numpy
import pytest
from conftest import REPO

from chainer_dcgan.datasets import synthetic
from chainer_dcgan.datasets.manifest import read_manifest
from chainer_dcgan.datasets.synthetic import (TAGS, SyntheticFaces, draw_face, face_random_state, face_tags,
                                              write_dataset)
from chainer_dcgan.utils.images import read_image, to_array

ROOT = REPO
CLI = os.path.join(ROOT, "tools", "make_synthetic_faces.py")
HAIR = tuple(t for t in TAGS if t.endswith("_hair") and t not in ("short_hair", "long_hair", "very_long_hair"))
LENGTHS = ("short_hair", "long_hair", "very_long_hair")
EYES = tuple(t for t in TAGS if t.endswith("_eyes") and t != "closed_eyes")


def face(seed, index, *require):
    return draw_face(face_random_state(seed, index), require=require)


@pytest.fixture(scope="module")
def sample_tags():
    return [face_tags(face_random_state(7, i)) for i in range(400)]


def test_tags_vocabulary():
    assert isinstance(TAGS, tuple) and len(set(TAGS)) == len(TAGS)
    assert len(HAIR) >= 8 and len(EYES) >= 6
    for tag in ("blonde_hair", "black_hair", "blue_hair", "silver_hair", "short_hair", "long_hair", "very_long_hair",
                "twintails", "ponytail", "blue_eyes", "red_eyes", "green_eyes", "smile", "open_mouth", "closed_eyes",
                "blush", "glasses", "hat", "animal_ears", "simple_background", "white_background", "blue_background"):
        assert tag in TAGS


def test_draw_face_shape_dtype_and_tags():
    image, tags = face(0, 0)
    assert image.shape == (96, 96, 3) and image.dtype == numpy.uint8
    assert tags == [t for t in TAGS if t in tags] and len(tags) == len(set(tags))
    assert image.std() > 20  # not blank


def test_deterministic_per_seed_and_index():
    a, tags_a = face(3, 11)
    b, tags_b = face(3, 11)
    assert numpy.array_equal(a, b) and tags_a == tags_b
    assert not numpy.array_equal(a, face(4, 11)[0])
    assert not numpy.array_equal(a, face(3, 12)[0])
    assert face_tags(face_random_state(3, 11)) == tags_a
    # a big seed is fine too
    assert face(2 ** 40, 5)[0].shape == (96, 96, 3)


def test_every_tag_appears_and_groups_are_consistent(sample_tags):
    counts = {t: 0 for t in TAGS}
    for tags in sample_tags:
        for t in tags:
            counts[t] += 1
        assert sum(t in HAIR for t in tags) == 1
        assert sum(t in LENGTHS for t in tags) == 1
        assert sum(t in EYES for t in tags) == (0 if "closed_eyes" in tags else 1)
        assert not ("twintails" in tags and "ponytail" in tags)
        if "twintails" in tags or "ponytail" in tags:
            assert "short_hair" not in tags
        assert not ("hat" in tags and "animal_ears" in tags)
        colored = [t for t in tags if t.endswith("_background") and t != "simple_background"]
        assert len(colored) == ("simple_background" in tags)
    assert min(counts.values()) >= 5, {t: c for t, c in counts.items() if c < 5}


def test_required_tags_are_honoured():
    for tag in TAGS:
        for index in range(2):
            assert tag in face_tags(face_random_state(1, index), require=(tag,)), tag
    assert draw_face(face_random_state(1, 0), require="blush")[1] == face(1, 0, "blush")[1]  # one tag as a str
    _, tags = face(1, 0, "ponytail")
    assert "ponytail" in tags and "short_hair" not in tags
    _, tags = face(1, 0, "simple_background")
    assert sum(t.endswith("_background") for t in tags) == 2  # simple_background and a colour


@pytest.mark.parametrize("require, message", [
    (("curly_hair",), "unknown tag 'curly_hair'"),
    (("blue_hair", "blonde_hair"), "cannot go together"),
    (("hat", "animal_ears"), "cannot go together"),
    (("twintails", "short_hair"), "short_hair"),
    (("closed_eyes", "red_eyes"), "closed_eyes"),
])
def test_bad_require(require, message):
    with pytest.raises(ValueError, match=message):
        face(0, 0, *require)


def hair_mask(image, tag):
    color = numpy.array(synthetic._HAIR_COLORS[tag[:-len("_hair")]], numpy.float32)
    return numpy.abs(image.astype(numpy.float32) - color).sum(axis=2) < 60


def test_hair_length_is_visible_below_the_face():
    lower = {length: [] for length in LENGTHS}
    for index in range(8):
        for length in LENGTHS:
            image, _ = face(2, index, length, "green_hair", "white_background")
            lower[length].append(hair_mask(image, "green_hair")[60:].mean())
    short, long, very_long = (numpy.array(lower[k]) for k in LENGTHS)
    assert (long > short + 0.05).all(), (short, long)
    assert (very_long > long + 0.03).all(), (long, very_long)
    assert short.max() < 0.08


def test_hair_colour_is_visible():
    for index in range(8):
        blue, _ = face(5, index, "blue_hair")
        blonde, _ = face(5, index, "blonde_hair")
        assert hair_mask(blue, "blue_hair").mean() > 0.1
        assert hair_mask(blonde, "blonde_hair").mean() > 0.1

        def bluish(img):
            r, g, b = (img[..., k].astype(int) for k in range(3))
            return ((b > r + 60) & (b > g + 30)).mean()

        assert bluish(blue) > bluish(blonde) + 0.1


def test_eye_colour_and_background_are_visible():
    for index in range(6):
        red, _ = face(6, index, "red_eyes")
        blue, _ = face(6, index, "blue_eyes")

        def reddish(img):
            r, g, b = (img[..., k].astype(int) for k in range(3))
            return ((r > g + 90) & (r > b + 70)).sum()

        assert reddish(red) > reddish(blue) + 20
        white, _ = face(6, index, "white_background")
        assert white[:4, :4].min() >= 240 or white[:4, -4:].min() >= 240
        sky, _ = face(6, index, "blue_background")
        corner = sky[:4, :4].reshape(-1, 3).mean(axis=0)
        assert corner[2] > corner[0] + 50 or sky[:4, -4:, 2].mean() > sky[:4, -4:, 0].mean() + 50


def test_every_tag_changes_the_pixels():
    for tag in TAGS:
        index = next(i for i in range(50) if tag not in face_tags(face_random_state(8, i)))
        plain, _ = face(8, index)
        tagged, tags = face(8, index, tag)
        assert tag in tags
        changed = (numpy.abs(plain.astype(int) - tagged.astype(int)).sum(axis=2) > 30).sum()
        assert changed >= 15, (tag, changed)  # the smallest change, a smile, moves about 20 pixels


def test_synthetic_faces_dataset():
    data = SyntheticFaces(5, seed=9)
    assert len(data) == 5
    x = data[2]
    assert x.shape == (3, 96, 96) and x.dtype == numpy.float32
    assert x.min() >= -1.0 and x.max() <= 127 / 128
    image, tags = face(9, 2)
    numpy.testing.assert_array_equal(x, to_array(image))
    assert data.tags(2) == tags
    numpy.testing.assert_array_equal(data[-1], data[4])
    cached = SyntheticFaces(5, seed=9, cache=True)
    numpy.testing.assert_array_equal(cached.get_example(2), x)
    batch = cached[0:3]
    assert len(batch) == 3 and batch[2].shape == (3, 96, 96)
    with pytest.raises(IndexError):
        data.get_example(5)
    for bad in (dict(n=0), dict(n=2.5), dict(n=3, seed=-1)):
        with pytest.raises(ValueError, match="SyntheticFaces"):
            SyntheticFaces(**bad)


def test_write_dataset_and_resume(tmp_path):
    out = tmp_path / "ds"
    seen = []
    assert write_dataset(out, 6, seed=4, callback=lambda done, n: seen.append((done, n))) == 6
    assert seen[-1] == (6, 6)
    records = read_manifest(out)
    assert [r["index"] for r in records] == list(range(6))
    for r in records:
        assert r["seed"] == 4 and r["source"] == "synthetic"
        image, tags = face(4, r["index"])
        assert r["tags"] == tags
        numpy.testing.assert_array_equal(read_image(str(out / r["file"])), image)
    # a killed writer leaves a torn last line; resuming drops it and carries on
    with open(out / "manifest.jsonl", "a") as f:
        f.write('{"file": "images/000/00')
    assert write_dataset(out, 9, seed=4, workers=2) == 3
    assert [r["index"] for r in read_manifest(out)] == list(range(9))
    assert write_dataset(out, 9, seed=4) == 0
    with pytest.raises(ValueError, match="seed 4, not 5"):
        write_dataset(out, 9, seed=5)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        write_dataset(tmp_path / "other", 0)
    with pytest.raises(ValueError, match="workers"):
        write_dataset(tmp_path / "other", 3, workers=0)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "manifest.jsonl").write_text('{"file": "a.png", "tags": []}\n')
    with pytest.raises(ValueError, match="not a synthetic-face record"):
        write_dataset(foreign, 3)


def test_cli_help_lists_every_flag():
    result = subprocess.run([sys.executable, CLI, "--help"], capture_output=True, text=True, check=True)
    for flag in ("--out", "--n", "--seed", "--workers", "--grid", "--quiet"):
        assert flag in result.stdout
    assert "long_hair" in result.stdout


@pytest.fixture(scope="module")
def cli():
    sys.path.insert(0, os.path.dirname(CLI))
    try:
        import make_synthetic_faces
    finally:
        sys.path.remove(os.path.dirname(CLI))
    return make_synthetic_faces


def test_cli_writes_a_small_dataset(tmp_path, cli, capsys):
    grid = tmp_path / "grid.png"
    assert cli.main(["--out", str(tmp_path / "ds"), "--n", "4", "--seed", "2", "--quiet", "--grid", str(grid)]) == 0
    assert len(read_manifest(tmp_path / "ds")) == 4
    assert read_image(str(grid)).shape == (960, 960, 3)
    assert cli.main(["--out", str(tmp_path / "ds"), "--n", "4", "--seed", "3", "--quiet"]) == 2
    assert "written with seed 2, not 3" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "--n: must be >= 1, got 0"),
    (["--n", "many"], "--n: expected an integer"),
    (["--n", "3", "--seed", "-2"], "--seed: must be >= 0"),
    (["--n", "3", "--workers", "0"], "--workers: must be >= 1"),
    (["--seed", "1"], "the following arguments are required: --n"),
])
def test_cli_bad_arguments(tmp_path, cli, capsys, args, message):
    with pytest.raises(SystemExit) as exit:
        cli.main(["--out", str(tmp_path / "x")] + args)
    assert exit.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def _edge_sharpness(image):
    """The 99.5th percentile of the luminance step between horizontal neighbours (0..255): high when
    outlines change colour within a pixel, low when they are smeared over several."""
    grey = image.astype(numpy.float64).mean(axis=-1)
    return numpy.percentile(numpy.abs(numpy.diff(grey, axis=1)), 99.5)


@pytest.mark.parametrize("size", [128, 256])
def test_larger_faces_are_drawn_natively_with_sharp_edges(size):
    from PIL import Image

    native, upscaled, same_face, other_face = [], [], [], []
    for i in range(6):
        small = draw_face(face_random_state(0, i))[0]
        big = draw_face(face_random_state(0, i), size=size)[0]
        assert big.shape == (size, size, 3) and big.dtype == numpy.uint8
        native.append(_edge_sharpness(big))
        # Lanczos: the sharpest of PIL's upscalers, the best an upscaled 96 px face could do
        upscaled.append(_edge_sharpness(numpy.asarray(Image.fromarray(small).resize((size, size), Image.LANCZOS))))
        down = numpy.asarray(Image.fromarray(big).resize((96, 96), Image.BOX)).astype(numpy.float64)
        same_face.append(numpy.abs(down - small).mean())
        other_face.append(numpy.abs(down - draw_face(face_random_state(0, i + 10))[0]).mean())
    assert numpy.mean(native) > 1.2 * numpy.mean(upscaled), (native, upscaled)
    # the same face as at 96 px, drawn at the larger size (not another one)
    assert numpy.mean(same_face) < 8 and numpy.mean(other_face) > 3 * numpy.mean(same_face)


def test_synthetic_faces_dataset_size():
    data = SyntheticFaces(3, seed=1, cache=True, size=64)
    x = data[1]
    assert x.shape == (3, 64, 64) and x.dtype == numpy.float32
    assert numpy.array_equal(data.image(1), draw_face(face_random_state(1, 1), size=64)[0])
    with pytest.raises(ValueError, match="size"):
        SyntheticFaces(3, size=2)
