#!/usr/bin/env python
"""Export a trained generator and its tag vectors for the browser demo (web/, tools/serve_demo.py).

BatchNorm is folded into the layer before it with its running statistics (test mode) and the
network is written as ONNX (opset 11) for onnxruntime-web: generator.onnx (float32) and, with
--float16, generator.f16.onnx (half the download). Before anything is written the exported model
is run with onnxruntime and compared with Chainer's test-mode output for the same z; a difference
above --tolerance aborts the export with exit status 1. --tags copies the tag vectors of
tools/tag_vectors.py (one slider each); a shipped model (--model default) brings its own, and
without either (or with --no-tags) the page has no tag sliders. --encoder (the inversion encoder of
tools/train_encoder.py; a shipped model brings its own) is written as encoder.onnx, checked the same
way, and gives the page its "bring your own face" control.

A conditional model (train_faces.py --conditional) is exported with two inputs, z and the tags y,
checked against Chainer for random z and y; demo.json then lists its tags under "conditional".

Example:
  python tools/export_weights.py --model result/gen_iter_10000.npz --tags tags.json --out demo_export
  python tools/serve_demo.py --export demo_export
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan import export  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import (add_model_argument, generator_from_args, output_folder, positive_float,  # noqa: E402
                               positive_int, print_error, seed)
from chainer_dcgan.models import is_conditional, pretrained  # noqa: E402
from chainer_dcgan.models.serialization import ModelFileError  # noqa: E402
from chainer_dcgan.zspace.inversion import load_encoder  # noqa: E402
from chainer_dcgan.zspace.tagging import TagVectorFileError, read_tag_vectors  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(p)
    p.add_argument("--out", type=output_folder, required=True,
                   help="export folder (created); gets demo.json, generator.onnx, tags.json")
    tags = p.add_mutually_exclusive_group()
    tags.add_argument("--tags", default=None,
                      help="tag-vector JSON of tools/tag_vectors.py ({\"tags\": [{\"name\", \"v\", \"count\"}]}) "
                           "or a shipped model's name for its vectors; default: those shipped with --model when it "
                           "names a shipped model, else no tag sliders")
    tags.add_argument("--no-tags", action="store_true", help="no tag sliders, even for a shipped model")
    p.add_argument("--encoder", default=None,
                   help="inversion encoder (npz of tools/train_encoder.py, made for --model); default: the one "
                        "shipped with --model, if any; 'none': no encoder")
    p.add_argument("--float16", action="store_true",
                   help="also write generator.f16.onnx with float16 weights (page: ?model=f16)")
    p.add_argument("--check-n", type=positive_int, default=4,
                   help="how many random z the export check compares (default 4)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the check's z (default 0)")
    p.add_argument("--tolerance", type=positive_float, default=export.TOLERANCE,
                   help="largest absolute difference from Chainer allowed (default {:g})".format(export.TOLERANCE))
    args = p.parse_args(argv)
    if args.check_n < 1:
        p.error("--check-n must be >= 1")
    if not args.tolerance > 0:
        p.error("--tolerance must be > 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        gen = generator_from_args(args)  # on the CPU: the check compares onnxruntime's CPU output with Chainer's
        tags_file = None if args.no_tags else args.tags or pretrained.companion(args.model, pretrained.TAGS)
        if is_conditional(gen) and (args.tags or args.float16 or (args.encoder or "none").lower() != "none"):
            raise export.ExportError("--tags, --float16 and --encoder are for unconditional models; {} is conditional "
                                     "on {} tags (the page shows one control per tag)".format(args.model, len(gen.tags)))
        tags, encoder = [], None
        if not is_conditional(gen):
            tags = read_tag_vectors(tags_file, gen.z_dim) if tags_file else []
            encoder_file = None if (args.encoder or "").lower() == "none" else (
                args.encoder or pretrained.companion(args.model, pretrained.ENCODER))
            encoder = load_encoder(encoder_file, gen) if encoder_file else None
        manifest = export.export_demo(gen, args.out, tags=tags, float16=args.float16, check_n=args.check_n,
                                      seed=args.seed, tolerance=args.tolerance, encoder=encoder)
    except export.ExportCheckError as e:
        print_error(e)
        return 1  # the documented status of a failed numerical check
    except (ModelFileError, TagVectorFileError, export.ExportError, OSError) as e:
        print_error(e)
        return 2
    for entry in manifest["models"].values():
        print("wrote {} ({:.1f} MB, {}; max |difference| from Chainer {:.2g})".format(
            os.path.join(args.out, entry["file"]), entry["bytes"] / 1e6, entry["dtype"],
            entry["max_abs_error_vs_chainer"]))
    print("wrote {} ({} tag sliders{}) and {}".format(
        os.path.join(args.out, export.TAGS), manifest["tag_count"],
        " from {}".format(tags_file) if manifest["tag_count"] else "", os.path.join(args.out, export.MANIFEST)))
    if "encoder" in manifest:
        print("wrote {} (the inversion encoder, {:.1f} MB; max |difference| from Chainer {:.2g})".format(
            os.path.join(args.out, manifest["encoder"]["file"]), manifest["encoder"]["bytes"] / 1e6,
            manifest["encoder"]["max_abs_error_vs_chainer"]))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
