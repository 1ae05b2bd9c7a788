"""FID, KID, precision/recall and the dataset-feature cache."""
import os

import numpy
import pytest

from chainer_dcgan.evaluation import metrics

pytestmark = pytest.mark.timeout(300)


# ---------------------------------------------------------------------------------------------
# The formulas, on synthetic feature vectors


def _gaussian(n, d=32, shift=0.0, seed=0):
    """``n`` draws of one correlated Gaussian in ``d`` dimensions (the same for every seed), shifted."""
    mix = numpy.random.RandomState(12345 + d).normal(size=(d, d)) / numpy.sqrt(d)
    return numpy.random.RandomState(seed).normal(size=(n, d)) @ mix + shift


def test_frechet_distance_matches_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a, b = _gaussian(300, seed=1), _gaussian(300, shift=0.3, seed=2)
    (m1, s1), (m2, s2) = metrics.statistics(a), metrics.statistics(b)
    root = scipy_linalg.sqrtm(s1 @ s2)
    expected = ((m1 - m2) ** 2).sum() + numpy.trace(s1 + s2 - 2 * root.real)
    assert metrics.frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-8)
    assert metrics.fid(a, b) == pytest.approx(expected, rel=1e-8)


def test_fid_from_few_features_equals_the_frechet_distance_of_their_statistics():
    a, b = _gaussian(12, d=64, seed=9), _gaussian(20, d=64, shift=0.1, seed=10)  # the low-rank route
    expected = metrics.frechet_distance(*metrics.statistics(a), *metrics.statistics(b))
    assert metrics.fid(a, b) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="N >= 2"):
        metrics.fid(a[:1], b)


def test_fid_of_a_set_with_itself_is_zero_even_with_fewer_samples_than_dimensions():
    few = numpy.abs(_gaussian(10, d=64, seed=3))  # rank-deficient covariance
    assert abs(metrics.fid(few, few)) < 1e-9 * numpy.trace(metrics.statistics(few)[1])
    assert metrics.fid(few, few[::-1]) == pytest.approx(0.0, abs=1e-8)


def test_statistics_and_frechet_reject_bad_shapes():
    with pytest.raises(ValueError, match="at least 2"):
        metrics.statistics(numpy.zeros((1, 4)))
    with pytest.raises(ValueError, match="mismatched"):
        metrics.frechet_distance(numpy.zeros(3), numpy.eye(3), numpy.zeros(4), numpy.eye(4))


def _kid_by_definition(x, y):
    d = x.shape[1]
    kxx, kyy, kxy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    return ((kxx.sum() - numpy.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - numpy.trace(kyy)) / (n * (n - 1))
            - 2 * kxy.mean())


def test_kid_is_the_unbiased_mmd_with_a_jackknife_standard_error():
    x, y = _gaussian(20, seed=4), _gaussian(25, shift=0.2, seed=5)
    value, stderr = metrics.kid(x, y)
    assert value == pytest.approx(_kid_by_definition(x, y), rel=1e-5)
    loo_x = numpy.array([_kid_by_definition(numpy.delete(x, i, 0), y) for i in range(len(x))])
    loo_y = numpy.array([_kid_by_definition(x, numpy.delete(y, j, 0)) for j in range(len(y))])
    variance = (19 / 20 * ((loo_x - loo_x.mean()) ** 2).sum() + 24 / 25 * ((loo_y - loo_y.mean()) ** 2).sum())
    assert stderr == pytest.approx(numpy.sqrt(variance), rel=1e-4)


def test_kid_sign_and_scale():
    """Same distribution: within a few standard errors of 0 (either sign). Shifted: clearly positive."""
    same = metrics.kid(_gaussian(400, seed=6), _gaussian(400, seed=6 + 7))
    assert abs(same[0]) < 3 * same[1]
    small_shift = metrics.kid(_gaussian(400, seed=6), _gaussian(400, shift=0.3, seed=6 + 7))
    large_shift = metrics.kid(_gaussian(400, seed=6), _gaussian(400, shift=1.0, seed=6 + 7))
    assert small_shift[0] > 3 * small_shift[1]
    assert large_shift[0] > 5 * small_shift[0]
    with pytest.raises(ValueError, match="N >= 3"):
        metrics.kid(numpy.zeros((2, 4)), numpy.zeros((5, 4)))


def test_nearest_neighbour_metrics_at_the_extremes():
    a = _gaussian(60, seed=8)
    same = metrics.nearest_neighbour_metrics(a, a.copy())
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert same["density"] >= 1.0
    far = metrics.nearest_neighbour_metrics(a, a + 100.0)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    with pytest.raises(ValueError, match="k=5"):
        metrics.nearest_neighbour_metrics(a[:5], a)


def test_select_examples():
    numpy.testing.assert_array_equal(metrics.select_examples(5, 10), numpy.arange(5))
    numpy.testing.assert_array_equal(metrics.select_examples(5, None), numpy.arange(5))
    picked = metrics.select_examples(100, 10, seed=1)
    assert len(set(picked)) == 10 and (numpy.diff(picked) > 0).all()
    numpy.testing.assert_array_equal(picked, metrics.select_examples(100, 10, seed=1))
    with pytest.raises(ValueError):
        metrics.select_examples(100, 0)


# ---------------------------------------------------------------------------------------------
# On InceptionV3 features of synthetic faces and of an untrained generator (small n: CPU is slow)

N_HALF = 16


@pytest.fixture(scope="module")
def face_features(inception_extractor):
    """Features of 2 x 16 synthetic faces (seed 0) and of 16 faces of an untrained faithful G."""
    from chainer_dcgan.datasets import SyntheticFaces
    from chainer_dcgan.training import seeded_models

    faces = SyntheticFaces(2 * N_HALF, seed=0)
    real = inception_extractor(faces)
    fake = metrics.generator_features(seeded_models(0)[0], inception_extractor, N_HALF)
    return real[:N_HALF], real[N_HALF:], fake


def test_fid_real_halves_small_untrained_generator_large(face_features):
    half1, half2, fake = face_features
    assert metrics.fid(half1, half1) == pytest.approx(0.0, abs=1e-3)
    between_halves = metrics.fid(half1, half2)
    untrained = metrics.fid(half1, fake)
    # Measured (n=16): about 125 between halves, about 500 for the untrained generator.
    assert 0 < between_halves < 0.5 * untrained
    assert untrained > 250


def test_kid_and_neighbours_on_faces(face_features):
    half1, half2, fake = face_features
    same, same_se = metrics.kid(half1, half2)
    far, far_se = metrics.kid(half1, fake)
    assert abs(same) < 3 * same_se + 0.01
    assert far > 0.1 and far > 10 * far_se
    real_vs_real = metrics.nearest_neighbour_metrics(half1, half2)
    real_vs_untrained = metrics.nearest_neighbour_metrics(half1, fake)
    assert real_vs_real["precision"] > 0.5 and real_vs_real["recall"] > 0.5
    assert real_vs_untrained["precision"] < 0.2 and real_vs_untrained["recall"] < 0.2


def test_generated_faces_repeat_for_a_seed():
    """FIDEvaluation relies on it: every evaluation sees the same z."""
    from chainer_dcgan.training import seeded_models

    gen = seeded_models(1)[0]
    first = numpy.concatenate(list(metrics.generated_batches(gen, 5, batchsize=2, seed=3)))
    again = numpy.concatenate(list(metrics.generated_batches(gen, 5, batchsize=4, seed=3)))
    other = numpy.concatenate(list(metrics.generated_batches(gen, 5, batchsize=4, seed=4)))
    assert first.shape == (5, 3, 96, 96)
    numpy.testing.assert_allclose(first, again, rtol=1e-6, atol=1e-7)
    assert not numpy.allclose(first, other)


def test_evaluate_returns_every_metric(face_features):
    half1, _, fake = face_features
    result = metrics.evaluate(half1, fake)
    assert set(result) == {"fid", "kid", "kid_stderr", "precision", "recall", "density", "coverage",
                           "n_real", "n_fake"}
    assert result["fid"] == pytest.approx(metrics.fid(half1, fake))
    assert (result["n_real"], result["n_fake"]) == (N_HALF, N_HALF)


# ---------------------------------------------------------------------------------------------
# The dataset-feature cache (a stub extractor: the cache does not depend on the network)


class CountingExtractor:
    """Stands in for FeatureExtractor: 'features' are per-channel means tiled to 2048."""

    batchsize = 4

    def __init__(self):
        self.images = 0

    def __call__(self, images, progress=False, total=None, desc=None):
        arrays = numpy.stack([numpy.asarray(images[i]) for i in range(len(images))])
        self.images += len(arrays)
        means = arrays.mean(axis=(2, 3))
        return numpy.tile(means, (1, 2048 // 3 + 1))[:, :2048].astype(numpy.float32)


@pytest.fixture
def face_folder(tmp_path):
    from chainer_dcgan.datasets import write_dataset

    root = tmp_path / "faces"
    write_dataset(str(root), 8, seed=1)
    return root


def test_dataset_features_are_cached_by_content_and_count(face_folder, tmp_path):
    cache = str(tmp_path / "cache")
    extractor = CountingExtractor()
    first, path = metrics.dataset_features(str(face_folder), extractor, n=6, cache_dir=cache)
    assert first.shape == (6, 2048) and extractor.images == 6
    assert os.path.basename(path).startswith("faces-n6-") and path.endswith(".npz")
    with numpy.load(path) as npz:
        assert npz["mu"].shape == (2048,) and npz["sigma"].shape == (2048, 2048)
        numpy.testing.assert_array_equal(npz["features"], first)

    again, same_path = metrics.dataset_features(str(face_folder), extractor, n=6, cache_dir=cache)
    assert same_path == path and extractor.images == 6  # read from the cache
    numpy.testing.assert_array_equal(again, first)

    _, other = metrics.dataset_features(str(face_folder), extractor, n=5, cache_dir=cache)
    assert other != path and extractor.images == 11  # another sample count: another entry

    # Edit every image: the same file names no longer hit the cache.
    from PIL import Image

    for name in sorted(os.listdir(face_folder / "images" / "000")):
        file = face_folder / "images" / "000" / name
        Image.fromarray(255 - numpy.asarray(Image.open(file))).save(file)
    _, edited = metrics.dataset_features(str(face_folder), extractor, n=6, cache_dir=cache)
    assert edited != path and extractor.images == 17


def test_damaged_cache_entry_is_recomputed(face_folder, tmp_path):
    cache = str(tmp_path / "cache")
    extractor = CountingExtractor()
    _, path = metrics.dataset_features(str(face_folder), extractor, n=4, cache_dir=cache)
    with open(path, "wb") as f:
        f.write(b"truncated")
    features, again = metrics.dataset_features(str(face_folder), extractor, n=4, cache_dir=cache)
    assert again == path and extractor.images == 8 and features.shape == (4, 2048)
    with numpy.load(path) as npz:
        assert npz["features"].shape == (4, 2048)
    _, none = metrics.dataset_features(str(face_folder), extractor, n=4, cache=False)
    assert none is None and extractor.images == 12


def test_in_memory_datasets_are_cached_too(tmp_path):
    from chainer_dcgan.datasets import SyntheticFaces

    extractor = CountingExtractor()
    _, path = metrics.dataset_features(SyntheticFaces(10, seed=2), extractor, n=4, cache_dir=str(tmp_path))
    assert os.path.basename(path).startswith("SyntheticFaces-seed2-n4-")
    metrics.dataset_features(SyntheticFaces(10, seed=2), extractor, n=4, cache_dir=str(tmp_path))
    assert extractor.images == 4
    metrics.dataset_features(SyntheticFaces(10, seed=3), extractor, n=4, cache_dir=str(tmp_path))
    assert extractor.images == 8


def test_held_out_is_disjoint_from_the_evaluated_sample():
    from chainer_dcgan.evaluation.metrics import held_out, select_examples

    data = [numpy.full((3, 2, 2), i, numpy.float32) for i in range(20)]
    rest = held_out(data, 8, seed=3)
    chosen = set(select_examples(20, 8, seed=3).tolist())
    values = {int(rest[i][0, 0, 0]) for i in range(len(rest))}
    assert len(rest) == 12 and not values & chosen and len(values) == 12
    with pytest.raises(ValueError, match="needs 22 examples"):
        held_out(data, 11)


def test_parse_degradation():
    assert metrics.parse_degradation("blur:1") == ("blur", 1.0)
    assert metrics.parse_degradation("noise:0.05") == ("noise", 0.05)
    for bad in ("blur", "blur:", "blur:0", "noise:-1", "noise:inf", "blur:x", "jpeg:90", ":1", "blur:1e9"):
        with pytest.raises(ValueError):
            metrics.parse_degradation(bad)


def _faces(n=4, seed=0):
    from chainer_dcgan.datasets import SyntheticFaces

    return SyntheticFaces(n, seed=seed, size=32)


def _roughness(x):
    return numpy.abs(numpy.diff(x, axis=1)).mean() + numpy.abs(numpy.diff(x, axis=2)).mean()


def test_degraded_blur_softens_edges_and_keeps_flat_colour():
    faces = _faces()
    blurred = metrics.Degraded(faces, "blur", 1.0)
    assert len(blurred) == len(faces) and blurred.name.endswith("-blur1")
    for i in range(len(faces)):
        x, y = faces[i], blurred[i]
        assert y.shape == x.shape and y.dtype == numpy.float32
        assert _roughness(y) < 0.7 * _roughness(x)
        assert abs(float(y.mean() - x.mean())) < 0.02  # a blur moves colour, it does not make or remove it
        assert numpy.abs(y - x).max() > 0.1
    flat = metrics.Degraded([numpy.full((3, 16, 16), 0.25, numpy.float32)], "blur", 2.0)
    numpy.testing.assert_allclose(flat[0], 0.25, atol=1e-6)  # no dark frame at the borders
    assert _roughness(metrics.Degraded(faces, "blur", 2.0)[0]) < _roughness(blurred[0])


def test_degraded_noise_has_its_sigma_and_does_not_depend_on_reading_order():
    grey = [numpy.zeros((3, 64, 64), numpy.float32) for _ in range(3)]
    noisy = metrics.Degraded(grey, "noise", 0.05, seed=3)
    assert 0.045 < float(noisy[0].std()) < 0.055 and abs(float(noisy[0].mean())) < 0.005
    backwards = [noisy[i] for i in (2, 1, 0)][::-1]
    for i in range(3):
        numpy.testing.assert_array_equal(noisy[i], backwards[i])
    assert not numpy.array_equal(noisy[0], noisy[1])  # each example its own noise
    assert not numpy.array_equal(noisy[0], metrics.Degraded(grey, "noise", 0.05, seed=4)[0])
    loud = metrics.Degraded([numpy.full((3, 8, 8), 0.99, numpy.float32)], "noise", 1.0)[0]
    assert loud.max() <= 1 and loud.min() >= -1  # clipped to the data's range
    with pytest.raises(ValueError):
        metrics.Degraded(grey, "jpeg", 90)
    with pytest.raises(ValueError):
        metrics.Degraded(grey, "blur", 0)
