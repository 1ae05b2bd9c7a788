import chainer
import numpy
import pytest

from chainer_dcgan import Discriminator, Generator
from chainer_dcgan.models import (MODEL_CLASSES, ConditionalGenerator, ProjectionDiscriminator, UnknownTagError,
                                  is_conditional, parse_tag_spec)
from chainer_dcgan.models.serialization import load_generator, read_meta, save_model
from chainer_dcgan.utils.random_state import seeded_global

TAGS = ["blonde_hair", "blue_hair", "long_hair", "smile"]


def count(link):
    return sum(p.size for p in link.params())


def _seeded(build, seed=0):
    with seeded_global(seed):
        return build()


def _y(n, k, seed=0):
    return (numpy.random.RandomState(seed).uniform(size=(n, k)) < 0.5).astype(numpy.float32)


@pytest.mark.parametrize("k", [1, 4, 35])
def test_shapes_and_parameter_counts_for_k_tags(k):
    tags = ["t{}".format(i) for i in range(k)]
    gen, dis = ConditionalGenerator(tags), ProjectionDiscriminator(tags)
    # per conditional BatchNorm: a gamma and a beta offset per tag and channel
    assert count(gen) == count(Generator()) + 2 * k * (6 * 6 * 512 + 256 + 128 + 64)
    assert count(dis) == count(Discriminator()) + 512 * k
    z = gen.make_hidden(3, 0)
    x = gen(z, _y(3, k))
    assert x.shape == (3, 3, 96, 96) and x.dtype == numpy.float32
    logits = dis(x, _y(3, k, 1))
    assert logits.shape == (3, 2) and logits.dtype == numpy.float32


@pytest.mark.parametrize("size", [64, 128, 256])
def test_conditional_models_at_every_size(size):
    """The conditional pair of ``size`` is the faithful pair of that size plus the tag parameters."""
    k = 3
    tags = TAGS[:k]
    gen, dis = ConditionalGenerator(tags, size=size), ProjectionDiscriminator(tags, size=size)
    faithful_gen = Generator(size=size)
    channels = [faithful_gen.bn0l.avg_mean.size] + [getattr(faithful_gen, "bn{}".format(i)).avg_mean.size
                                                    for i in range(1, faithful_gen.blocks)]
    assert count(gen) == count(faithful_gen) + 2 * k * sum(channels)
    assert count(dis) == count(Discriminator(size=size)) + 512 * k
    assert gen.config["size"] == dis.config["size"] == size
    x = gen(gen.make_hidden(2, 0), _y(2, k))
    assert x.shape == (2, 3, size, size)
    assert dis(x, _y(2, k, 1)).shape == (2, 2)


def test_projection_discriminator_with_spectral_norm():
    dis = _seeded(lambda: ProjectionDiscriminator(TAGS, size=64, spectral_norm=True), 2)
    plain = _seeded(lambda: Discriminator(size=64, spectral_norm=True), 2)
    assert dis.config["spectral_norm"] and not any(name.startswith("bn") for name in dis._children)
    assert count(dis) == count(plain) + 512 * len(TAGS)
    x = numpy.random.RandomState(0).uniform(-1, 1, (2, 3, 64, 64)).astype(numpy.float32)
    with chainer.using_config("train", False):  # the same weights and power-iteration vectors: equal
        numpy.testing.assert_allclose(dis(x, _y(2, 4)).array, plain(x).array, atol=1e-5)
    twin = MODEL_CLASSES["ProjectionDiscriminator"](**dis.config)
    assert twin.spectral_norm and twin.size == 64 and twin.tags == TAGS


def test_untrained_conditional_models_equal_the_faithful_ones():
    """Offsets and embedding start at zero, so y changes nothing until training moves them."""
    gen, cgen = _seeded(Generator), _seeded(lambda: ConditionalGenerator(TAGS))
    dis, cdis = _seeded(Discriminator, 1), _seeded(lambda: ProjectionDiscriminator(TAGS), 1)
    z = gen.make_hidden(4, 0)
    with chainer.using_config("train", True):
        x = gen(z).array
        numpy.testing.assert_allclose(cgen(z, _y(4, 4)).array, x, atol=1e-5)
        numpy.testing.assert_allclose(cdis(x, _y(4, 4)).array, dis(x).array, atol=1e-5)


def test_tags_change_the_output_once_offsets_are_set():
    gen = ConditionalGenerator(TAGS)
    rs = numpy.random.RandomState(0)
    for bn in (gen.bn0l, gen.bn1, gen.bn2, gen.bn3):
        bn.gamma_y.array[:] = rs.normal(0, 0.5, bn.gamma_y.shape)
        bn.beta_y.array[:] = rs.normal(0, 0.5, bn.beta_y.shape)
    z = numpy.repeat(gen.make_hidden(1, 0), 3, axis=0)
    y = numpy.array([[0, 0, 0, 0], [1, 0, 0, 0], [0.5, 0, 0, 0]], numpy.float32)
    with chainer.using_config("train", False):
        x = gen(z, y).array
    assert numpy.abs(x[1] - x[0]).mean() > 1e-3
    # a fractional weight lies between no tag and the full tag
    assert 0 < numpy.abs(x[2] - x[0]).mean() < numpy.abs(x[1] - x[0]).mean()

    dis = ProjectionDiscriminator(TAGS)
    dis.embed.array[:] = rs.normal(0, 1, dis.embed.shape)
    xs = numpy.repeat(x[:1], 2, axis=0)
    with chainer.using_config("train", False):
        logits = dis(xs, numpy.array([[0, 0, 0, 0], [1, 0, 1, 0]], numpy.float32)).array
    assert logits[0, 1] == pytest.approx(logits[1, 1], abs=1e-5)  # only the REAL logit moves
    assert abs(logits[0, 0] - logits[1, 0]) > 1e-4


def test_tags_are_required_with_the_right_shape():
    gen = ConditionalGenerator(TAGS)
    z = gen.make_hidden(2, 0)
    with pytest.raises(ValueError, match="needs tags"):
        gen(z)
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        gen(z, numpy.zeros((2, 3), numpy.float32))
    with pytest.raises(ValueError, match="distinct"):
        ConditionalGenerator(["a", "a"])
    with pytest.raises(ValueError, match="at least one tag"):
        ProjectionDiscriminator([])


def test_save_load_round_trip_keeps_the_vocabulary(tmp_path):
    gen = _seeded(lambda: ConditionalGenerator(TAGS), 3)
    gen.bn1.gamma_y.array[:] = numpy.random.RandomState(0).normal(size=gen.bn1.gamma_y.shape)
    path = str(tmp_path / "gen.npz")
    save_model(path, gen)
    meta = read_meta(path)
    assert meta["class"] == "ConditionalGenerator" and meta["config"]["tags"] == TAGS
    with numpy.load(path) as npz:  # no pickled member: every array loads with allow_pickle=False
        assert all(npz[name].dtype != object for name in npz.files)
    loaded = load_generator(path)
    assert isinstance(loaded, ConditionalGenerator) and loaded.tags == TAGS
    z, y = gen.make_hidden(3, 1), _y(3, 4, 2)
    with chainer.using_config("train", False):
        numpy.testing.assert_array_equal(loaded(z, y).array, gen(z, y).array)
    assert "ProjectionDiscriminator" in MODEL_CLASSES and is_conditional(loaded)
    assert not is_conditional(Generator())


def test_tag_specs_and_unknown_tags():
    assert parse_tag_spec("long_hair, smile=0.5,") == {"long_hair": 1.0, "smile": 0.5}
    for bad, message in (("a=x", "not a number"), ("a=1.5", r"\[0, 1\]"), ("a,a", "twice"), ("=1", "empty")):
        with pytest.raises(ValueError, match=message):
            parse_tag_spec(bad)
    gen = ConditionalGenerator(TAGS)
    numpy.testing.assert_array_equal(gen.encode_tags("blue_hair,smile=0.25"), [0, 1, 0, 0.25])
    numpy.testing.assert_array_equal(gen.encode_tags(["long_hair"]), [0, 0, 1, 0])
    with pytest.raises(UnknownTagError, match="unknown tag red_hair .*knows: blonde_hair, blue_hair"):
        gen.encode_tags("red_hair")
