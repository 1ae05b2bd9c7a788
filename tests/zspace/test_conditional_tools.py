"""The command lines with a conditional model: generate.py, interpolate.py and variations.py --tags."""
import numpy
import pytest
from conftest import run_script
from PIL import Image

from chainer_dcgan import Generator
from chainer_dcgan.models import ConditionalGenerator, resolve_tags
from chainer_dcgan.models.serialization import save_model
from chainer_dcgan.utils.random_state import seeded_global

TAGS = ["blonde_hair", "blue_hair", "long_hair"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A conditional G whose tag offsets are random, so each tag visibly changes the faces."""
    with seeded_global(0):
        gen = ConditionalGenerator(TAGS)
    rs = numpy.random.RandomState(1)
    for bn in (gen.bn0l, gen.bn1, gen.bn2, gen.bn3):
        bn.beta_y.array[:] = rs.normal(0, 1.0, bn.beta_y.shape)
    path = tmp_path_factory.mktemp("cond") / "gen.npz"
    save_model(str(path), gen)
    return path


def _pixels(path):
    with Image.open(path) as img:
        return numpy.asarray(img.convert("RGB"), dtype=numpy.int16)


def test_resolve_tags():
    gen = ConditionalGenerator(TAGS)
    numpy.testing.assert_array_equal(resolve_tags(gen, "long_hair,blonde_hair=0.5"), [0.5, 0, 1])
    numpy.testing.assert_array_equal(resolve_tags(gen, ""), [0, 0, 0])
    assert resolve_tags(Generator(), None) is None
    with pytest.raises(ValueError, match="^tags is needed: .* 3 tags: blonde_hair, blue_hair, long_hair"):
        resolve_tags(gen, None)
    with pytest.raises(ValueError, match="not conditional"):
        resolve_tags(Generator(), "long_hair")


def test_generate_with_tags_and_weights(model_file, tmp_path):
    paths = {}
    for spec in ("blonde_hair", "blue_hair", "blue_hair=0.5"):
        paths[spec] = tmp_path / "{}.png".format(spec.replace("=", "_"))
        run_script("examples/generate.py", model_file, "--tags", spec, "--out", paths[spec], "--rows", 1, "--cols", 2)
    a, b, half = (_pixels(paths[s]) for s in ("blonde_hair", "blue_hair", "blue_hair=0.5"))
    assert a.shape == (96, 192, 3)
    assert numpy.abs(a - b).mean() > 2  # the same z, another tag: other faces
    assert 0 < numpy.abs(half - a).mean() and not numpy.array_equal(half, b)


def test_generate_refuses_unknown_or_missing_tags(model_file, tmp_path):
    proc = run_script("examples/generate.py", model_file, "--tags", "long_hair,red_hair", "--out",
                      tmp_path / "x.png", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: unknown tag red_hair (this model knows: blonde_hair, blue_hair, long_hair)"]
    assert not (tmp_path / "x.png").exists()
    proc = run_script("examples/generate.py", model_file, "--out", tmp_path / "x.png", check=False)
    assert proc.returncode == 2 and "--tags is needed" in proc.stderr
    proc = run_script("examples/generate.py", model_file, "--tags", "long_hair=2", "--out", tmp_path / "x.png",
                      check=False)
    assert proc.returncode == 2 and "[0, 1]" in proc.stderr


def test_zspace_tools_take_tags(model_file, tmp_path):
    run_script("tools/interpolate.py", "--model", model_file, "--tags", "long_hair", "--rows", 1, "--steps", 3,
               "--pad", 0, "--out", tmp_path / "i.png")
    assert _pixels(tmp_path / "i.png").shape == (96, 3 * 96, 3)
    for spec in ("blonde_hair", "blue_hair"):
        run_script("tools/variations.py", "--model", model_file, "--tags", spec, "--rows", 1, "--cols", 1,
                   "--pad", 0, "--out", tmp_path / "{}.png".format(spec))
    assert numpy.abs(_pixels(tmp_path / "blonde_hair.png") - _pixels(tmp_path / "blue_hair.png")).mean() > 2
    proc = run_script("tools/variations.py", "--model", model_file, "--tags", "nope", "--out", tmp_path / "v.png",
                      check=False)
    assert proc.returncode != 0 and "unknown tag nope" in proc.stderr
