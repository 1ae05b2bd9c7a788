"""Inversion (chainer_dcgan.zspace.inversion): the encoder, its files, refinement, training and the shipped
encoder's quality on generated faces it never saw."""
import json
import os

import numpy
import pytest
from conftest import make_demo_generator

from chainer_dcgan.models import ConditionalGenerator, pretrained, sample_z
from chainer_dcgan.models.serialization import load_generator, save_model
from chainer_dcgan.zspace import inversion


def _faces(generator, z, y=None):
    """G(z) as an image file holds it (uint8 (N, S, S, 3))."""
    from chainer_dcgan.utils.images import to_image

    return numpy.stack([to_image(x) for x in generator.generate(z, y=y)])


def test_the_encoder_maps_images_to_z_in_the_prior(demo_generator):
    numpy.random.seed(0)
    enc = inversion.Encoder(width=4, generator=inversion.generator_digest(demo_generator))
    z = inversion.encode(enc, numpy.random.RandomState(1).randint(0, 256, (3, 96, 96, 3)).astype(numpy.uint8))
    assert z.shape == (3, 100) and z.dtype == numpy.float32 and numpy.abs(z).max() <= 1
    assert inversion.Encoder(size=64, width=4).fc.W.shape == (100, 32 * 4 * 4)
    with pytest.raises(ValueError, match=r"expected uint8 \(N, 96, 96, 3\)"):
        inversion.encode(enc, numpy.zeros((1, 64, 64, 3), numpy.uint8))


def test_the_generator_digest_follows_the_weights_not_the_file(demo_generator, tmp_path):
    digest = inversion.generator_digest(demo_generator)
    assert digest == inversion.generator_digest(make_demo_generator())
    save_model(str(tmp_path / "g16.npz"), demo_generator, dtype=numpy.float16)
    half = load_generator(str(tmp_path / "g16.npz"))
    assert inversion.generator_digest(half) == inversion.generator_digest(load_generator(str(tmp_path / "g16.npz")))
    assert inversion.generator_digest(half) != digest  # float16 rounding changed the weights
    other = make_demo_generator()
    other.dc4.b.array[0] += 1e-3
    assert inversion.generator_digest(other) != digest


def test_an_encoder_file_loads_for_its_generator_and_is_refused_for_another(demo_generator, tmp_path):
    numpy.random.seed(2)
    enc = inversion.Encoder(width=4, generator=inversion.generator_digest(demo_generator))
    path = str(tmp_path / "enc.npz")
    inversion.save_encoder(path, enc)
    back = inversion.load_encoder(path, demo_generator)
    assert back.config == enc.config
    numpy.testing.assert_array_equal(back.fc.W.array, enc.fc.W.array.astype(numpy.float16).astype(numpy.float32))
    with pytest.raises(inversion.EncoderFileError, match="enc.npz: made for another generator"):
        inversion.load_encoder(path, make_demo_generator(seed=1))
    save_model(str(tmp_path / "gen.npz"), demo_generator)
    with pytest.raises(inversion.EncoderFileError, match="gen.npz: not an encoder file .it holds a Generator"):
        inversion.load_encoder(str(tmp_path / "gen.npz"))
    with pytest.raises(inversion.EncoderFileError, match="nothere.npz: no such encoder file"):
        inversion.load_encoder(str(tmp_path / "nothere.npz"))
    with pytest.raises(ValueError, match="records no generator"):
        inversion.save_encoder(path, inversion.Encoder(width=4))
    # A record asking for a huge encoder is refused before anything is allocated.
    record = json.dumps({"format": 1, "class": "Encoder", "config": {"width": 10 ** 9}}).encode()
    with open(str(tmp_path / "huge.npz"), "wb") as f:
        numpy.savez(f, _meta=numpy.frombuffer(record, numpy.uint8))
    with pytest.raises(inversion.EncoderFileError, match="huge.npz: bad encoder record .* width must be"):
        inversion.load_encoder(str(tmp_path / "huge.npz"))


def test_refinement_lowers_the_loss_and_keeps_z_in_the_prior(demo_generator):
    target = _faces(demo_generator, sample_z(3, random_state=10))
    start = sample_z(3, random_state=11)
    z, history = inversion.refine(demo_generator, target, start, steps=8, lr=0.05)
    assert history.shape == (9, 3)
    assert (history[-1] < 0.9 * history[0]).all(), history
    assert numpy.abs(z).max() <= 1 and z.dtype == numpy.float32
    # The z returned is the best one seen: its loss is the history's minimum.
    _, again = inversion.refine(demo_generator, target, z, steps=0)
    numpy.testing.assert_allclose(again[0], history.min(axis=0), rtol=1e-5)


def test_without_an_encoder_the_start_is_the_nearest_of_the_random_candidates(demo_generator):
    target = _faces(demo_generator, sample_z(2, random_state=12))
    found = inversion.invert(demo_generator, target, None, steps=0, candidates=8, seed=3)
    candidates = sample_z(8, random_state=3)
    faces = numpy.clip(demo_generator.generate(candidates), -1, 1)
    x = inversion.as_arrays(target, 96)
    for i in range(2):
        squared = ((faces - x[i]) ** 2).reshape(8, -1).sum(axis=1)
        numpy.testing.assert_array_equal(found.start[i], candidates[numpy.argmin(squared)])
    assert found.reconstructions.shape == (2, 3, 96, 96) and found.history.shape == (1, 2)


def test_a_conditional_generator_is_inverted_with_its_tags_given():
    numpy.random.seed(4)
    gen = ConditionalGenerator(["red", "smile"], size=64)
    y = numpy.array([[1.0, 0.0], [0.0, 1.0]], numpy.float32)
    target = _faces(gen, sample_z(2, random_state=13), y)
    found = inversion.invert(gen, target, None, steps=5, y=y, candidates=4)
    assert (found.history[-1] < found.history[0]).all()
    with pytest.raises(ValueError, match="needs the tags"):
        inversion.invert(gen, target, None, steps=1)


def test_training_updates_the_encoder_and_a_resumed_run_ends_where_a_straight_one_does(tmp_path):
    numpy.random.seed(5)
    from chainer_dcgan.models import Generator

    gen = Generator(size=64)
    digest = inversion.generator_digest(gen)
    real = numpy.random.RandomState(6).randint(0, 256, (5, 64, 64, 3)).astype(numpy.uint8)

    def run(steps, checkpoint):
        numpy.random.seed(7)
        enc = inversion.Encoder(size=64, width=4, generator=digest)
        seen = []
        inversion.train_encoder(gen, enc, iterations=2, batch_size=3, real=real, real_iterations=1, seed=8,
                                checkpoint=checkpoint, checkpoint_interval=1,
                                callback=lambda it, stage, losses: seen.append((it, stage, sorted(losses))))
        return enc, seen

    numpy.random.seed(7)
    before = inversion.Encoder(size=64, width=4, generator=digest).fc.W.array.copy()
    straight, seen = run(3, None)
    assert seen == [(1, 1, ["pixel", "z"]), (2, 1, ["pixel", "z"]), (3, 2, ["pixel"])]
    assert not numpy.array_equal(straight.fc.W.array, before)
    assert inversion.generator_digest(gen) == digest  # G is not trained
    # A run that stopped after step 1 (its checkpoint) and was started again.
    ckpt = str(tmp_path / "ck.npz")
    numpy.random.seed(7)
    first = inversion.Encoder(size=64, width=4, generator=digest)
    inversion.train_encoder(gen, first, iterations=1, batch_size=3, seed=8, checkpoint=ckpt)
    resumed, seen = run(3, ckpt)
    assert [s[0] for s in seen] == [2, 3]
    for (name, a), (_, b) in zip(sorted(straight.namedparams()), sorted(resumed.namedparams())):
        numpy.testing.assert_allclose(a.array, b.array, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.fixture(scope="module")
def shipped():
    if not os.path.isfile(os.path.join(pretrained.ROOT, pretrained.DEFAULT, pretrained.ENCODER)):
        pytest.fail("the default model ships no encoder.npz")
    gen = load_generator("default")
    return gen, inversion.load_encoder("default", gen)


def test_the_shipped_encoder_is_small_float16_and_for_the_shipped_generator(shipped):
    path = pretrained.file_of(pretrained.DEFAULT, pretrained.ENCODER)
    assert os.path.getsize(path) <= 4 * 1024 * 1024
    with numpy.load(path) as npz:
        assert npz["fc/W"].dtype == numpy.float16


def test_the_shipped_encoder_beats_random_z_by_a_wide_margin_on_unseen_generated_faces(shipped):
    gen, enc = shipped
    z_true = sample_z(16, random_state=2026)  # training drew its z from RandomState([0, step])
    target = _faces(gen, z_true)
    x = inversion.as_arrays(target, 96)
    z_enc = inversion.encode(enc, target)
    z_rand = sample_z(16, random_state=2027)
    pixel_enc = inversion.pixel_error(gen.generate(z_enc), x).mean()
    pixel_rand = inversion.pixel_error(gen.generate(z_rand), x).mean()
    z_err_enc = numpy.abs(z_enc - z_true).mean()
    z_err_rand = numpy.abs(z_rand - z_true).mean()
    assert pixel_enc < 0.6 * pixel_rand, (pixel_enc, pixel_rand)
    assert z_err_enc < 0.7 * z_err_rand, (z_err_enc, z_err_rand)


def test_a_feature_loss_joins_training_and_leaves_the_feature_map_alone():
    from chainer_dcgan.models import Generator
    from chainer_dcgan.zspace.tagging import TagClassifier

    numpy.random.seed(9)
    gen = Generator(size=64)
    clf = TagClassifier(["red"], image_size=64, width=4)
    before = {name: p.array.copy() for name, p in clf.namedparams()}
    enc = inversion.Encoder(size=64, width=4, generator=inversion.generator_digest(gen))
    seen = []
    inversion.train_encoder(gen, enc, iterations=2, batch_size=2, seed=1, features=clf.features,
                            feature_weight=0.5, callback=lambda it, stage, losses: seen.append(losses))
    assert all(set(losses) == {"z", "pixel", "feature"} and losses["feature"] >= 0 for losses in seen)
    for name, p in clf.namedparams():
        numpy.testing.assert_array_equal(p.array, before[name], err_msg=name)
        assert p.grad is None
    with pytest.raises(ValueError, match="needs a feature map"):
        inversion.train_encoder(gen, enc, iterations=1, batch_size=2, feature_weight=1.0)
