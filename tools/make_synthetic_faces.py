#!/usr/bin/env python
"""Write the procedural anime-face dataset: PNGs plus manifest.jsonl with safebooru-style tags.

Example::

    python tools/make_synthetic_faces.py --out data/synthetic --n 20000 --seed 0 --workers 2

Running it again with the same --out and --seed resumes: faces already in the manifest are skipped.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import non_negative_int, output_folder, output_image, positive_int  # noqa: E402
from chainer_dcgan.datasets.synthetic import TAGS, SyntheticFaces, write_dataset  # noqa: E402
from chainer_dcgan.utils.images import is_image_file  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Tags a face can carry: " + ", ".join(TAGS),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=output_folder, required=True,
                        help="dataset folder to write (created if missing); images go to OUT/images/NNN/*.png "
                             "and one JSON record per image to OUT/manifest.jsonl")
    parser.add_argument("--n", type=positive_int, required=True,
                        help="number of faces to have in the folder (> 0); faces 0..N-1 of the seed")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="dataset seed (>= 0, default 0); face i depends only on (seed, i), and a folder "
                             "can only be resumed with the seed it was started with")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="processes drawing and writing in parallel (default 1)")
    parser.add_argument("--grid", metavar="PNG", type=output_image,
                        help="also save a 10x10 preview grid of the first faces (up to 100) to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def foreign_images(folder):
    """True when ``folder`` holds image files but no manifest.jsonl: someone else's images."""
    if not os.path.isdir(folder) or os.path.exists(os.path.join(folder, "manifest.jsonl")):
        return False
    return any(is_image_file(name) for _, _, names in os.walk(folder) for name in names)


def main(argv=None):
    args = parse_args(argv)
    if foreign_images(args.out):
        print("error: --out {} already holds images and no manifest.jsonl: writing a dataset there would mix "
              "them up; give a new folder".format(args.out), file=sys.stderr)
        return 2
    from tqdm import tqdm

    with tqdm(total=args.n, unit="face", disable=args.quiet, desc="synthetic faces") as bar:
        def progress(done, total):
            bar.update(done - bar.n)

        try:
            written = write_dataset(args.out, args.n, seed=args.seed, workers=args.workers, callback=progress)
        except (ValueError, OSError) as e:
            bar.close()
            print("error: {}".format(e), file=sys.stderr)
            return 2
        bar.update(args.n - bar.n)  # all faces were already there
    if args.grid:
        import numpy

        from chainer_dcgan.utils.images import save_image, tile

        faces = SyntheticFaces(min(args.n, 100), seed=args.seed)
        save_image(args.grid, tile(numpy.stack([faces[i] for i in range(len(faces))]), 10, 10))
    if not args.quiet:
        print("{} new faces; faces 0..{} of seed {} are listed in {}".format(
            written, args.n - 1, args.seed, os.path.join(args.out, "manifest.jsonl")))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
