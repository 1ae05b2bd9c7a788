"""chainer_dcgan.functions against Chainer's own functions: forward values and gradients.

Gradient checks run in float64 (``chainer.gradient_check``); value comparisons in float32 as
the models run. With CuPy and a GPU present the ``gpu`` tests compare the GPU path with the CPU.
"""
import zlib

import chainer
import chainer.functions as F
import numpy
import pytest
from chainer import gradient_check

from chainer_dcgan import functions
from chainer_dcgan.functions import stride2_conv

CONV_SHAPES = [  # (N, C_in, H, W, C_out)
    (2, 3, 4, 6, 5),
    (1, 2, 2, 2, 3),
    (3, 4, 8, 6, 2),
    (2, 6, 4, 4, 3),  # more than STACK_MAX_CHANNELS inputs: four separate products
]
DECONV_SHAPES = [  # (N, C_in, h, w, C_out)
    (2, 3, 2, 3, 5),
    (1, 2, 1, 1, 3),
    (3, 4, 4, 3, 2),
    (2, 3, 2, 2, 6),  # more than STACK_MAX_CHANNELS outputs: four separate products
]
ACTIVATIONS = [None, "relu", "elu", "leaky_relu"]


def _rng(*key):
    return numpy.random.RandomState(zlib.crc32(repr(key).encode()))


def _own(fn, *args, **kwargs):
    with chainer.using_config("dcgan_fast", False):
        return fn(*args, **kwargs)


def _grads(fn, arrays, gy):
    vs = [chainer.Variable(a.copy()) for a in arrays]
    y = fn(*vs)
    y.grad = gy
    y.backward()
    return y.array, [v.grad for v in vs]


# -- switch ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(None, True), ("1", True), ("0", False), ("off", False),
                                             ("false", False), ("yes", True)])
def test_env_default(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("CHAINER_DCGAN_FAST", raising=False)
    else:
        monkeypatch.setenv("CHAINER_DCGAN_FAST", value)
    assert functions.fast_default() is expected
    assert functions.enabled() is expected
    with chainer.using_config("dcgan_fast", not expected):
        assert functions.enabled() is (not expected)


def test_switch_selects_node():
    x = numpy.zeros((1, 2, 4, 4), numpy.float32)
    W = numpy.zeros((3, 2, 4, 4), numpy.float32)
    assert isinstance(functions.convolution_2d(x, W, stride=2, pad=1).creator, stride2_conv.Convolution2D)
    y = _own(functions.convolution_2d, x, W, stride=2, pad=1)
    assert not isinstance(y.creator, stride2_conv.Convolution2D)


# -- 4x4 stride 2 pad 1 convolution and deconvolution ----------------------------------------------

@pytest.mark.parametrize("shape", CONV_SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_convolution_matches_chainer(shape, bias):
    N, C, H, W, O = shape
    rng = _rng("conv", shape, bias)
    x = rng.randn(N, C, H, W).astype(numpy.float32)
    w = rng.randn(O, C, 4, 4).astype(numpy.float32)
    b = rng.randn(O).astype(numpy.float32)
    gy = rng.randn(N, O, H // 2, W // 2).astype(numpy.float32)
    arrays = (x, w, b) if bias else (x, w)

    def fn(*v):
        return functions.convolution_2d(*v, stride=2, pad=1)

    y, grads = _grads(fn, arrays, gy)
    y_ref, grads_ref = _own(_grads, lambda *v: F.convolution_2d(*v, stride=2, pad=1), arrays, gy)
    numpy.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for g, g_ref in zip(grads, grads_ref):
        numpy.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_convolution_gradient_check(shape):
    N, C, H, W, O = shape
    rng = _rng("conv-grad", shape)
    x = rng.randn(N, C, H, W)
    w = rng.randn(O, C, 4, 4)
    b = rng.randn(O)
    gy = rng.randn(N, O, H // 2, W // 2)

    def fn(x, w, b):
        y = functions.convolution_2d(x, w, b, stride=2, pad=1)
        assert isinstance(y.creator, stride2_conv.Convolution2D)
        return y

    gradient_check.check_backward(fn, (x, w, b), gy, dtype=numpy.float64, atol=1e-6, rtol=1e-6)
    ggx, ggw, ggb = rng.randn(*x.shape), rng.randn(*w.shape), rng.randn(*b.shape)
    gradient_check.check_double_backward(fn, (x, w, b), gy, (ggx, ggw, ggb), dtype=numpy.float64,
                                         atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("shape", DECONV_SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_deconvolution_matches_chainer(shape, bias):
    N, C, h, w, O = shape
    rng = _rng("deconv", shape, bias)
    x = rng.randn(N, C, h, w).astype(numpy.float32)
    W = rng.randn(C, O, 4, 4).astype(numpy.float32)
    b = rng.randn(O).astype(numpy.float32)
    gy = rng.randn(N, O, 2 * h, 2 * w).astype(numpy.float32)
    arrays = (x, W, b) if bias else (x, W)

    def fn(*v):
        return functions.deconvolution_2d(*v, stride=2, pad=1)

    y, grads = _grads(fn, arrays, gy)
    y_ref, grads_ref = _own(_grads, lambda *v: F.deconvolution_2d(*v, stride=2, pad=1), arrays, gy)
    numpy.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for g, g_ref in zip(grads, grads_ref):
        numpy.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", DECONV_SHAPES)
def test_deconvolution_gradient_check(shape):
    N, C, h, w, O = shape
    rng = _rng("deconv-grad", shape)
    x = rng.randn(N, C, h, w)
    W = rng.randn(C, O, 4, 4)
    b = rng.randn(O)
    gy = rng.randn(N, O, 2 * h, 2 * w)

    def fn(x, W, b):
        y = functions.deconvolution_2d(x, W, b, stride=2, pad=1)
        assert isinstance(y.creator, stride2_conv.Deconvolution2D)
        return y

    gradient_check.check_backward(fn, (x, W, b), gy, dtype=numpy.float64, atol=1e-6, rtol=1e-6)
    ggx, ggW, ggb = rng.randn(*x.shape), rng.randn(*W.shape), rng.randn(*b.shape)
    gradient_check.check_double_backward(fn, (x, W, b), gy, (ggx, ggW, ggb), dtype=numpy.float64,
                                         atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("case", [
    dict(x=(1, 2, 5, 6), W=(3, 2, 4, 4), stride=2, pad=1),   # odd height
    dict(x=(1, 2, 6, 6), W=(3, 2, 3, 3), stride=2, pad=1),   # 3x3 kernel
    dict(x=(1, 2, 6, 6), W=(3, 2, 4, 4), stride=1, pad=1),   # stride 1
    dict(x=(1, 2, 6, 6), W=(3, 2, 4, 4), stride=2, pad=0),   # no padding
])
def test_convolution_falls_back(case):
    rng = _rng("fallback", str(case))
    x = rng.randn(*case["x"]).astype(numpy.float32)
    W = rng.randn(*case["W"]).astype(numpy.float32)
    y = functions.convolution_2d(x, W, stride=case["stride"], pad=case["pad"])
    assert not isinstance(y.creator, stride2_conv.Convolution2D)
    ref = F.convolution_2d(x, W, stride=case["stride"], pad=case["pad"])
    numpy.testing.assert_array_equal(y.array, ref.array)


def test_deconvolution_falls_back_for_outsize_and_float16():
    rng = _rng("fallback-deconv")
    x = rng.randn(1, 2, 3, 3).astype(numpy.float32)
    W = rng.randn(2, 3, 4, 4).astype(numpy.float32)
    y = functions.deconvolution_2d(x, W, stride=2, pad=1, outsize=(7, 7))
    assert y.shape == (1, 3, 7, 7) and not isinstance(y.creator, stride2_conv.Deconvolution2D)
    y16 = functions.deconvolution_2d(x.astype(numpy.float16), W.astype(numpy.float16), stride=2, pad=1)
    assert not isinstance(y16.creator, stride2_conv.Deconvolution2D)


def test_weight_reorder_round_trip():
    W = numpy.arange(2 * 3 * 16, dtype=numpy.float32).reshape(2, 3, 4, 4)
    Wr = stride2_conv.reorder_weight(W)
    assert Wr.shape == (4, 2, 12)
    # tap (ay, ax) = (1, 0), row o = 1, column (c, py, px) = (2, 1, 0): W[1, 2, 2*1+1, 2*0+0]
    assert Wr[2, 1, 2 * 4 + 1 * 2 + 0] == W[1, 2, 3, 0]
    numpy.testing.assert_array_equal(stride2_conv.restore_weight(Wr), W)


# -- BatchNormalization + activation ------------------------------------------------------------

def _bn_inputs(rng, shape, activation, dtype):
    """x, gamma, beta with every normalised-and-shifted value at least 0.05 from the activation's kink."""
    C = shape[1]
    axes = (0,) + tuple(range(2, len(shape)))
    for _ in range(100):
        x = rng.randn(*shape) * 2 + 0.5
        gamma = rng.uniform(0.5, 1.5, C)
        beta = rng.uniform(-0.5, 0.5, C)
        z = (x - x.mean(axis=axes, keepdims=True)) / numpy.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
        z = z * gamma.reshape((1, C) + (1,) * (len(shape) - 2)) + beta.reshape((1, C) + (1,) * (len(shape) - 2))
        if activation in ("relu", "leaky_relu") and numpy.abs(z).min() < 0.05:
            continue
        return x.astype(dtype), gamma.astype(dtype), beta.astype(dtype)
    raise AssertionError("could not draw inputs away from the kink")


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 3, 2), (5, 3, 2, 2)])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_batch_normalization_activation_matches_chainer(shape, activation):
    rng = _rng("bn", shape, activation)
    x, gamma, beta = _bn_inputs(rng, shape, activation, numpy.float32)
    gy = rng.randn(*shape).astype(numpy.float32)
    C = shape[1]
    stats = [rng.rand(C).astype(numpy.float32) for _ in range(2)]
    stats_ref = [s.copy() for s in stats]

    y, grads = _grads(lambda *v: functions.batch_normalization_activation(
        *v, eps=1e-5, running_mean=stats[0], running_var=stats[1], decay=0.9, activation_name=activation),
        (x, gamma, beta), gy)
    y_ref, grads_ref = _own(_grads, lambda *v: functions.activation(F.batch_normalization(
        *v, eps=1e-5, running_mean=stats_ref[0], running_var=stats_ref[1], decay=0.9), activation),
        (x, gamma, beta), gy)
    numpy.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for g, g_ref in zip(grads, grads_ref):
        numpy.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-5)
    for s, s_ref in zip(stats, stats_ref):
        numpy.testing.assert_allclose(s, s_ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 3, 2)])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_batch_normalization_activation_gradient_check(shape, activation):
    rng = _rng("bn-grad", shape, activation)
    x, gamma, beta = _bn_inputs(rng, shape, activation, numpy.float64)
    gy = rng.randn(*shape)

    def fn(x, gamma, beta):
        y = functions.batch_normalization_activation(x, gamma, beta, eps=1e-5, activation_name=activation)
        assert isinstance(y.creator, functions.BatchNormalizationActivation)
        return y

    gradient_check.check_backward(fn, (x, gamma, beta), gy, dtype=numpy.float64, eps=1e-4, atol=1e-5,
                                  rtol=1e-4)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 3, 2)])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_fixed_batch_normalization_activation(shape, activation):
    rng = _rng("fixed-bn", shape, activation)
    C = shape[1]
    x, gamma, beta = _bn_inputs(rng, shape, activation, numpy.float64)
    mean, var = rng.randn(C) * 0.1, rng.uniform(0.5, 2, C)
    gy = rng.randn(*shape)
    args = [a.astype(numpy.float32) for a in (x, gamma, beta, mean, var)]
    y = functions.fixed_batch_normalization_activation(*args, eps=1e-5, activation_name=activation)
    assert isinstance(y.creator, functions.AffineActivation)
    ref = _own(functions.fixed_batch_normalization_activation, *args, eps=1e-5, activation_name=activation)
    numpy.testing.assert_allclose(y.array, ref.array, rtol=1e-5, atol=1e-5)

    def fn(x, gamma, beta):
        return functions.fixed_batch_normalization_activation(x, gamma, beta, mean, var, eps=1e-5,
                                                              activation_name=activation)

    if activation in ("relu", "leaky_relu"):  # move x so that x * scale + shift is >= 0.1 from the kink
        bshape = (1, C) + (1,) * (len(shape) - 2)
        scale = (gamma / numpy.sqrt(var + 1e-5)).reshape(bshape)
        pre = x * scale + (beta - mean * gamma / numpy.sqrt(var + 1e-5)).reshape(bshape)
        x = x + numpy.where(numpy.abs(pre) < 0.1, numpy.where(pre < 0, -0.2, 0.2) / scale, 0)
    gradient_check.check_backward(fn, (x, gamma, beta), gy, dtype=numpy.float64, eps=1e-4, atol=1e-5, rtol=1e-4)


def test_batch_normalization_activation_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        functions.batch_normalization_activation(numpy.ones((2, 3), numpy.float32), numpy.ones(3, numpy.float32),
                                                 numpy.zeros(3, numpy.float32), activation_name="tanh")


# -- ELU -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4, 5)])
def test_elu(shape):
    rng = _rng("elu", shape)
    x = rng.randn(*shape)
    gy, ggx = rng.randn(*shape), rng.randn(*shape)
    y, (gx,) = _grads(functions.elu, (x.astype(numpy.float32),), gy.astype(numpy.float32))
    y_ref, (gx_ref,) = _grads(F.elu, (x.astype(numpy.float32),), gy.astype(numpy.float32))
    numpy.testing.assert_allclose(y, y_ref, rtol=1e-6, atol=2e-7)
    numpy.testing.assert_allclose(gx, gx_ref, rtol=1e-6, atol=2e-7)
    gradient_check.check_backward(functions.elu, x, gy, dtype=numpy.float64, atol=1e-6, rtol=1e-5)
    gradient_check.check_double_backward(functions.elu, x, gy, ggx, dtype=numpy.float64, atol=1e-6, rtol=1e-5)


# -- GPU (skipped without CuPy and a device) -------------------------------------------------------

def _cupy():
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        return cupy
    except Exception:  # noqa: BLE001 - any import or driver failure means no GPU here
        return None


@pytest.mark.skipif(_cupy() is None, reason="needs CuPy and a GPU")
@pytest.mark.parametrize("name", ["conv", "deconv", "bn", "elu"])
def test_gpu_matches_cpu(name):
    cupy = _cupy()
    rng = _rng("gpu", name)
    if name == "conv":
        arrays = (rng.randn(4, 8, 12, 10), rng.randn(6, 8, 4, 4), rng.randn(6))
        gy = rng.randn(4, 6, 6, 5)
        fn = lambda *v: functions.convolution_2d(*v, stride=2, pad=1)  # noqa: E731
    elif name == "deconv":
        arrays = (rng.randn(4, 8, 6, 5), rng.randn(8, 6, 4, 4), rng.randn(6))
        gy = rng.randn(4, 6, 12, 10)
        fn = lambda *v: functions.deconvolution_2d(*v, stride=2, pad=1)  # noqa: E731
    elif name == "bn":
        arrays = (rng.randn(4, 6, 5, 5), rng.uniform(0.5, 1.5, 6), rng.randn(6))
        gy = rng.randn(4, 6, 5, 5)
        fn = lambda *v: functions.batch_normalization_activation(*v, activation_name="elu")  # noqa: E731
    else:
        arrays = (rng.randn(4, 6, 5, 5),)
        gy = rng.randn(4, 6, 5, 5)
        fn = functions.elu
    arrays = tuple(a.astype(numpy.float32) for a in arrays)
    gy = gy.astype(numpy.float32)
    y_cpu, g_cpu = _grads(fn, arrays, gy)
    y_gpu, g_gpu = _grads(fn, tuple(cupy.asarray(a) for a in arrays), cupy.asarray(gy))
    numpy.testing.assert_allclose(cupy.asnumpy(y_gpu), y_cpu, rtol=1e-4, atol=1e-4)
    for a, b in zip(g_gpu, g_cpu):
        numpy.testing.assert_allclose(cupy.asnumpy(a), b, rtol=1e-4, atol=1e-4)
    if name in ("conv", "deconv"):
        gradient_check.check_backward(fn, tuple(cupy.asarray(a.astype(numpy.float64)) for a in arrays),
                                      cupy.asarray(gy.astype(numpy.float64)), dtype=numpy.float64,
                                      atol=1e-6, rtol=1e-6)
