"""Export a trained generator, unconditional or conditional, for the browser demo (``web/``): one
exporter, :func:`export_demo`, for both kinds (the graphs: :mod:`chainer_dcgan.export.unconditional`,
:mod:`chainer_dcgan.export.conditional`; the inversion encoder: :mod:`chainer_dcgan.export.encoder`).

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

A conditional generator's graph takes the tags as a second input ``y`` ``float32 (N, K)``; its
``tags.json`` is empty (the page shows one control per tag instead of sliders) and ``demo.json``
holds ``"conditional": {"tags": [names in y's order]}``.

The whole folder is swapped in at once (:func:`chainer_dcgan.utils.atomic.atomic_folder`): a reader
sees the old export or the new one, never a mix.
"""
import json
import os

import numpy

from chainer_dcgan.export import conditional
from chainer_dcgan.export.conditional import (build_conditional_onnx, check_tags_y, fold_conditional,
                                              run_conditional_onnx)
from chainer_dcgan.export.encoder import ENCODER_F32, check_encoder
from chainer_dcgan.export.manifest import check_manifest
from chainer_dcgan.export.unconditional import (OPSET, TOLERANCE, ExportCheckError, ExportError, FoldedGenerator,
                                                build_onnx, chainer_output, check_export, fold_generator,
                                                refuse_nonfinite, run_onnx)
from chainer_dcgan.models import generate, is_conditional, sample_z
from chainer_dcgan.utils import jsonio
from chainer_dcgan.utils.atomic import atomic_folder, atomic_write
from chainer_dcgan.utils.images import to_array, to_image
from chainer_dcgan.zspace.inversion import generator_digest
from chainer_dcgan.zspace.tagging import write_tag_vectors

__all__ = ["ExportError", "ExportCheckError", "FoldedGenerator", "fold_generator", "build_onnx",
           "run_onnx", "check_export", "export_demo", "export_conditional_demo", "read_demo_manifest",
           "refuse_nonfinite", "OPSET", "TOLERANCE", "MANIFEST", "MODEL_F32", "MODEL_F16", "TAGS"]

MANIFEST = "demo.json"
MODEL_F32 = "generator.onnx"
MODEL_F16 = "generator.f16.onnx"
TAGS = "tags.json"
FORMAT_VERSION = 1


def _need_onnx():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise ExportError("exporting needs onnx and onnxruntime (pip install -e '.[test]'): {}".format(e)) from None


def _unconditional_models(generator, float16, check_n, seed, tolerance):
    """``({file: (bytes, max error)}, z_dim, image size, Chainer's check output)``, each file checked."""
    _need_onnx()
    params = fold_generator(generator)
    z_dim = params["l0z_W"].shape[1]
    z = sample_z(check_n, z_dim, random_state=seed)
    reference = chainer_output(generator, z).astype(numpy.float64)
    act = generator.output_activation
    files = {}
    f32 = build_onnx(params, act).SerializeToString()
    files[MODEL_F32] = (f32, check_export(f32, reference, z, tolerance, MODEL_F32))
    if float16:
        half = {k: v.astype(numpy.float16).astype(numpy.float32) for k, v in params.items()}
        half_ref = chainer_output(FoldedGenerator(half, act), z).astype(numpy.float64)
        f16 = build_onnx(params, act, float16=True).SerializeToString()
        check_export(f16, half_ref, z, tolerance, MODEL_F16 + " (against Chainer with float16-rounded weights)")
        files[MODEL_F16] = (f16, float(numpy.max(numpy.abs(half_ref - reference))))
    return files, z_dim, reference.shape[-1], reference


def _conditional_model(generator, check_n, seed, tolerance):
    """``({generator.onnx: (bytes, max error)}, z_dim, image size)`` of a conditional generator, checked on
    random z and y (:func:`~chainer_dcgan.export.conditional.check_tags_y`)."""
    _need_onnx()
    params = fold_conditional(generator)
    z = sample_z(check_n, generator.z_dim, random_state=seed)
    y = check_tags_y(check_n, len(generator.tags), seed)
    reference = generate(generator, z, check_n, y=y).astype(numpy.float64)
    data = build_conditional_onnx(params, generator.output_activation).SerializeToString()
    err = float(numpy.max(numpy.abs(run_conditional_onnx(data, z, y).astype(numpy.float64) - reference)))
    if not err <= tolerance:
        raise ExportCheckError("{}: output differs from Chainer's test-mode output by up to {:.3g} (allowed {:.3g}); "
                               "nothing was written".format(MODEL_F32, err, tolerance))
    return {MODEL_F32: (data, err)}, int(generator.z_dim), reference.shape[-1]


def export_demo(generator, out_dir, tags=None, float16=False, check_n=4, seed=0, tolerance=TOLERANCE,
                first_z=None, encoder=None):
    """Export ``generator`` and tag vectors into ``out_dir`` for the web demo (see the module doc).

    Args:
        generator: a trained :class:`~chainer_dcgan.models.Generator` or
            :class:`~chainer_dcgan.models.ConditionalGenerator` (CPU); a conditional one takes no
            ``tags``, ``float16`` or ``encoder``.
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
    if is_conditional(generator):
        if tags or float16 or encoder is not None:
            raise ExportError("tag vectors, float16 and an encoder are for unconditional models; this one is "
                              "conditional on {} tags (the page shows one control per tag)".format(len(generator.tags)))
        files, z_dim, image_size = _conditional_model(generator, check_n, seed, tolerance)
    else:
        files, z_dim, image_size, reference = _unconditional_models(generator, float16, check_n, seed, tolerance)
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
    if encoder is not None:
        if encoder.generator != generator_digest(generator):
            raise ExportError("the encoder was trained for another generator (weights {}...)".format(
                str(encoder.generator)[:12]))
        faces = numpy.stack([to_array(to_image(x)) for x in reference])  # as the page reads an image
        encoder_file = check_encoder(encoder, faces, tolerance)
    manifest = {
        "format": FORMAT_VERSION,
        "z_dim": int(z_dim),
        "image_size": int(image_size),
        "output_activation": generator.output_activation,
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
    if is_conditional(generator):
        manifest["conditional"] = {"tags": list(generator.tags)}
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
        write_tag_vectors(os.path.join(folder, TAGS), tags, meta={"source": "chainer_dcgan.export"})  # [] if conditional
        with atomic_write(os.path.join(folder, MANIFEST), "w") as f:
            json.dump(manifest, f, indent=1)
            f.write("\n")
    return manifest


def export_conditional_demo(generator, out_dir, check_n=4, seed=0, tolerance=TOLERANCE):
    """The old name of :func:`export_demo` for a conditional generator (refuses an unconditional one)."""
    if not is_conditional(generator):
        raise ExportError("expected a ConditionalGenerator, got {}".format(type(generator).__name__))
    return export_demo(generator, out_dir, check_n=check_n, seed=seed, tolerance=tolerance)


# The old name also stays on the module it lived in (``chainer_dcgan.export_conditional``, now
# ``.conditional``). Importing that module always runs this package's __init__ first, so it is there.
conditional.export_conditional_demo = export_conditional_demo


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

