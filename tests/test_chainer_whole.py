"""The parts of chainer 7.8.1 that our startup hook mends beyond what a DCGAN uses (issue 28): each
works on numpy 1.26 and 2.x, and none warns (the whole module runs under
``error::DeprecationWarning``). ``bench/chainer_suite.py`` runs Chainer's own tests for the same parts."""
import io
import sys
import warnings

import chainer
import chainer.functions as F
import chainer.links as L
import h5py
import numpy
import pytest

from _chainer_dcgan_shims import patches

pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")


# F.resize_images: numpy.float is gone (numpy 1.24)

def test_resize_images_bilinear_with_corners_aligned_interpolates_linearly():
    x = numpy.array([[[[0, 3], [6, 9]]]], numpy.float32)  # 1x1x2x2, linear in both axes
    y = F.resize_images(x, (4, 4), mode="bilinear", align_corners=True).array
    rows, cols = numpy.meshgrid(numpy.linspace(0, 1, 4), numpy.linspace(0, 1, 4), indexing="ij")
    numpy.testing.assert_allclose(y[0, 0], 6 * rows + 3 * cols, rtol=1e-6, atol=1e-6)


def test_resize_images_nearest_repeats_pixels_and_backward_sums_them():
    x = chainer.Variable(numpy.arange(6, dtype=numpy.float32).reshape(1, 1, 2, 3))
    y = F.resize_images(x, (4, 6), mode="nearest")
    numpy.testing.assert_array_equal(y.array[0, 0], x.array[0, 0].repeat(2, axis=0).repeat(2, axis=1))
    F.sum(y).backward()
    numpy.testing.assert_array_equal(x.grad, numpy.full((1, 1, 2, 3), 4, numpy.float32))


def test_resize_images_default_mode_keeps_float32_and_the_module_keeps_numpy():
    from chainer.functions.array import resize_images

    y = F.resize_images(numpy.ones((2, 3, 5, 7), numpy.float32), (9, 4))
    assert y.dtype == numpy.float32 and y.shape == (2, 3, 9, 4)
    numpy.testing.assert_allclose(y.array, 1, rtol=1e-6)
    assert resize_images.numpy is numpy  # only the one function sees the old names


# distributions.Categorical.log_prob: numpy.meshgrid returns a tuple (numpy 2)

def _probabilities(seed, shape):
    p = numpy.random.RandomState(seed).uniform(0.1, 1, shape).astype(numpy.float32)
    return p / p.sum(axis=-1, keepdims=True)


def test_categorical_log_prob_picks_each_batch_elements_own_category():
    p = _probabilities(0, (2, 3, 4))
    x = numpy.array([[0, 3, 1], [2, 2, 0]], numpy.int32)
    logp = chainer.distributions.Categorical(p).log_prob(x).array
    expected = numpy.log([[p[i, j, x[i, j]] for j in range(3)] for i in range(2)])
    numpy.testing.assert_allclose(logp, expected, rtol=1e-5)
    numpy.testing.assert_allclose(
        chainer.distributions.Categorical(p).log_prob(chainer.Variable(x)).array, expected, rtol=1e-5)


# F.pad_sequence: a negative padding into unsigned arrays (OverflowError on numpy 2)

@pytest.mark.parametrize("dtype, padding, stored", [
    (numpy.uint8, -1, 255), (numpy.uint16, -1, 65535), (numpy.uint32, -2, 2 ** 32 - 2),
    (numpy.int8, 200, -56), (numpy.int16, -7, -7), (numpy.uint8, 300, 44)])
def test_pad_sequence_wraps_an_integer_padding_the_way_a_cast_does(dtype, padding, stored):
    xs = [numpy.arange(2, dtype=dtype) + 1, numpy.arange(4, dtype=dtype) + 1]
    y = F.pad_sequence(xs, padding=padding).array
    assert y.dtype == dtype
    numpy.testing.assert_array_equal(y, numpy.array([[1, 2, stored, stored], [1, 2, 3, 4]], dtype))


def test_pad_sequence_keeps_float_padding_and_its_own_parameter():
    function = chainer.functions.array.pad_sequence.PadSequence(3, -1)
    (y,) = function.apply([numpy.ones((1, 2), numpy.float32)])
    numpy.testing.assert_array_equal(y.array, [[[1, 1], [-1, -1], [-1, -1]]])
    assert function.padding == -1
    (y,) = chainer.functions.array.pad_sequence.PadSequence(2, -1).apply([numpy.ones(1, numpy.uint8)])
    numpy.testing.assert_array_equal(y.array, [[1, 255]])


def test_wrapped_integer_leaves_non_integer_cases_alone():
    assert patches.wrapped_integer(-1, numpy.float16) == -1
    assert patches.wrapped_integer(1.5, numpy.uint8) == 1.5
    assert patches.wrapped_integer(True, numpy.uint8) is True
    assert patches.wrapped_integer(-129, numpy.int8) == 127
    assert patches.wrapped_integer(-(2 ** 63), numpy.int64) == -(2 ** 63)


# Variable.debug_print: numpy 2 arrays have a .device ("cpu")

def test_debug_print_names_the_cpu_as_chainer_did():
    v = chainer.Variable(numpy.array([1, 3], numpy.float32), name="v")
    lines = v.debug_print().splitlines()
    assert lines[:2] == ["<variable v>", "- device: CPU"]
    assert "- statistics: mean=2.00000000, std=1.00000000" in lines
    assert chainer.Variable().debug_print().splitlines()[1] == "- device: None"


def test_debug_print_hook_names_the_cpu_as_chainer_did():
    out = io.StringIO()
    with chainer.function_hooks.PrintHook(file=out):
        F.exp(chainer.Variable(numpy.zeros(3, numpy.float32)))
    assert "- device: CPU" in out.getvalue() and "- device: cpu" not in out.getvalue()


# HDF5Deserializer: h5py 3 reads string entries as bytes

class _Named:
    def __init__(self, name, tag):
        self.name, self.tag = name, tag

    def serialize(self, serializer):
        self.name = serializer("name", self.name)
        self.tag = serializer("tag", self.tag)


def test_hdf5_string_entries_load_as_str(tmp_path):
    path = str(tmp_path / "named.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("name", data="faces\u00e9")
        f.create_dataset("tag", data=b"raw")
    loaded = _Named("", b"")
    chainer.serializers.load_hdf5(path, loaded)
    assert loaded.name == "faces\u00e9" and loaded.tag == b"raw"


def test_hdf5_arrays_still_load_in_place(tmp_path):
    path = str(tmp_path / "link.h5")
    link = L.Linear(3, 2)
    link.W.array[...] = numpy.arange(6).reshape(2, 3)
    chainer.serializers.save_hdf5(path, link)
    other = L.Linear(3, 2)
    chainer.serializers.load_hdf5(path, other)
    numpy.testing.assert_array_equal(other.W.array, link.W.array)


# chainer.links.caffe: protoc 3's module cannot run on protobuf 4+

class _Small(chainer.Chain):
    def __init__(self):
        super().__init__()
        with self.init_scope():
            self.fc1 = L.Linear(4, 3, initialW=chainer.initializers.Normal(1.0))
            self.fc2 = L.Linear(3, 2)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def test_caffe_export_then_import_gives_the_same_network(tmp_path):
    import chainer.exporters.caffe
    import chainer.links.caffe

    numpy.random.seed(0)
    model = _Small()
    x = numpy.random.RandomState(1).uniform(-1, 1, (2, 4)).astype(numpy.float32)
    with chainer.using_config("train", False):
        expected = model(x).array
    chainer.exporters.caffe.export(model, [chainer.Variable(x)], str(tmp_path), True, "small")
    loaded = chainer.links.caffe.CaffeFunction(str(tmp_path / "chainer_model.caffemodel"))
    (y,) = loaded(inputs={"data": x}, outputs=[loaded.layers[-1][2][0]])
    numpy.testing.assert_allclose(y.array, expected, rtol=1e-5, atol=1e-6)


def test_caffe_module_is_built_from_chainers_descriptor():
    from chainer.links.caffe.protobuf3 import caffe_pb2

    assert caffe_pb2.__loader__ is patches.CaffeDescriptorLoader
    assert caffe_pb2.DESCRIPTOR.name == "caffe.proto" and caffe_pb2.TEST == 1
    net = caffe_pb2.NetParameter(name="n", layer=[caffe_pb2.LayerParameter(name="ip", type="InnerProduct")])
    again = caffe_pb2.NetParameter.FromString(net.SerializeToString())
    assert again.layer[0].name == "ip" and caffe_pb2.V1LayerParameter.INNER_PRODUCT == 14


def test_caffe_descriptor_reader_refuses_a_file_without_one(tmp_path):
    path = tmp_path / "other_pb2.py"
    path.write_text("x = compile('raise SystemExit', '', 'exec')\n")
    with pytest.raises(ImportError, match="no serialized descriptor"):
        patches.CaffeDescriptorLoader.serialized_descriptor(str(path))


# DeprecationWarnings

def test_concat_examples_pads_to_the_largest_shape():
    batch = [(numpy.ones((1, 3), numpy.int32), 0), (numpy.full((2, 2), 2, numpy.int32), 1)]
    xs, ys = chainer.dataset.concat_examples(batch, padding=-1)
    numpy.testing.assert_array_equal(xs, [[[1, 1, 1], [-1, -1, -1]], [[2, 2, -1], [2, 2, -1]]])
    numpy.testing.assert_array_equal(ys, [0, 1])


@pytest.fixture
def numpy_fix_deprecated(monkeypatch):
    """numpy.fix warning the way numpy 2.5 does, whatever numpy this stack has."""
    fix = numpy.fix

    def deprecated_fix(*args, **kwargs):
        warnings.warn("numpy.fix is deprecated, use numpy.trunc", DeprecationWarning, stacklevel=2)
        return fix(*args, **kwargs)

    monkeypatch.setattr(numpy, "fix", deprecated_fix)


def test_fix_rounds_towards_zero_without_numpy_fix(numpy_fix_deprecated):
    x = numpy.array([-2.5, -1.0, -0.4, 0.0, 0.6, 3.9], numpy.float32)
    y = F.fix(chainer.Variable(x))
    assert y.dtype == numpy.float32
    numpy.testing.assert_array_equal(y.array, [-2, -1, 0, 0, 0, 3])


def test_fmod_backward_without_numpy_fix(numpy_fix_deprecated):
    x = chainer.Variable(numpy.array([7.0, -7.0, 5.5], numpy.float32))
    d = chainer.Variable(numpy.array([2.0, 2.0, -2.0], numpy.float32))
    y = F.fmod(x, d)
    numpy.testing.assert_array_equal(y.array, [1, -1, 1.5])
    y.grad = numpy.ones(3, numpy.float32)
    y.backward()
    numpy.testing.assert_array_equal(x.grad, [1, 1, 1])
    numpy.testing.assert_array_equal(d.grad, [-3, 3, 2])  # -trunc(x / d)


def test_maxout_gives_a_callable_initializer_the_three_dimensional_view():
    seen = []

    def initial_w(array):
        seen.append(array.shape)
        array[...] = numpy.arange(array.size).reshape(array.shape)

    def initial_b(array):
        seen.append(array.shape)
        array[...] = -numpy.arange(array.size).reshape(array.shape)

    link = L.Maxout(4, 3, 2, initialW=initial_w, initial_bias=initial_b)
    assert seen == [(3, 2, 4), (3, 2)]
    numpy.testing.assert_array_equal(link.linear.W.array, numpy.arange(24).reshape(6, 4))
    numpy.testing.assert_array_equal(link.linear.b.array, -numpy.arange(6))
    x = numpy.random.RandomState(0).uniform(-1, 1, (5, 4)).astype(numpy.float32)
    pre = (x @ link.linear.W.array.T + link.linear.b.array).reshape(5, 3, 2)
    numpy.testing.assert_allclose(link(x).array, pre.max(axis=2), rtol=1e-6)


def test_maxout_passes_arrays_and_initializers_through():
    w = numpy.random.RandomState(0).uniform(-1, 1, (3, 2, 4)).astype(numpy.float32)
    link = L.Maxout(4, 3, 2, initialW=w, initial_bias=chainer.initializers.Constant(0.5))
    numpy.testing.assert_array_equal(link.linear.W.array, w.reshape(6, 4))
    numpy.testing.assert_array_equal(link.linear.b.array, numpy.full(6, 0.5, numpy.float32))


def test_onnx_export_runs_and_matches_chainer(tmp_path):
    import onnxruntime
    import onnx_chainer

    class Casting(chainer.Chain):
        def __init__(self):
            super().__init__()
            with self.init_scope():
                self.fc = L.Linear(4, 3)

        def forward(self, x):
            return F.cast(F.cast(F.relu(self.fc(x)), numpy.float64), numpy.float32)

    numpy.random.seed(0)
    model = Casting()
    x = numpy.random.RandomState(3).uniform(-1, 1, (2, 4)).astype(numpy.float32)
    path = str(tmp_path / "casting.onnx")
    with chainer.using_config("train", False):
        expected = model(x).array
        onnx_chainer.export(model, x, filename=path, opset_version=11, no_testcase=True)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    numpy.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_tensor_type_of_dtype_answers_like_onnx_mapping():
    from onnx import TensorProto

    table = patches.TensorTypeOfDtype()
    assert table[numpy.dtype("float32")] == TensorProto.FLOAT and table[numpy.int64] == TensorProto.INT64
    assert numpy.dtype("uint8") in table and table[numpy.dtype(object)] == TensorProto.STRING
    assert table.get(numpy.dtype([("a", "i4")]), "none") == "none"
    with pytest.raises(KeyError):
        table[numpy.dtype("datetime64[s]")]


def test_onnx_chainer_modules_hold_the_replacement():
    import onnx_chainer.functions.array
    import onnx_chainer.functions.math

    for name in ("onnx_chainer.export", "onnx_chainer.functions.array", "onnx_chainer.functions.math"):
        module = sys.modules[name]  # onnx_chainer.export is also the name of a function
        assert isinstance(module.NP_TYPE_TO_TENSOR_TYPE, patches.TensorTypeOfDtype), module.__name__


def test_every_shimmed_module_has_its_patch():
    import _chainer_dcgan_shims

    patched = set(patches.AFTER) | set(patches.REPLACED) | {"chainer", "chainer._environment_check",
                                                             "chainer.testing.helper", "chainer.testing.doctest_helper"}
    assert patched == set(_chainer_dcgan_shims.SHIMMED)
    fix_module = sys.modules["chainer.functions.math.fix"]
    assert F.fix is fix_module.fix and F.fix._chainer_dcgan_shim  # chainer.functions.fix is ours
    assert F.fix.__doc__ == F.fix.__wrapped__.__doc__ and "Elementwise fix" in F.fix.__doc__


def test_register_again_patches_nothing_twice():
    import _chainer_dcgan_shims
    from chainer.functions.array import pad_sequence

    before = (pad_sequence.PadSequence.forward, chainer.Variable.debug_print, L.Maxout.__init__, F.fix,
              chainer.distributions.Categorical.log_prob)
    _chainer_dcgan_shims.register()
    after = (pad_sequence.PadSequence.forward, chainer.Variable.debug_print, L.Maxout.__init__, F.fix,
             chainer.distributions.Categorical.log_prob)
    assert after == before
    assert pad_sequence.PadSequence.forward.__wrapped__.__name__ == "forward"  # chainer's, wrapped once
    assert not hasattr(pad_sequence.PadSequence.forward.__wrapped__, "_chainer_dcgan_shim")
