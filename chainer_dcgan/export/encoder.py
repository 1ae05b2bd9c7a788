"""Export the inversion :class:`~chainer_dcgan.zspace.inversion.Encoder` beside the generator (``encoder.onnx``).

BatchNorm is folded into the convolution before it (test mode), so the graph is

    Clip [-1, 1] -> Conv 4x4/2 -> LeakyRelu 0.2 -> K-1 x [Conv 4x4/2 -> LeakyRelu 0.2] -> Flatten -> Gemm -> Tanh

mapping image arrays ``x`` ``float32 (N, 3, S, S)`` (``(pixel - 128) / 128``) to ``z`` ``float32 (N, D)``.
Like the generator's, it is run with onnxruntime and compared with Chainer before it is written.
"""
import numpy

from chainer_dcgan.export.unconditional import OPSET, ExportCheckError, ExportError, _fold, run_session
from chainer_dcgan.models import hparams
from chainer_dcgan.zspace.inversion import Encoder, encode

__all__ = ["ENCODER_F32", "fold_encoder", "build_encoder_onnx", "run_encoder_onnx", "check_encoder"]

ENCODER_F32 = "encoder.onnx"
SLOPE = 0.2


def fold_encoder(encoder):
    """``{"c0_W", "c0_b", ..., "fc_W", "fc_b"}`` float32: the encoder's weights with BatchNorm folded in."""
    if not isinstance(encoder, Encoder):
        raise ExportError("expected an inversion Encoder, got {}".format(type(encoder).__name__))
    if encoder.xp is not numpy:
        raise ExportError("move the encoder to the CPU before exporting (encoder.to_cpu())")
    params = {}
    for i in range(encoder.blocks):
        conv = getattr(encoder, "c{}".format(i))
        bn = getattr(encoder, "bn{}".format(i)) if i else None
        params["c{}_W".format(i)], params["c{}_b".format(i)] = _fold(conv.W.array, conv.b.array, bn, 0)
    params["fc_W"], params["fc_b"] = _fold(encoder.fc.W.array, encoder.fc.b.array, None, 0)
    for name, value in params.items():
        if not numpy.all(numpy.isfinite(value)):
            raise ExportError("the encoder's {} holds NaN or infinite values".format(name))
    return params


def build_encoder_onnx(params, size):
    """An ONNX model (opset :data:`~chainer_dcgan.export.OPSET`): input ``x`` ``float32 (N, 3, size, size)``,
    output ``z`` ``float32 (N, D)``, N symbolic."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    blocks = sum(1 for k in params if k.startswith("c") and k.endswith("_W"))
    z_dim = params["fc_W"].shape[0]
    inits = [numpy_helper.from_array(numpy.asarray(v, dtype=numpy.float32), k) for k, v in sorted(params.items())]
    inits += [numpy_helper.from_array(numpy.array(-1.0, numpy.float32), "low"),
              numpy_helper.from_array(numpy.array(1.0, numpy.float32), "high")]
    nodes = [helper.make_node("Clip", ["x", "low", "high"], ["h_in"], name="clip")]
    h = "h_in"
    for i in range(blocks):
        nodes.append(helper.make_node("Conv", [h, "c{}_W".format(i), "c{}_b".format(i)], ["c{}".format(i)],
                                      name="c{}".format(i), kernel_shape=[hparams.KSIZE] * 2,
                                      strides=[hparams.STRIDE] * 2, pads=[hparams.PAD] * 4))
        nodes.append(helper.make_node("LeakyRelu", ["c{}".format(i)], ["a{}".format(i)], alpha=SLOPE,
                                      name="act{}".format(i)))
        h = "a{}".format(i)
    nodes.append(helper.make_node("Flatten", [h], ["flat"], axis=1, name="flatten"))
    nodes.append(helper.make_node("Gemm", ["flat", "fc_W", "fc_b"], ["fc"], transB=1, name="fc"))
    nodes.append(helper.make_node("Tanh", ["fc"], ["z"], name="tanh"))
    graph = helper.make_graph(
        nodes, "chainer_dcgan_encoder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", z_dim])], initializer=inits)
    model = helper.make_model(graph, producer_name="chainer_dcgan.export", opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 6
    onnx.checker.check_model(model)
    return model


def run_encoder_onnx(model_bytes, x):
    """Run a serialized encoder with onnxruntime (CPU): ``float32 (N, 3, S, S)`` -> ``(N, D)``."""
    return run_session(model_bytes, "z", x=x)


def check_encoder(encoder, images, tolerance):
    """``(onnx bytes, largest |difference|)`` of the exported encoder against Chainer's :func:`encode` on
    ``images`` (``float32 (N, 3, S, S)``); :class:`ExportCheckError` above ``tolerance``."""
    data = build_encoder_onnx(fold_encoder(encoder), encoder.size).SerializeToString()
    reference = encode(encoder, images).astype(numpy.float64)
    got = run_encoder_onnx(data, images)
    err = float(numpy.max(numpy.abs(got - reference))) if got.shape == reference.shape else float("inf")
    if not err <= tolerance:
        raise ExportCheckError("{}: output differs from Chainer's by up to {:.3g} (allowed {:.3g}); nothing was "
                               "written".format(ENCODER_F32, err, tolerance))
    return data, err
