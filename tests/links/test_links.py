"""chainer_dcgan.links and the models built on them: same parameters as Chainer's links, same results
with the fast path on and off (values, gradients, running statistics), files interchangeable."""
import io

import chainer_dcgan  # noqa: F401  (shims chainer first)
import chainer
import chainer.functions as F
import chainer.links as L
import numpy
import pytest

from chainer_dcgan import functions, links
from chainer_dcgan.models import Discriminator, Generator


def _pair(cls, seed=0, **kwargs):
    numpy.random.seed(seed)
    a = cls(**kwargs)
    b = cls(**kwargs)
    b.copyparams(a)
    return a, b


def _run(model, x, fast, train=True):
    model.cleargrads()
    with chainer.using_config("dcgan_fast", fast), chainer.using_config("train", train):
        y = model(x)
        if train:
            F.sum(y * y).backward()
    return y.array


def _assert_same_links(fast_model, own_model, rtol=1e-4):
    own = dict(own_model.namedparams())
    link_scale = {}
    for name, q in own.items():
        link = name.rsplit("/", 1)[0]
        link_scale[link] = max(link_scale.get(link, 0.0), float(numpy.abs(q.grad).max()))
    for name, p in fast_model.namedparams():
        q = own[name]
        # biases before a BatchNormalization have a true gradient of 0 (rounding noise in both):
        # each gradient is compared on the scale of its link's largest gradient
        scale = max(link_scale[name.rsplit("/", 1)[0]], 1e-6)
        assert float(numpy.abs(p.grad - q.grad).max()) <= rtol * scale, name
    own_links = dict(own_model.namedlinks())
    for name, link in fast_model.namedlinks():
        for attr in sorted(getattr(link, "_persistent", ())):
            p, q = getattr(link, attr), getattr(own_links[name], attr)
            if isinstance(p, numpy.ndarray):
                numpy.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7, err_msg=name + "/" + attr)


@pytest.mark.parametrize("output_activation", ["none", "tanh"])
def test_generator_fast_equals_own(output_activation):
    gen_fast, gen_own = _pair(Generator, output_activation=output_activation)
    z = gen_fast.make_hidden(3, random_state=1)
    y_fast, y_own = _run(gen_fast, z, True), _run(gen_own, z, False)
    numpy.testing.assert_allclose(y_fast, y_own, rtol=1e-4, atol=1e-5)
    _assert_same_links(gen_fast, gen_own)
    # test mode reads the running statistics just updated
    numpy.testing.assert_allclose(_run(gen_fast, z, True, train=False), _run(gen_own, z, False, train=False),
                                  rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["elu", "leaky_relu"])
def test_discriminator_fast_equals_own(activation):
    dis_fast, dis_own = _pair(Discriminator, activation=activation)
    x = numpy.random.RandomState(2).uniform(-1, 1, (3, 3, 96, 96)).astype(numpy.float32)
    y_fast, y_own = _run(dis_fast, x, True), _run(dis_own, x, False)
    numpy.testing.assert_allclose(y_fast, y_own, rtol=1e-4, atol=1e-5)
    _assert_same_links(dis_fast, dis_own)


def test_fast_nodes_are_used():
    gen, dis = Generator(), Discriminator()
    z = gen.make_hidden(2, random_state=0)
    names = set()
    with chainer.using_config("dcgan_fast", True):
        y = dis(gen(z))
    stack = [y.creator_node]
    while stack:
        node = stack.pop()
        names.add(type(node).__name__)
        stack.extend(v.creator_node for v in node.inputs if v.creator_node is not None)
    assert {"Convolution2D", "Deconvolution2D", "BatchNormalizationActivation", "ELU"} <= names
    assert "Convolution2DFunction" not in names and "Deconvolution2DFunction" not in names


def test_parameters_match_chainer_links():
    """Same names, shapes and persistents as a Generator built from plain chainer.links."""
    gen = Generator()
    assert isinstance(gen.dc1, L.Deconvolution2D) and isinstance(gen.bn1, L.BatchNormalization)
    plain = {"/l0z/W": (18432, 100), "/dc1/W": (512, 256, 4, 4), "/dc4/W": (64, 3, 4, 4), "/bn0l/gamma": (18432,)}
    shapes = {name: p.shape for name, p in gen.namedparams()}
    for name, shape in plain.items():
        assert shapes[name] == shape
    assert set(gen.bn1._persistent) >= {"avg_mean", "avg_var", "N"}
    assert gen.bn0l.avg_mean.shape == (18432,)


def test_npz_loads_into_plain_chainer_links():
    dis = Discriminator()
    buf = io.BytesIO()
    chainer.serializers.save_npz(buf, dis)
    buf.seek(0)

    class Plain(chainer.Chain):
        def __init__(self):
            super().__init__()
            with self.init_scope():
                for i, (a, b) in enumerate([(3, 64), (64, 128), (128, 256), (256, 512)]):
                    setattr(self, "c%d" % i, L.Convolution2D(a, b, 4, 2, 1))
                self.l4l = L.Linear(18432, 2)
                for i, c in enumerate((128, 256, 512), 1):
                    setattr(self, "bn%d" % i, L.BatchNormalization(c))

    plain = Plain()
    chainer.serializers.load_npz(buf, plain)
    numpy.testing.assert_array_equal(plain.c3.W.array, dis.c3.W.array)


def test_batch_normalization_link_activation_argument():
    numpy.random.seed(3)
    bn_fast = links.BatchNormalization(4, decay=0.9, eps=1e-5)
    bn_own = L.BatchNormalization(4, decay=0.9, eps=1e-5)
    x = numpy.random.randn(5, 4, 3, 3).astype(numpy.float32)
    y = bn_fast(x, activation="elu")
    ref = F.elu(bn_own(x))
    numpy.testing.assert_allclose(y.array, ref.array, rtol=1e-5, atol=1e-6)
    numpy.testing.assert_allclose(bn_fast.avg_var, bn_own.avg_var, rtol=1e-6)
    with chainer.using_config("dcgan_fast", False):
        assert not isinstance(bn_fast(x, activation="relu").creator, functions.BatchNormalizationActivation)
    with pytest.raises(ValueError, match="activation"):
        bn_fast(x, activation="sigmoid")


def _cupy():
    try:
        import cupy
        return cupy if cupy.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:  # noqa: BLE001 - no CuPy or no driver: no GPU here
        return None


@pytest.mark.skipif(_cupy() is None, reason="needs CuPy and a GPU")
def test_gpu_models_fast_equal_cpu_own():
    """The fast path on the GPU against Chainer's own functions on the CPU: values and gradients."""
    device = chainer.get_device("@cupy:0")
    for cls, make_input in ((Generator, lambda m: m.make_hidden(4, random_state=5)),
                            (Discriminator, lambda m: numpy.random.RandomState(6).uniform(
                                -1, 1, (4, 3, 96, 96)).astype(numpy.float32))):
        gpu_model, cpu_model = _pair(cls)
        x = make_input(cpu_model)
        y_cpu = _run(cpu_model, x, False)
        gpu_model.to_device(device)
        y_gpu = _run(gpu_model, device.send(x), True)
        numpy.testing.assert_allclose(chainer.backend.CpuDevice().send(y_gpu), y_cpu, rtol=1e-3, atol=1e-4)
        gpu_model.to_device(chainer.get_device("@numpy"))
        _assert_same_links(gpu_model, cpu_model, rtol=1e-3)
