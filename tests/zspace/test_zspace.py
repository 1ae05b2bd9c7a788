import json

import chainer  # noqa: F401  (chainer_dcgan below installs the shims either way)
import numpy
import pytest

import chainer_dcgan  # noqa: F401
from chainer_dcgan import zspace
from chainer_dcgan.models import Generator, sample_z


def test_sample_z_is_the_models_seeded_uniform():
    assert zspace.sample_z is sample_z
    a, b = zspace.sample_z(50, 100, 3), zspace.sample_z(50, 100, 3)
    assert a.dtype == numpy.float32 and a.shape == (50, 100)
    numpy.testing.assert_array_equal(a, b)
    assert a.min() >= -1 and a.max() <= 1 and a.min() < -0.9 and a.max() > 0.9


def test_lerp_includes_both_ends_and_is_linear():
    za, zb = sample_z(2, 100, 0)
    path = zspace.lerp(za, zb, 5)
    assert path.shape == (5, 100) and path.dtype == numpy.float32
    numpy.testing.assert_allclose(path[0], za, atol=1e-7)
    numpy.testing.assert_allclose(path[-1], zb, atol=1e-7)
    numpy.testing.assert_allclose(path[2], (za + zb) / 2, atol=1e-6)
    numpy.testing.assert_allclose(numpy.diff(path, axis=0), numpy.tile((zb - za) / 4, (4, 1)), atol=1e-6)


@pytest.mark.parametrize("steps", [1, 0, 2.5])
def test_interpolation_rejects_bad_steps(steps):
    za, zb = sample_z(2, 100, 0)
    with pytest.raises(ValueError, match="steps"):
        zspace.lerp(za, zb, steps)


def test_interpolation_rejects_mismatched_ends_and_methods():
    with pytest.raises(ValueError, match="differ in shape"):
        zspace.slerp(numpy.zeros(100), numpy.zeros(99), 3)
    with pytest.raises(ValueError, match="method"):
        zspace.interpolate(numpy.zeros(100), numpy.zeros(100), 3, method="cubic")
    with pytest.raises(ValueError, match="z_a"):
        zspace.lerp(numpy.zeros((2, 100)), numpy.zeros(100), 3)


def test_slerp_keeps_the_norm_between_equal_norm_ends():
    za, zb = 0.4 * sample_z(2, 100, 1)  # small enough that the arc stays inside the cube
    zb = zb * numpy.linalg.norm(za) / numpy.linalg.norm(zb)
    path = zspace.slerp(za, zb, 9)
    numpy.testing.assert_allclose(path[0], za, atol=1e-6)
    numpy.testing.assert_allclose(path[-1], zb, atol=1e-6)
    numpy.testing.assert_allclose(numpy.linalg.norm(path, axis=1), numpy.linalg.norm(za), rtol=1e-5)
    # the straight line dips towards the origin in the middle; the arc does not
    assert numpy.linalg.norm(zspace.lerp(za, zb, 9)[4]) < 0.9 * numpy.linalg.norm(path[4])


def test_slerp_stays_in_range_and_falls_back_for_parallel_ends():
    za, zb = sample_z(2, 100, 2)
    path = zspace.interpolate(za, zb, 7, method="slerp")
    assert path.min() >= -1 and path.max() <= 1
    numpy.testing.assert_allclose(zspace.slerp(za, 0.5 * za, 4), zspace.lerp(za, 0.5 * za, 4), atol=1e-6)
    numpy.testing.assert_allclose(zspace.slerp(za, numpy.zeros(100), 4), zspace.lerp(za, numpy.zeros(100), 4))


@pytest.mark.parametrize("method", zspace.INTERPOLATIONS)
def test_loop_path_visits_every_key_and_closes(method):
    keys = sample_z(3, 100, 4)
    path = zspace.loop_path(keys, 5, method)
    assert path.shape == (12, 100) and path.dtype == numpy.float32
    for k in range(3):
        numpy.testing.assert_allclose(path[4 * k], keys[k], atol=1e-6)
    # the last frame is one step before keys[0] again: the loop has no jump and no repeated frame
    step_sizes = numpy.linalg.norm(numpy.diff(numpy.concatenate([path, path[:1]]), axis=0), axis=1)
    assert step_sizes.min() > 0 and step_sizes.max() < 2 * numpy.median(step_sizes) + 1e-6
    with pytest.raises(ValueError, match="at least 2"):
        zspace.loop_path(keys[:1], 5)


def test_variations_stay_within_strength_and_range():
    z = sample_z(1, 100, 5)[0]
    out = zspace.variations(z, 64, 0.25, random_state=7)
    assert out.shape == (64, 100) and out.dtype == numpy.float32
    assert out.min() >= -1 and out.max() <= 1
    assert numpy.abs(out - z).max() <= 0.25 + 1e-6
    assert numpy.abs(out - z).max() > 0.2  # the noise really spans the strength
    numpy.testing.assert_array_equal(out, zspace.variations(z, 64, 0.25, random_state=7))
    numpy.testing.assert_array_equal(zspace.variations(z, 3, 0.0, 1), numpy.tile(z, (3, 1)))
    with pytest.raises(ValueError, match="strength"):
        zspace.variations(z, 3, -0.1)


def test_compose_is_the_demo_formula():
    rs = numpy.random.RandomState(0)
    z0 = sample_z(1, 100, 8)[0]
    vectors = rs.uniform(-1, 1, (3, 100))
    sliders = numpy.array([0.5, -1.0, 0.25])
    out = zspace.compose(z0, 0.7, sliders, vectors)
    expected = numpy.clip(0.7 * z0.astype(numpy.float64) + sliders @ vectors, -1, 1).astype(numpy.float32)
    assert out.dtype == numpy.float32 and out.shape == (100,)
    numpy.testing.assert_allclose(out, expected, atol=1e-7)
    assert (numpy.abs(0.7 * z0 + sliders @ vectors) > 1).any() and numpy.abs(out).max() == 1.0
    # no sliders: just the scaled z0
    numpy.testing.assert_array_equal(zspace.compose(z0, 1.0), z0)
    numpy.testing.assert_allclose(zspace.compose(z0, 0.5, [], None), 0.5 * z0, atol=1e-7)
    # strength 0 leaves the tag terms alone
    numpy.testing.assert_allclose(zspace.compose(z0, 0.0, [1.0, 0, 0], vectors), numpy.clip(vectors[0], -1, 1),
                                  atol=1e-7)


def test_compose_matches_a_javascript_style_loop_bit_for_bit():
    """The page sums ``strength * z0[j] + s[0] * v[0][j] + s[1] * v[1][j] + ...`` in doubles, then clips."""
    rs = numpy.random.RandomState(1)
    z0 = sample_z(1, 100, 9)[0]
    vectors = numpy.round(rs.uniform(-1, 1, (5, 100)), 6)
    sliders = [0.13, -0.5, 0.0, 0.77, -0.31]
    expected = []
    for j in range(100):
        x = 0.9 * float(z0[j])
        for s, v in zip(sliders, vectors):
            x = x + s * float(v[j])
        expected.append(min(1.0, max(-1.0, x)))
    numpy.testing.assert_array_equal(zspace.compose(z0, 0.9, sliders, vectors), numpy.float32(expected))


def test_compose_batches():
    z0 = sample_z(4, 100, 10)
    vectors = numpy.eye(100)[:2]
    numpy.testing.assert_allclose(zspace.compose(z0, 1.0, [0.5, 0.0], vectors)[:, 0], numpy.clip(z0[:, 0] + 0.5, -1, 1))
    sliders = numpy.array([[0.1, 0], [0.2, 0], [0.3, 0], [0.4, 0]])
    out = zspace.compose(z0, 1.0, sliders, vectors)
    assert out.shape == (4, 100)
    numpy.testing.assert_allclose(out[:, 0], numpy.clip(z0[:, 0] + sliders[:, 0], -1, 1), atol=1e-7)
    numpy.testing.assert_array_equal(out[:, 2:], z0[:, 2:])


@pytest.mark.parametrize("z0, sliders, vectors, match", [
    (numpy.zeros(100), [1.0], None, "vectors: required"),
    (numpy.zeros(100), [1.0], numpy.zeros((1, 99)), r"vectors: expected shape \(K, 100\)"),
    (numpy.zeros(100), [1.0, 2.0], numpy.zeros((1, 100)), "sliders"),
    (numpy.zeros((3, 100)), numpy.zeros((2, 1)), numpy.zeros((1, 100)), "2 rows for 3 rows"),
    (numpy.zeros((1, 1, 100)), None, None, "z0"),
])
def test_compose_names_the_bad_argument(z0, sliders, vectors, match):
    with pytest.raises(ValueError, match=match):
        zspace.compose(z0, 1.0, sliders, vectors)


class _RecordingLink(chainer.Link):
    """A stand-in generator: z (N, D) -> (N, 3, 2, 2) images equal to z[:, 0]; records the train flag."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, z):
        self.calls.append((len(z), chainer.config.train, chainer.config.enable_backprop))
        return chainer.Variable(numpy.broadcast_to(z[:, :1, None, None], (len(z), 3, 2, 2)) * 1.0)


def test_generate_runs_in_test_mode_in_batches():
    link = _RecordingLink()
    z = sample_z(7, 100, 11)
    out = zspace.generate(link, z, batch_size=3)
    assert out.shape == (7, 3, 2, 2) and out.dtype == numpy.float32
    numpy.testing.assert_array_equal(out[:, 1, 1, 0], z[:, 0])
    assert link.calls == [(3, False, False), (3, False, False), (1, False, False)]
    with pytest.raises(ValueError, match="no latent vectors"):
        zspace.generate(link, numpy.zeros((0, 100)))


def test_generate_with_the_faithful_generator_is_deterministic():
    numpy.random.seed(0)
    gen = Generator()
    z = sample_z(2, 100, 12)
    a = zspace.generate(gen, z)
    assert a.shape == (2, 3, 96, 96) and a.dtype == numpy.float32
    numpy.testing.assert_array_equal(a, zspace.generate(gen, z))
    # batching changes only BLAS summation order
    numpy.testing.assert_allclose(a, zspace.generate(gen, z, batch_size=1), atol=1e-6)


@pytest.mark.parametrize("name", ["z.npy", "z.json"])
def test_z_files_round_trip(tmp_path, name):
    z = sample_z(3, 100, 13)
    zspace.write_z(tmp_path / name, z)
    numpy.testing.assert_array_equal(zspace.read_z(tmp_path / name), z)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # nothing temporary left behind


def test_read_z_accepts_one_vector_and_clips(tmp_path):
    (tmp_path / "one.json").write_text(json.dumps([2.0] + [0.0] * 99))
    z = zspace.read_z(tmp_path / "one.json")
    assert z.shape == (1, 100) and z[0, 0] == 1.0


@pytest.mark.parametrize("content, match", [
    (None, "no such file"),
    ("[1, 2, 3]", r"expected shape \(100,\)"),
    ("{\"a\": 1}", "expected shape|not a"),
    ("[" + ", ".join(["NaN"] * 100) + "]", "NaN"),
    ("not json", "not a .npy or .json"),
])
def test_read_z_names_the_file_on_bad_input(tmp_path, content, match):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(zspace.ZFileError, match=match) as info:
        zspace.read_z(path)
    assert "bad.json" in str(info.value)
