import chainer
import h5py
import numpy
import pytest

from chainer_dcgan import Discriminator, Generator, sample_z
from chainer_dcgan.models import hparams
from chainer_dcgan.models.serialization import ModelFileError, load_generator, load_model, read_meta, save_model


def count(link):
    return sum(p.size for p in link.params())


def test_generator_shapes_and_parameter_count():
    gen = Generator()
    assert count(gen) == 4655427  # the original's G without its unused bn0
    z = sample_z(3, random_state=0)
    assert z.dtype == numpy.float32 and z.shape == (3, 100)
    assert z.min() >= -1 and z.max() <= 1
    x = gen(z)
    assert x.shape == (3, 3, 96, 96) and x.dtype == numpy.float32


def test_discriminator_shapes_and_names():
    dis = Discriminator()
    y = dis(numpy.zeros((2, 3, 96, 96), numpy.float32))
    assert y.shape == (2, 2)
    names = {name for name, _ in dis.namedlinks(skipself=True)}
    assert names == {"/c0", "/c1", "/c2", "/c3", "/l4l", "/bn1", "/bn2", "/bn3"}
    assert dis.c0.W.shape == (64, 3, 4, 4) and dis.l4l.W.shape == (2, 6 * 6 * 512)


def test_generator_link_names_and_faithful_batchnorm():
    gen = Generator()
    names = {name for name, _ in gen.namedlinks(skipself=True)}
    assert names == {"/l0z", "/dc1", "/dc2", "/dc3", "/dc4", "/bn0l", "/bn1", "/bn2", "/bn3"}
    assert gen.bn0l.avg_mean.shape == (6 * 6 * 512,)
    assert gen.bn1.eps == hparams.BN_EPS == 1e-5 and gen.bn1.decay == 0.9


def test_initial_weights_are_normal_002():
    numpy.random.seed(0)
    gen = Generator()
    w = gen.dc1.W.array
    assert abs(w.std() - 0.02) < 0.001 and abs(w.mean()) < 0.001


def test_no_tanh_by_default_and_tanh_option():
    numpy.random.seed(1)
    gen = Generator()
    z = sample_z(4, random_state=1)
    with chainer.using_config("train", True):
        x = gen(z).array
    numpy.random.seed(1)
    tanh = Generator(output_activation="tanh")
    assert numpy.allclose(tanh(z).array, numpy.tanh(x), atol=1e-5)
    with pytest.raises(ValueError, match="output_activation"):
        Generator(output_activation="sigmoid")


def _reference_deconv(x, w, b):
    """Independent NumPy deconvolution, 4x4 kernel, stride 2, pad 1."""
    n, _, h, wd = x.shape
    full = numpy.zeros((n, w.shape[1], 2 * h + 2, 2 * wd + 2))
    for ki in range(4):
        for kj in range(4):
            full[:, :, ki:ki + 2 * h:2, kj:kj + 2 * wd:2] += numpy.einsum("ncij,co->noij", x, w[:, :, ki, kj])
    return full[:, :, 1:-1, 1:-1] + b[None, :, None, None]


def _reference_generator(f, z):
    """The 2015 original's forward pass in test mode, in NumPy, from an HDF5 file's arrays."""
    def bn(h, name, axis):
        shape = [1] * h.ndim
        shape[axis] = -1
        g = f[name]
        r = lambda k: numpy.asarray(g[k]).reshape(shape)  # noqa: E731
        return (h - r("avg_mean")) / numpy.sqrt(r("avg_var") + 1e-5) * r("gamma") + r("beta")

    relu = lambda h: numpy.maximum(h, 0)  # noqa: E731
    h = z @ numpy.asarray(f["l0z/W"]).T + numpy.asarray(f["l0z/b"])
    h = relu(bn(h, "bn0l", 1)).reshape(len(z), 512, 6, 6)
    for i in (1, 2, 3):
        h = relu(bn(_reference_deconv(h, f["dc%d/W" % i][()], f["dc%d/b" % i][()]), "bn%d" % i, 1))
    return _reference_deconv(h, f["dc4/W"][()], f["dc4/b"][()])


def _write_original_hdf5(path, rs):
    """An HDF5 file laid out as the 2015 original's save_hdf5 of its Generator (with unused bn0)."""
    with h5py.File(path, "w") as f:
        f["l0z/W"] = rs.normal(0, 0.02, (18432, 100)).astype("f")
        f["l0z/b"] = rs.normal(0, 0.1, 18432).astype("f")
        for name, cin, cout in (("dc1", 512, 256), ("dc2", 256, 128), ("dc3", 128, 64), ("dc4", 64, 3)):
            f[name + "/W"] = rs.normal(0, 0.02, (cin, cout, 4, 4)).astype("f")
            f[name + "/b"] = rs.normal(0, 0.1, cout).astype("f")
        for name, size in (("bn0l", 18432), ("bn0", 512), ("bn1", 256), ("bn2", 128), ("bn3", 64)):
            f[name + "/gamma"] = rs.uniform(0.5, 1.5, size).astype("f")
            f[name + "/beta"] = rs.normal(0, 0.1, size).astype("f")
            f[name + "/avg_mean"] = rs.normal(0, 0.05, size).astype("f")
            f[name + "/avg_var"] = rs.uniform(0.001, 0.01, size).astype("f")
            f[name + "/N"] = numpy.asarray(1000)


def test_original_hdf5_loads_and_matches_reference(tmp_path):
    rs = numpy.random.RandomState(3)
    path = str(tmp_path / "dcgan_model_gen.h5")
    _write_original_hdf5(path, rs)
    gen = Generator()
    chainer.serializers.load_hdf5(path, gen)
    z = sample_z(2, random_state=4)
    with chainer.using_config("train", False):
        x = gen(z).array
    with h5py.File(path, "r") as f:
        expected = _reference_generator(f, z.astype(numpy.float64))
    assert numpy.abs(x - expected).max() < 1e-3 * max(1.0, numpy.abs(expected).max())
    assert numpy.abs(x).mean() > 0.01  # not a degenerate comparison
    # load_generator picks HDF5 by content too, and the same numbers come out
    with chainer.using_config("train", False):
        assert numpy.array_equal(load_generator(path)(z).array, x)


def test_npz_and_hdf5_round_trip(tmp_path):
    numpy.random.seed(5)
    gen = Generator()
    gen.bn1.avg_mean[:] = 0.3
    for name in ("g.npz", "g.h5"):
        save_model(str(tmp_path / name), gen)
        loaded = load_generator(str(tmp_path / name))
        assert numpy.array_equal(loaded.dc2.W.array, gen.dc2.W.array)
        assert numpy.array_equal(loaded.bn1.avg_mean, gen.bn1.avg_mean)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ModelFileError, match="missing.npz"):
        load_generator(str(tmp_path / "missing.npz"))
    save_model(str(tmp_path / "d.npz"), Discriminator())
    with pytest.raises(ModelFileError, match="d.npz"):
        load_model(str(tmp_path / "d.npz"), Generator())


def test_npz_records_class_and_config_without_pickle(tmp_path):
    numpy.random.seed(6)
    gen = Generator(output_activation="tanh")
    path = str(tmp_path / "g.npz")
    save_model(path, gen)
    with numpy.load(path) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
        assert npz["_meta"].dtype == numpy.uint8
    assert read_meta(path) == {"format": 1, "class": "Generator",
                               "config": {"z_dim": 100, "output_activation": "tanh", "size": 96}}
    loaded = load_generator(path)  # rebuilt from the record: tanh without being asked
    assert loaded.output_activation == "tanh"
    z = sample_z(2, random_state=0)
    with chainer.using_config("train", False):
        assert numpy.array_equal(loaded(z).array, gen(z).array)
    with pytest.raises(ModelFileError, match="output_activation"):
        load_generator(path, output_activation="none")


def test_files_without_a_record_load_as_the_faithful_generator(tmp_path):
    numpy.random.seed(7)
    gen = Generator()
    path = str(tmp_path / "plain.npz")
    chainer.serializers.save_npz(path, gen)  # what chainer's snapshot_object and older runs wrote
    assert read_meta(path) is None
    assert numpy.array_equal(load_generator(path).l0z.W.array, gen.l0z.W.array)


def test_a_discriminator_file_is_not_a_generator(tmp_path):
    path = str(tmp_path / "d.npz")
    save_model(path, Discriminator())
    with pytest.raises(ModelFileError, match="not a generator"):
        load_generator(path)
    bad = str(tmp_path / "bad.npz")
    numpy.savez(bad, _meta=numpy.frombuffer(b'{"class": "Nope", "config": {}}', dtype=numpy.uint8))
    with pytest.raises(ModelFileError, match="unknown model class 'Nope'"):
        load_generator(bad)
    numpy.savez(bad, _meta=numpy.frombuffer(b"\xff{", dtype=numpy.uint8))
    with pytest.raises(ModelFileError, match="bad.npz"):
        load_generator(bad)


# Parameter counts worked out by hand from the channel schedule (see models.faithful.architecture):
# G: Linear z->4x4xC0 + BN + deconvs (16 Cin Cout + Cout) + BNs (2 C); D: convs + Linear + BNs.
def _g_count(base, c, z_dim=100):
    n = z_dim * base * base * c[0] + base * base * c[0] + 2 * base * base * c[0]
    n += sum(16 * a * b + b for a, b in zip(c, c[1:]))
    return n + sum(2 * ch for ch in c[1:-1])


def _d_count(base, c, bn=True):
    n = sum(16 * a * b + b for a, b in zip(c, c[1:])) + base * base * c[-1] * 2 + 2
    return n + (sum(2 * ch for ch in c[2:]) if bn else 0)


@pytest.mark.parametrize("size, base, gen_channels", [
    (64, 4, (512, 256, 128, 64, 3)), (96, 6, (512, 256, 128, 64, 3)),
    (128, 4, (512, 512, 256, 128, 64, 3)), (256, 4, (512, 512, 512, 256, 128, 64, 3))])
def test_sizes_shapes_names_and_parameter_counts(size, base, gen_channels):
    numpy.random.seed(0)
    gen, dis = Generator(size=size), Discriminator(size=size)
    blocks = len(gen_channels) - 1
    assert count(gen) == _g_count(base, gen_channels)
    assert count(dis) == _d_count(base, (3,) + gen_channels[-2::-1])
    if size == 96:
        assert count(gen) == 4655427
    assert gen.config["size"] == dis.config["size"] == size
    names = {name for name, _ in gen.namedlinks(skipself=True)}
    assert names == ({"/l0z", "/bn0l"} | {"/dc{}".format(i) for i in range(1, blocks + 1)}
                     | {"/bn{}".format(i) for i in range(1, blocks)})
    names = {name for name, _ in dis.namedlinks(skipself=True)}
    assert names == ({"/c{}".format(i) for i in range(blocks)} | {"/l{}l".format(blocks)}
                     | {"/bn{}".format(i) for i in range(1, blocks)})
    x = gen(sample_z(2, random_state=0))
    assert x.shape == (2, 3, size, size)
    assert dis(x).shape == (2, 2)


def test_unknown_size_is_refused():
    with pytest.raises(ValueError, match="size must be one of 64, 96, 128, 256"):
        Generator(size=100)
    with pytest.raises(ValueError, match="size"):
        Discriminator(size=32)


def _as_float64(*links):
    for link in links:
        for param in link.params():
            param.array = param.array.astype(numpy.float64)
        for sub in link.links():
            for name in ("avg_mean", "avg_var"):
                if hasattr(sub, name):
                    setattr(sub, name, getattr(sub, name).astype(numpy.float64))


@pytest.mark.parametrize("size", [128, 256])
def test_fast_paths_match_chainer_at_every_layer(size):
    """Forward and gradients of G and D with the fast (de)convolution/BatchNorm paths against Chainer's own.

    Both float32 paths are measured against Chainer's own in float64: at 256 px with batch 2 the
    gradients that reach G's first layers are ill-conditioned (float32 Chainer itself is 0.3-0.7 %
    off there, by how much depends on the CPU's BLAS kernels), so the fast path must be as close as
    Chainer's own float32 path is, or within 1e-4 of the scale.
    """
    results = []
    for fast, dtype in ((True, numpy.float32), (False, numpy.float32), (False, numpy.float64)):
        numpy.random.seed(1)
        gen, dis = Generator(size=size), Discriminator(size=size)
        if dtype == numpy.float64:
            _as_float64(gen, dis)
        with chainer.using_config("dcgan_fast", fast):
            x = gen(sample_z(2, random_state=2).astype(dtype))
            loss = chainer.functions.sum(dis(x) ** 2)
            gen.cleargrads()
            dis.cleargrads()
            loss.backward()
        results.append([a.astype(numpy.float64) for a in (x.array, gen.dc1.W.grad, gen.l0z.W.grad, dis.c0.W.grad,
                                                          getattr(dis, dis.linear_name).W.grad)])
    for fast_value, plain_value, reference in zip(*results):
        scale = numpy.abs(reference).max()
        plain_error = numpy.abs(plain_value - reference).max()
        assert scale > 0 and numpy.abs(fast_value - reference).max() <= max(1e-4 * scale, 1.5 * plain_error)


def test_a_96_px_model_loaded_as_128_px_fails_clearly(tmp_path):
    numpy.random.seed(8)
    path = str(tmp_path / "g96.npz")
    save_model(path, Generator())
    with pytest.raises(ModelFileError, match=r"size=128 \(file: 96\)"):
        load_generator(path, size=128)
    with pytest.raises(ModelFileError, match="96 px.*128 px"):
        load_model(path, Generator(size=128))
    big = str(tmp_path / "g128.npz")
    save_model(big, Generator(size=128))
    assert load_generator(big).size == 128  # the file says its size
    with pytest.raises(ModelFileError, match="128 px.*96 px"):
        load_model(big, Generator())


def test_spectral_norm_bounds_the_effective_weights():
    """After a few training passes (power iterations), each weight divided by Chainer's estimate has
    largest singular value about 1, while the raw weights' is far from it."""
    numpy.random.seed(9)
    dis = Discriminator(spectral_norm=True)
    assert dis.config["spectral_norm"] is True
    assert not any(name.startswith("/bn") for name, _ in dis.namedlinks(skipself=True))
    names = ["c{}".format(i) for i in range(dis.blocks)] + [dis.linear_name]
    for name in names:
        getattr(dis, name).W.array *= 10.0  # raw largest singular values now well above 1
    x = numpy.random.RandomState(0).uniform(-1, 1, (1, 3, 96, 96)).astype(numpy.float32)
    with chainer.using_config("train", True), chainer.no_backprop_mode():
        for _ in range(3):
            dis(x)  # the hooks run in forward passes
        for _ in range(200):  # more power iterations, each what a training pass does, without the convolutions
            for name in names:
                link = getattr(dis, name)
                link.local_link_hooks["SpectralNormalization"].normalize_weight(link)
    for name in names:
        link = getattr(dis, name)
        hook = link.local_link_hooks["SpectralNormalization"]
        with chainer.using_config("train", False):  # no power-iteration step: read the estimate
            effective = hook.normalize_weight(link).array
        raw_sigma = numpy.linalg.svd(link.W.array.reshape(len(link.W.array), -1), compute_uv=False)[0]
        sigma = numpy.linalg.svd(effective.reshape(len(effective), -1), compute_uv=False)[0]
        assert abs(sigma - 1.0) < 0.05, (name, sigma)
        assert raw_sigma > 2.0, (name, raw_sigma)


def test_generate_is_test_mode_without_a_graph_and_differs_from_calling_the_link():
    numpy.random.seed(0)
    gen = Generator(size=64)
    z = gen.make_hidden(3, random_state=1)
    x = gen.generate(z)
    assert isinstance(x, numpy.ndarray) and x.dtype == numpy.float32 and x.shape == (3, 3, 64, 64)
    with chainer.using_config("train", False):
        numpy.testing.assert_array_equal(x, gen(z).array)
    # One z at a time: test mode gives each z its face; training mode (the link's default) one blur for all.
    one_by_one = gen.generate(z, batch_size=1)
    numpy.testing.assert_allclose(one_by_one, x, atol=1e-5)
    assert numpy.abs(one_by_one[0] - one_by_one[1]).max() > 1e-3
    assert numpy.abs(gen(z[:1]).array - gen(z[1:2]).array).max() == 0.0
    with pytest.raises(ValueError, match="2-d array of latent vectors"):
        gen.generate(z[0])


def test_generate_of_a_conditional_generator_takes_one_tag_row_for_every_z():
    from chainer_dcgan.models import ConditionalGenerator

    numpy.random.seed(0)
    gen = ConditionalGenerator(["a", "b"], size=64)
    z = gen.make_hidden(2, random_state=1)
    y = numpy.array([1, 0], numpy.float32)
    numpy.testing.assert_array_equal(gen.generate(z, y), gen.generate(z, numpy.tile(y, (2, 1))))
    with pytest.raises(ValueError, match="y: 3 rows of tags for 2 latent vectors"):
        gen.generate(z, numpy.ones((3, 2), numpy.float32))
