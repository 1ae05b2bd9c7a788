#!/usr/bin/env python
"""Crop anime faces from a folder of illustrations into a training dataset (manifest.jsonl).

Faces are found with nagadomi's lbpcascade_animeface (grayscale, equalizeHist, detectMultiScale
with --scale-factor, --min-neighbors) on a copy downscaled so that --min-face (default: --size;
smaller faces would only be upscaled into blurry crops) fills the cascade's 24 px window, refined
at full resolution, then cut from the full-resolution image as squares (plus --margin) and resized
with area interpolation to --size. --min-face 24 searches the full resolution (the old behaviour). The input is a scrape from tools/scrape_safebooru.py (its
posts.jsonl gives each face the post's tags and id) or any folder of images. The output trains with
examples/train_faces.py --dataset OUT. Rerunning resumes; unreadable inputs are skipped and counted.

Example:
  python tools/fetch_cascade.py      # once
  python tools/crop_faces.py --input data/safebooru --out data/faces --workers 2
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import above_one, non_negative_float, output_folder, positive_int, print_error  # noqa: E402
from chainer_dcgan.collection import faces  # noqa: E402
from chainer_dcgan.datasets.manifest import ManifestError  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="folder of images, or of a scrape (with posts.jsonl)")
    p.add_argument("--out", type=output_folder, required=True, help="dataset folder: faces/ and manifest.jsonl (created; reused to resume)")
    p.add_argument("--size", type=positive_int, default=96, help="side of the crops in pixels (default 96)")
    p.add_argument("--margin", type=non_negative_float, default=0.0,
                   help="context added on each side, as a fraction of the face's side (default 0)")
    p.add_argument("--min-face", type=positive_int, default=None,
                   help="smallest face side to keep, pixels of the illustration, >= 24 (default: --size); the "
                        "search runs on a copy downscaled by 24/MIN_FACE, so larger is faster")
    p.add_argument("--no-refine", action="store_true",
                   help="keep the downscaled search's boxes (a few %% of the side off) instead of refining "
                        "each at full resolution")
    p.add_argument("--scale-factor", type=above_one, default=1.1, help="detectMultiScale scaleFactor (default 1.1)")
    p.add_argument("--min-neighbors", type=int, default=5, help="detectMultiScale minNeighbors (default 5)")
    p.add_argument("--cascade", default=None,
                   help="lbpcascade_animeface.xml (default: the cached copy from tools/fetch_cascade.py)")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                   help="threads cropping in parallel (default: the number of cores)")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tqdm import tqdm

    if not os.path.isdir(args.input):
        print("error: --input {} is not a folder".format(args.input), file=sys.stderr)
        return 2
    if args.min_face is not None and args.min_face < faces.WINDOW:
        print("error: --min-face {} is below the cascade's {} px window".format(args.min_face, faces.WINDOW),
              file=sys.stderr)
        return 2
    if os.path.realpath(args.out) == os.path.realpath(args.input):
        print("error: --out {} is the --input folder: its manifest.jsonl would replace the input's; give a new "
              "folder".format(args.out), file=sys.stderr)
        return 2
    try:  # the inputs first: a bad posts.jsonl is named whether or not the cascade is there
        total = len(faces.list_inputs(args.input, exclude=args.out))
        cropper = faces.FaceCropper(args.cascade, size=args.size, margin=args.margin, scale_factor=args.scale_factor,
                                    min_neighbors=args.min_neighbors, min_face=args.min_face,
                                    refine=not args.no_refine)
    except (faces.CascadeNotFound, ImportError, ValueError) as e:
        print_error(e)
        return 2
    bar = tqdm(total=total, unit="img", disable=args.no_progress, file=sys.stderr)

    def on_image(source, result, summary):
        bar.update(1)
        if isinstance(result, str):
            bar.write("skipped {}: {}".format(source, result), file=sys.stderr)

    try:
        summary = faces.crop_folder(args.input, args.out, cropper, workers=args.workers, on_image=on_image)
    except (OSError, ValueError, ManifestError) as e:
        bar.close()
        print("error: {}".format(e), file=sys.stderr)
        return 1
    bar.close()
    print("images read {}, faces written {}, skipped (unreadable) {}, without a face {}, done earlier {}".format(
        summary.images_read, summary.faces_written, summary.skipped, summary.no_face, summary.already_done))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
