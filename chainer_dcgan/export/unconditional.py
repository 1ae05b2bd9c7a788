"""The unconditional generator as ONNX: BatchNorm folded into the layer before it (test mode), the graph
built with ``onnx.helper``, run with onnxruntime and compared with Chainer (see :mod:`chainer_dcgan.export`,
which writes the export folder for both model kinds)."""
import chainer
import numpy

from chainer_dcgan.models import Generator, generate, hparams
from chainer_dcgan.models.serialization import nonfinite_parameters

__all__ = ["ExportError", "ExportCheckError", "FoldedGenerator", "fold_generator", "build_onnx", "run_onnx",
           "chainer_output", "check_export", "check_exportable", "refuse_nonfinite", "OPSET", "TOLERANCE"]

#: ONNX opset of the exported graph (onnxruntime-web and onnx_chainer's ceiling).
OPSET = 11
#: Largest absolute difference allowed between the exported model and Chainer.
TOLERANCE = 1e-4


def _deconvs(blocks):
    """``(deconvolution, BatchNorm after it or None)`` link names of a generator with ``blocks`` blocks."""
    return tuple(("dc{}".format(i), "bn{}".format(i) if i < blocks else None) for i in range(1, blocks + 1))


def _blocks(params):
    """Number of deconvolutions in folded ``params``."""
    return sum(1 for name in params if name.startswith("dc") and name.endswith("_W"))


def _base(params):
    """Side of the first feature map of folded ``params`` (6 at 96 px, else 4)."""
    return int(round((params["l0z_W"].shape[0] / params["dc1_W"].shape[0]) ** 0.5))


class ExportError(ValueError):
    """A generator or export folder that cannot be exported or read (the message names it)."""


class ExportCheckError(ExportError):
    """The exported model's output differs from Chainer's by more than the tolerance."""


def _fold(W, b, bn, axis):
    """Fold test-mode BatchNorm ``bn`` into weights ``W`` (output channels on ``axis``) and bias ``b``.

    ``bn(y) = gamma * (y - mean) / sqrt(var + eps) + beta``; computed in float64, rounded once.
    """
    W = numpy.asarray(W, dtype=numpy.float64)
    b = numpy.zeros(W.shape[axis]) if b is None else numpy.asarray(b, dtype=numpy.float64)
    if bn is None:
        return W.astype(numpy.float32), b.astype(numpy.float32)
    gamma = numpy.asarray(bn.gamma.array, dtype=numpy.float64)
    beta = numpy.asarray(bn.beta.array, dtype=numpy.float64)
    mean = numpy.asarray(bn.avg_mean, dtype=numpy.float64)
    var = numpy.asarray(bn.avg_var, dtype=numpy.float64)
    scale = gamma / numpy.sqrt(var + bn.eps)
    shape = [1] * W.ndim
    shape[axis] = -1
    return (W * scale.reshape(shape)).astype(numpy.float32), ((b - mean) * scale + beta).astype(numpy.float32)


def refuse_nonfinite(generator):
    """Raise ExportError naming the parameters of ``generator`` that hold NaN or infinity (their faces are blank)."""
    bad = nonfinite_parameters(generator)
    if bad:
        raise ExportError("the generator's weights hold NaN or infinite values ({}): there is nothing to export".format(
            ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")))


def check_exportable(generator, kind, name):
    """Raise :class:`ExportError` unless ``generator`` is a ``kind`` (called ``name`` in the message) on
    the CPU with finite weights: what both graphs' folding needs."""
    if not isinstance(generator, kind):
        raise ExportError("expected a {}, got {}".format(name, type(generator).__name__))
    if generator.xp is not numpy:
        raise ExportError("move the generator to the CPU before exporting (generator.to_cpu())")
    refuse_nonfinite(generator)


def fold_generator(generator):
    """The generator's weights with BatchNorm folded in.

    Args:
        generator: a :class:`~chainer_dcgan.models.Generator` on the CPU.

    Returns:
        dict ``name -> float32 array``: ``l0z_W (18432, D)``, ``l0z_b (18432,)``, and for ``k`` in
        ``dc1..dcK`` ``k_W (C_in, C_out, 4, 4)``, ``k_b (C_out,)``; with the Chainer layouts, which
        are also ONNX's (Gemm with ``transB=1``, ConvTranspose).
    """
    check_exportable(generator, Generator, "chainer_dcgan.models.Generator")
    params = {}

    def bias(link):
        return None if link.b is None else link.b.array

    params["l0z_W"], params["l0z_b"] = _fold(generator.l0z.W.array, bias(generator.l0z), generator.bn0l, 0)
    for dc, bn in _deconvs(generator.blocks):
        link = getattr(generator, dc)
        params[dc + "_W"], params[dc + "_b"] = _fold(link.W.array, bias(link), bn and getattr(generator, bn), 1)
    for name, value in params.items():
        if not numpy.all(numpy.isfinite(value)):
            raise ExportError("folded {} holds non-finite values (a BatchNorm variance below -eps?)".format(name))
    return params


class FoldedGenerator(chainer.Chain):
    """The generator as it is exported: the same function as :class:`Generator` in test mode, without
    BatchNorm. It is Chainer's reading of the exported weights (``params`` from :func:`fold_generator`,
    possibly rounded to float16), the reference the float16 file is checked against.

    z ``float32 (N, D)`` -> ``float32 (N, 3, S, S)``.
    """

    def __init__(self, params, output_activation="none"):
        super().__init__()
        import chainer.links as L

        self.output_activation = output_activation
        k, s, p = hparams.KSIZE, hparams.STRIDE, hparams.PAD
        with self.init_scope():
            W = numpy.asarray(params["l0z_W"], dtype=numpy.float32)
            self.l0z = L.Linear(W.shape[1], W.shape[0], initialW=W,
                                initial_bias=numpy.asarray(params["l0z_b"], dtype=numpy.float32))
            for dc, _ in _deconvs(_blocks(params)):
                W = numpy.asarray(params[dc + "_W"], dtype=numpy.float32)
                setattr(self, dc, L.Deconvolution2D(W.shape[0], W.shape[1], k, s, p, initialW=W,
                                                    initial_bias=numpy.asarray(params[dc + "_b"], numpy.float32)))

    def forward(self, z):
        import chainer.functions as F

        c0 = self.dc1.W.shape[0]
        base = int(round((self.l0z.W.shape[0] / c0) ** 0.5))
        h = F.relu(self.l0z(z))
        h = F.reshape(h, (h.shape[0], c0, base, base))
        blocks = sum(1 for name, _ in self.namedlinks(skipself=True) if name.startswith("/dc"))
        for i in range(1, blocks):
            h = F.relu(getattr(self, "dc{}".format(i))(h))
        x = getattr(self, "dc{}".format(blocks))(h)
        return F.tanh(x) if self.output_activation == "tanh" else x


def build_onnx(params, output_activation="none", float16=False):
    """An ONNX model (opset :data:`OPSET`) of the folded generator.

    Args:
        params: dict from :func:`fold_generator`.
        output_activation (str): ``"none"`` (faithful) or ``"tanh"``.
        float16 (bool): store the weights as float16, each followed by a Cast to float32.

    Returns:
        ``onnx.ModelProto`` with input ``z`` ``float32 (N, D)`` and output ``x`` ``float32 (N, 3, S, S)``
        (N symbolic).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    z_dim = params["l0z_W"].shape[1]
    c0 = params["dc1_W"].shape[0]
    deconvs = _deconvs(_blocks(params))
    base = _base(params)
    out_c = params[deconvs[-1][0] + "_W"].shape[1]
    size = base * hparams.STRIDE ** len(deconvs)
    nodes, inits = [], []

    def weight(name):
        value = numpy.asarray(params[name], dtype=numpy.float32)
        if not float16:
            inits.append(numpy_helper.from_array(value, name))
            return name
        inits.append(numpy_helper.from_array(value.astype(numpy.float16), name + "_f16"))
        nodes.append(helper.make_node("Cast", [name + "_f16"], [name], to=TensorProto.FLOAT, name="cast_" + name))
        return name

    nodes.append(helper.make_node("Gemm", ["z", weight("l0z_W"), weight("l0z_b")], ["l0z"], transB=1, name="l0z"))
    nodes.append(helper.make_node("Relu", ["l0z"], ["h0"], name="relu0"))
    inits.append(numpy_helper.from_array(
        numpy.array([-1, c0, base, base], dtype=numpy.int64), "shape0"))
    nodes.append(helper.make_node("Reshape", ["h0", "shape0"], ["r0"], name="reshape0"))
    h = "r0"
    for i, (dc, _) in enumerate(deconvs, 1):
        last = i == len(deconvs)
        out = "x" if last and output_activation == "none" else dc
        nodes.append(helper.make_node(
            "ConvTranspose", [h, weight(dc + "_W"), weight(dc + "_b")], [out], name=dc,
            kernel_shape=[hparams.KSIZE] * 2, strides=[hparams.STRIDE] * 2, pads=[hparams.PAD] * 4))
        if not last:
            nodes.append(helper.make_node("Relu", [out], ["h{}".format(i)], name="relu{}".format(i)))
            h = "h{}".format(i)
        elif output_activation == "tanh":
            nodes.append(helper.make_node("Tanh", [out], ["x"], name="tanh"))
    graph = helper.make_graph(
        nodes, "chainer_dcgan_generator",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", z_dim])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", out_c, size, size])],
        initializer=inits)
    model = helper.make_model(graph, producer_name="chainer_dcgan.export",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 6  # opset 11's IR; readable by every onnxruntime(-web) release
    onnx.checker.check_model(model)
    return model


def run_session(model_bytes, output, **inputs):
    """Run a serialized ONNX model with onnxruntime on the CPU, one thread: the array ``output`` for
    ``inputs`` (name -> array, cast to float32)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return session.run([output], {k: numpy.asarray(v, dtype=numpy.float32) for k, v in inputs.items()})[0]


def run_onnx(model_bytes, z):
    """Run a serialized ONNX generator with onnxruntime (CPU): ``float32 (N, D)`` -> ``(N, 3, H, W)``."""
    return run_session(model_bytes, "x", z=z)


def chainer_output(link, z):
    """``link(z)`` in test mode (BatchNorm running statistics) as NumPy ``float32 (N, 3, H, W)``, in one
    pass (:func:`~chainer_dcgan.models.generate`)."""
    return generate(link, z, len(z))


def check_export(model_bytes, reference, z, tolerance=TOLERANCE, what="exported model"):
    """Raise :class:`ExportCheckError` unless onnxruntime's output for ``z`` is within ``tolerance`` of
    ``reference`` (Chainer's output for the same ``z``); returns the largest absolute difference."""
    got = run_onnx(model_bytes, z)
    if got.shape != reference.shape:
        raise ExportCheckError("{}: output shape {} differs from Chainer's {}".format(what, got.shape, reference.shape))
    err = float(numpy.max(numpy.abs(got.astype(numpy.float64) - reference)))
    if not err <= tolerance:
        raise ExportCheckError("{}: output differs from Chainer's test-mode output by up to {:.3g} "
                               "(allowed {:.3g}); nothing was written".format(what, err, tolerance))
    return err


