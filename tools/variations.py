#!/usr/bin/env python
"""Variations of one face: a z and its neighbours clip(z + strength * u, -1, 1), u uniform in [-1, 1].

The grid's centre cell (or its first cell, for an even grid) is the face of z itself; the other
cells are neighbours. Small strengths give the same character with small changes; larger ones
drift to other characters. z is drawn with --seed, or read with --z (.npy/.json; --index picks
one row of a (K, 100) file, e.g. one saved by tools/interpolate.py --save-z).

Example:
  python tools/variations.py --model result/gen_iter_10000.npz --strength 0.3 --out variations.png
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan import zspace  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import (add_device_arguments, add_model_argument, device_from_args,  # noqa: E402
                               generator_from_args, non_negative_float, output_file, output_image, positive_int,
                               print_error, seed)
from chainer_dcgan.models import resolve_tags  # noqa: E402
from chainer_dcgan.models.serialization import ModelFileError  # noqa: E402
from chainer_dcgan.utils import limits  # noqa: E402
from chainer_dcgan.utils.images import save_image, tile  # noqa: E402

import numpy  # noqa: E402,I100


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(p)
    p.add_argument("--seed", type=seed, default=0,
                   help="seed of z (when --z is not given) and of the neighbours' noise (default 0)")
    p.add_argument("--z", default=None, help="read z from this .npy/.json file instead of drawing it")
    p.add_argument("--index", type=int, default=0, help="with --z holding several vectors, which one (default 0)")
    p.add_argument("--strength", type=non_negative_float, default=0.3,
                   help="noise strength: neighbours are clip(z + strength * u, -1, 1) (default 0.3)")
    p.add_argument("--rows", type=positive_int, default=5, help="grid rows (default 5)")
    p.add_argument("--cols", type=positive_int, default=5, help="grid columns (default 5)")
    p.add_argument("--out", type=output_image, default="variations.png", help="the grid image (default variations.png)")
    p.add_argument("--pad", type=int, default=2, help="pixels between faces (default 2)")
    p.add_argument("--save-z", type=output_file, default=None,
                   help="also save the grid's z's (.npy or .json), row by row, for reuse with --z/--index")
    add_device_arguments(p, "generate")
    p.add_argument("--batch-size", type=positive_int, default=100, help="faces per forward pass (default 100)")
    p.add_argument("--tags", default=None,
                   help="for a conditional model (train_faces.py --conditional): the tags every face is asked for, "
                        "comma-separated, each optionally with a weight in [0, 1], e.g. \"long_hair,blue_eyes=0.5\"")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        gen = generator_from_args(args, device_from_args(args))
        y = resolve_tags(gen, args.tags)
        limits.check_count("rows", args.rows * args.cols, limits.face_bytes(gen.size),
                           "faces of {} px".format(gen.size), "{} x --cols {}".format(args.rows, args.cols))
        limits.check_count("batch_size", args.batch_size, limits.face_bytes(gen.size),
                           "faces of {} px in one batch".format(gen.size))
        if args.z:
            zs = zspace.read_z(args.z, gen.z_dim)
            if not -len(zs) <= args.index < len(zs):
                raise ValueError("--index {} out of range for the {} vectors in {}".format(args.index, len(zs), args.z))
            z = zs[args.index]
        else:
            z = zspace.sample_z(1, gen.z_dim, args.seed)[0]
        n = args.rows * args.cols
        centre = (args.rows // 2) * args.cols + args.cols // 2 if args.rows % 2 and args.cols % 2 else 0
        noise_rs = numpy.random.RandomState(args.seed + 1)  # not the stream z came from
        grid = zspace.variations(z, n, args.strength, noise_rs)
        grid[centre] = z
        faces = zspace.generate(gen, grid, args.batch_size, y=y)
        save_image(args.out, tile(faces, args.rows, args.cols, pad=args.pad))
        print("wrote {} (z in cell {} and {} neighbours at strength {:g})".format(
            args.out, centre, n - 1, args.strength))
        if args.save_z:
            zspace.write_z(args.save_z, grid)
            print("wrote {} ({} z's)".format(args.save_z, n))
    except (ModelFileError, zspace.ZFileError, ValueError, OSError) as e:
        print_error(e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
