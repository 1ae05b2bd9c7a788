"""Export a :class:`~chainer_dcgan.models.ConditionalGenerator` as ONNX with inputs z and y.

A conditional BatchNorm's scale and shift depend on y, so only its normalisation (running
statistics, test mode) folds into the layer before it; the tag-dependent affine stays in the graph::

    g_l = y @ gamma_y_l + gamma_l,   b_l = y @ beta_y_l + beta_l            (N, C_l) each
    Gemm(z) -> *g_0 + b_0 -> Relu -> Reshape (N, 512, 6, 6)
    -> 3 x [ConvTranspose -> *g_l + b_l (over H, W) -> Relu] -> ConvTranspose (-> Tanh)

(at 96 px; other sizes reshape to 4x4 and have one block more per doubling, as in
:mod:`chainer_dcgan.export`). z ``float32 (N, D)`` in [-1, 1] and y ``float32 (N, K)`` in [0, 1]
-> ``float32 (N, 3, S, S)``, S the generator's ``size``.
As for the unconditional export (:mod:`chainer_dcgan.export`), nothing is written before onnxruntime's
output matched Chainer's test-mode output for random z and y, and ``demo.json`` (written last) tells
the page what it loads; here it also holds ``"conditional": {"tags": [names in y's order]}``.
"""
import numpy

from chainer_dcgan.export.unconditional import (OPSET, ExportError, _base, _blocks, _deconvs, check_exportable,
                                                run_session)
from chainer_dcgan.models import ConditionalGenerator, hparams


def fold_conditional(generator):
    """The weights of a conditional generator with each BatchNorm's normalisation folded in.

    Returns:
        dict ``name -> float32 array``: for each layer ``l0z, dc1..dcB`` ``{l}_W`` and ``{l}_b``
        (``(W, b)`` times ``1 / sqrt(var + eps)``, minus the mean), and for each conditional
        BatchNorm ``bn0l, bn1..bn(B-1)`` its ``{bn}_gamma, {bn}_beta`` ``(C,)`` and
        ``{bn}_gamma_y, {bn}_beta_y`` ``(K, C)``.
    """
    check_exportable(generator, ConditionalGenerator, "ConditionalGenerator")
    params = {}
    for layer, bn_name in (("l0z", "bn0l"),) + _deconvs(generator.blocks):
        link = getattr(generator, layer)
        W = numpy.asarray(link.W.array, dtype=numpy.float64)
        axis = 0 if layer == "l0z" else 1
        b = numpy.zeros(W.shape[axis]) if link.b is None else numpy.asarray(link.b.array, dtype=numpy.float64)
        if bn_name is not None:
            cbn = getattr(generator, bn_name)
            scale = 1.0 / numpy.sqrt(numpy.asarray(cbn.bn.avg_var, numpy.float64) + cbn.bn.eps)
            shape = [1] * W.ndim
            shape[axis] = -1
            W = W * scale.reshape(shape)
            b = (b - numpy.asarray(cbn.bn.avg_mean, numpy.float64)) * scale
            for name in ("gamma", "beta", "gamma_y", "beta_y"):
                params["{}_{}".format(bn_name, name)] = numpy.asarray(getattr(cbn, name).array, numpy.float32)
        params[layer + "_W"], params[layer + "_b"] = W.astype(numpy.float32), b.astype(numpy.float32)
    for name, value in params.items():
        if not numpy.all(numpy.isfinite(value)):
            raise ExportError("folded {} holds non-finite values".format(name))
    return params


def build_conditional_onnx(params, output_activation="none"):
    """``onnx.ModelProto`` (opset :data:`~chainer_dcgan.export.OPSET`) with inputs ``z`` ``(N, D)`` and
    ``y`` ``(N, K)``, output ``x`` ``(N, 3, S, S)`` (N symbolic; S from the number of blocks)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    z_dim, n_tags = params["l0z_W"].shape[1], params["bn0l_gamma_y"].shape[0]
    blocks, base = _blocks(params), _base(params)
    last = "dc{}".format(blocks)
    c0, out_c = params["dc1_W"].shape[0], params[last + "_W"].shape[1]
    size = base * hparams.STRIDE ** blocks
    nodes, inits = [], [numpy_helper.from_array(v, k) for k, v in sorted(params.items())]

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def affine(h, bn, spatial):
        g = node("Add", [node("MatMul", ["y", bn + "_gamma_y"], bn + "_gy"), bn + "_gamma"], bn + "_g")
        b = node("Add", [node("MatMul", ["y", bn + "_beta_y"], bn + "_by"), bn + "_beta"], bn + "_b")
        if spatial:
            g = node("Unsqueeze", [g], bn + "_g4", axes=[2, 3])
            b = node("Unsqueeze", [b], bn + "_b4", axes=[2, 3])
        return node("Relu", [node("Add", [node("Mul", [h, g], bn + "_mul"), b], bn + "_add")], bn + "_relu")

    h = node("Gemm", ["z", "l0z_W", "l0z_b"], "l0z", transB=1)
    h = affine(h, "bn0l", False)
    inits.append(numpy_helper.from_array(
        numpy.array([-1, c0, base, base], dtype=numpy.int64), "shape0"))
    h = node("Reshape", [h, "shape0"], "reshape0")
    conv = dict(kernel_shape=[hparams.KSIZE] * 2, strides=[hparams.STRIDE] * 2, pads=[hparams.PAD] * 4)
    for layer, bn in _deconvs(blocks)[:-1]:
        h = affine(node("ConvTranspose", [h, layer + "_W", layer + "_b"], layer, **conv), bn, True)
    if output_activation == "tanh":
        node("Tanh", [node("ConvTranspose", [h, last + "_W", last + "_b"], last, **conv)], "x")
    else:
        node("ConvTranspose", [h, last + "_W", last + "_b"], "x", **conv)
    graph = helper.make_graph(
        nodes, "chainer_dcgan_conditional_generator",
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", z_dim]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_tags])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", out_c, size, size])],
        initializer=inits)
    model = helper.make_model(graph, producer_name="chainer_dcgan.export.conditional",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 6
    onnx.checker.check_model(model)
    return model


def run_conditional_onnx(model_bytes, z, y):
    """Run a serialized conditional ONNX generator with onnxruntime (CPU): ``(N, D), (N, K) -> (N, 3, H, W)``."""
    return run_session(model_bytes, "x", z=z, y=y)


def check_tags_y(n, n_tags, seed):
    """The check's y: ``float32 (n, K)``, half multi-hot rows and half fractional ones in [0, 1], seeded."""
    rs = numpy.random.RandomState(seed + 1)
    y = (rs.uniform(size=(n, n_tags)) < 0.3).astype(numpy.float32)
    y[n // 2:] = rs.uniform(size=(n - n // 2, n_tags))
    return y


__all__ = ["fold_conditional", "build_conditional_onnx", "run_conditional_onnx", "check_tags_y"]
