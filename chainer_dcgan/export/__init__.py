"""Export a trained :class:`~chainer_dcgan.models.Generator` for the browser demo (``web/``).

The generator is rewritten for inference: every BatchNormalization is folded, with its running
statistics (test mode), into the layer before it, so the exported network is only

    Gemm (the Linear ``l0z``) -> Relu -> Reshape (N, 512, 6, 6)
    -> 3 x [ConvTranspose 4x4 stride 2 pad 1 -> Relu] -> ConvTranspose (-> Tanh for that variant)

(at 96 px; other sizes reshape to 4x4 and have one block more per doubling), mapping z
``float32 (N, D)`` in ``[-1, 1]`` to ``float32 (N, 3, S, S)`` (S = the generator's ``size``), unclipped, roughly
``(pixel - 128) / 128``. It is written as ONNX (opset 11), which ``onnxruntime-web`` runs in the
page; the graph is built directly with ``onnx.helper`` because after folding it is this short.
Weights are float32, and optionally float16 too (a second file of half the size whose initializers
are cast back to float32 when the session loads, so the arithmetic is float32 either way).

Nothing is written until the exported model has been run with ``onnxruntime`` and its output
matched Chainer's test-mode output for the same z (:class:`ExportCheckError` otherwise).

An export folder holds::

    generator.onnx        float32 weights
    generator.f16.onnx    float16 weights (with ``float16=True``)
    tags.json             the tag vectors for the sliders ({"tags": []} without any)
    encoder.onnx          the inversion encoder, image -> z (when one is given; :mod:`chainer_dcgan.export.encoder`)
    demo.json             what the page reads first: file names, sizes, z_dim, the check's errors
"""
import json
import os

import chainer
import numpy

from chainer_dcgan.export.manifest import check_manifest
from chainer_dcgan.models import Generator, hparams, sample_z
from chainer_dcgan.models.serialization import nonfinite_parameters
from chainer_dcgan.utils import jsonio
from chainer_dcgan.utils.atomic import atomic_folder, atomic_write
from chainer_dcgan.zspace.tagging import write_tag_vectors

__all__ = ["ExportError", "ExportCheckError", "FoldedGenerator", "fold_generator", "build_onnx",
           "run_onnx", "check_export", "export_demo", "read_demo_manifest", "refuse_nonfinite",
           "OPSET", "TOLERANCE", "MANIFEST", "MODEL_F32", "MODEL_F16", "TAGS"]

#: ONNX opset of the exported graph (onnxruntime-web and onnx_chainer's ceiling).
OPSET = 11
#: Largest absolute difference allowed between the exported model and Chainer.
TOLERANCE = 1e-4
MANIFEST = "demo.json"
MODEL_F32 = "generator.onnx"
MODEL_F16 = "generator.f16.onnx"
TAGS = "tags.json"
FORMAT_VERSION = 1


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


def fold_generator(generator):
    """The generator's weights with BatchNorm folded in.

    Args:
        generator: a :class:`~chainer_dcgan.models.Generator` on the CPU.

    Returns:
        dict ``name -> float32 array``: ``l0z_W (18432, D)``, ``l0z_b (18432,)``, and for ``k`` in
        ``dc1..dcK`` ``k_W (C_in, C_out, 4, 4)``, ``k_b (C_out,)``; with the Chainer layouts, which
        are also ONNX's (Gemm with ``transB=1``, ConvTranspose).
    """
    if not isinstance(generator, Generator):
        raise ExportError("expected a chainer_dcgan.models.Generator, got {}".format(type(generator).__name__))
    if generator.xp is not numpy:
        raise ExportError("move the generator to the CPU before exporting (generator.to_cpu())")
    refuse_nonfinite(generator)
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


def run_onnx(model_bytes, z):
    """Run a serialized ONNX generator with onnxruntime (CPU): ``float32 (N, D)`` -> ``(N, 3, H, W)``."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return session.run(["x"], {"z": numpy.asarray(z, dtype=numpy.float32)})[0]


def chainer_output(link, z):
    """``link(z)`` in test mode (BatchNorm running statistics) as NumPy ``float32 (N, 3, H, W)``."""
    with chainer.using_config("train", False), chainer.using_config("enable_backprop", False):
        return numpy.asarray(link(numpy.asarray(z, dtype=numpy.float32)).array)


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


def export_demo(generator, out_dir, tags=None, float16=False, check_n=4, seed=0, tolerance=TOLERANCE,
                first_z=None, encoder=None):
    """Export ``generator`` and tag vectors into ``out_dir`` for the web demo (see the module doc).

    Args:
        generator: a trained :class:`~chainer_dcgan.models.Generator` (CPU).
        out_dir (str): the export folder (created; files in it are replaced atomically, ``demo.json``
            last, so a reader never sees a half-finished export).
        tags: list of :class:`~chainer_dcgan.zspace.tagging.TagVector` (one slider each), or None for none.
        float16 (bool): also write ``generator.f16.onnx``.
        check_n (int): how many z (uniform, seeded) the check runs.
        seed (int): the check's z.
        tolerance (float): largest absolute difference allowed.
        first_z (sequence of float or None): the z the page opens on (``first_z`` in the manifest);
            None: a random one each time.
        encoder (:class:`~chainer_dcgan.zspace.inversion.Encoder` or None): trained for ``generator``
            (refused otherwise); written as ``encoder.onnx`` after a check on the check z's faces.

    Returns:
        dict: the manifest written to ``demo.json``.

    Raises:
        ExportError: the generator or tag vectors do not fit.
        ExportCheckError: an exported model's output differs from Chainer's.
    """
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise ExportError("exporting needs onnx and onnxruntime (pip install -e '.[test]'): {}".format(e)) from None
    params = fold_generator(generator)
    z_dim = params["l0z_W"].shape[1]
    tags = list(tags or [])
    for tv in tags:
        if len(tv.v) != z_dim:
            raise ExportError("tag vector {!r} has {} numbers, the generator's z has {}".format(
                tv.name, len(tv.v), z_dim))
    if first_z is not None:
        first_z = numpy.asarray(first_z, dtype=numpy.float64)
        if first_z.shape != (z_dim,) or not numpy.all(numpy.isfinite(first_z)) or numpy.abs(first_z).max() > 1:
            raise ExportError("the first face's z must be {} finite numbers in [-1, 1], got shape {}".format(
                z_dim, first_z.shape))
    z = sample_z(check_n, z_dim, random_state=seed)
    reference = chainer_output(generator, z).astype(numpy.float64)
    act = generator.output_activation
    files = {}
    f32 = build_onnx(params, act).SerializeToString()
    files[MODEL_F32] = (f32, check_export(f32, reference, z, tolerance, MODEL_F32))
    if encoder is not None:
        from chainer_dcgan.export.encoder import ENCODER_F32, check_encoder
        from chainer_dcgan.utils.images import to_array, to_image
        from chainer_dcgan.zspace.inversion import generator_digest

        if encoder.generator != generator_digest(generator):
            raise ExportError("the encoder was trained for another generator (weights {}...)".format(
                str(encoder.generator)[:12]))
        faces = numpy.stack([to_array(to_image(x)) for x in reference])  # as the page reads an image
        encoder_file = check_encoder(encoder, faces, tolerance)
    if float16:
        half = {k: v.astype(numpy.float16).astype(numpy.float32) for k, v in params.items()}
        half_ref = chainer_output(FoldedGenerator(half, act), z).astype(numpy.float64)
        f16 = build_onnx(params, act, float16=True).SerializeToString()
        check_export(f16, half_ref, z, tolerance, MODEL_F16 + " (against Chainer with float16-rounded weights)")
        files[MODEL_F16] = (f16, float(numpy.max(numpy.abs(half_ref - reference))))
    manifest = {
        "format": FORMAT_VERSION,
        "z_dim": int(z_dim),
        "image_size": int(reference.shape[-1]),
        "output_activation": act,
        "pixel": "round(clip(x, -1, 1) * 128 + 128)",
        "tags": TAGS,
        "tag_count": len(tags),
        "models": {
            name: {"file": name, "bytes": len(data), "dtype": "float16" if name == MODEL_F16 else "float32",
                   "max_abs_error_vs_chainer": err}
            for name, (data, err) in files.items()},
        "default_model": MODEL_F32,
        "check": {"n": int(check_n), "seed": int(seed), "tolerance": tolerance},
    }
    if encoder is not None:
        manifest["encoder"] = {"file": ENCODER_F32, "bytes": len(encoder_file[0]), "dtype": "float32",
                               "input": "x float32 (N, 3, {0}, {0}) = (pixel - 128) / 128".format(encoder.size),
                               "max_abs_error_vs_chainer": encoder_file[1]}
    if first_z is not None:
        manifest["first_z"] = [float(numpy.float32(v)) for v in first_z]
    with atomic_folder(out_dir) as folder:  # the whole export replaces the old one, or nothing does
        for name, (data, _) in files.items():
            with atomic_write(os.path.join(folder, name)) as f:
                f.write(data)
        if encoder is not None:
            with atomic_write(os.path.join(folder, ENCODER_F32)) as f:
                f.write(encoder_file[0])
        write_tag_vectors(os.path.join(folder, TAGS), tags, meta={"source": "chainer_dcgan.export"})
        with atomic_write(os.path.join(folder, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
    return manifest


def read_demo_manifest(out_dir):
    """Read ``out_dir/demo.json`` (and check the files it names exist); raises :class:`ExportError`."""
    path = os.path.join(os.fspath(out_dir), MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = jsonio.load(f)
    except FileNotFoundError:
        raise ExportError("{}: no such file; make the export with tools/export_weights.py".format(path)) from None
    except (OSError, ValueError) as e:
        raise ExportError("{}: unreadable: {}".format(path, e)) from None
    try:
        check_manifest(manifest)
    except ValueError as e:
        raise ExportError("{}: {}".format(path, e)) from None
    for entry in list(manifest["models"].values()) + ([manifest["encoder"]] if "encoder" in manifest else []):
        if not os.path.isfile(os.path.join(out_dir, entry["file"])):
            raise ExportError("{}: names {!r}, which is missing".format(path, entry.get("file")))
    return manifest

