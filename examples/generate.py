#!/usr/bin/env python
"""Write a grid of faces from a trained generator (the original's visualizer.py).

Loads npz weights (gen_iter_N.npz, or a trainer snapshot), an HDF5 file saved by the 2015
original or a shipped model by name (default), draws z uniform in [-1, 1] with --seed and writes a
--rows x --cols grid of the faces the generator makes in test mode (Generator.generate), on the CPU
or with --gpu/--device on a GPU (the same z either way). A conditional model
(train_faces.py --conditional) makes every face with the tags of --tags.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import (add_device_arguments, add_model_argument, device_from_args,  # noqa: E402
                               generator_from_args, output_image, positive_int, print_error, seed)
from chainer_dcgan.models import resolve_tags, sample_z  # noqa: E402
from chainer_dcgan.models.serialization import ModelFileError  # noqa: E402
from chainer_dcgan.utils import limits  # noqa: E402
from chainer_dcgan.utils.images import save_image, tile  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(p, "model")
    p.add_argument("--out", "-o", type=output_image, default="generated.png",
                   help="output image; the extension gives the format (default: generated.png)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the z drawn (default 0)")
    p.add_argument("--rows", type=positive_int, default=10, help="grid rows (default 10)")
    p.add_argument("--cols", type=positive_int, default=10, help="grid columns (default 10)")
    p.add_argument("--tags", default=None,
                   help="for a conditional model (train_faces.py --conditional): the tags every face is asked for, "
                        "comma-separated, each optionally with a weight in [0, 1], e.g. \"long_hair,blue_eyes=0.5\"")
    p.add_argument("--colors", type=positive_int, default=None,
                   help="write an adaptive palette of this many colours (2..256; .png or .gif): smaller files, "
                        "e.g. for documentation (default: full colour)")
    add_device_arguments(p, "generate")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        device = device_from_args(args)
        gen = generator_from_args(args, device)
        y = resolve_tags(gen, args.tags)
        limits.check_count("rows", args.rows * args.cols, limits.face_bytes(gen.size),
                           "faces of {} px in one batch".format(gen.size),
                           "{} x --cols {}".format(args.rows, args.cols))
    except (ModelFileError, ValueError) as e:
        print_error(e)
        return 2
    z = sample_z(args.rows * args.cols, gen.z_dim, args.seed)  # drawn on the host: the same z on any device
    try:
        save_image(args.out, tile(gen.generate(z, y), args.rows, args.cols), colors=args.colors)
    except (ValueError, OSError) as e:
        print_error(e)
        return 2
    print("wrote {} ({}x{} faces)".format(args.out, args.rows, args.cols))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
