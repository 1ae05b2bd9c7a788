#!/usr/bin/env python
"""Walk through a trained generator's z-space: a sheet of interpolations and a looping animation.

The sheet has --rows rows of --steps faces each; row i morphs z_i into z_(i+1), so a smooth sheet
shows the model has learned a continuous face space rather than memorised its data. The
animation (GIF or animated WebP, by extension) loops through --keys of the same z's and back to
the first. The z's are drawn uniform in [-1, 1] with --seed, or read with --z (.npy/.json,
shape (K, 100)).

Example:
  python tools/interpolate.py --model result/gen_iter_10000.npz --out interp.png --animation loop.gif
"""
import argparse
import os
import sys

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan import zspace  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import (add_device_arguments, add_model_argument, device_from_args,  # noqa: E402
                               generator_from_args, output_file, output_image, positive_int, print_error, seed)
from chainer_dcgan.models import resolve_tags  # noqa: E402
from chainer_dcgan.models.serialization import ModelFileError  # noqa: E402
from chainer_dcgan.utils import limits  # noqa: E402
from chainer_dcgan.utils.images import save_animation, save_image, tile  # noqa: E402



def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(p)
    p.add_argument("--seed", type=seed, default=0, help="seed of the random z's (default 0)")
    p.add_argument("--z", default=None,
                   help="read the z's from this .npy/.json file, shape (K, 100), instead of drawing them")
    p.add_argument("--out", type=output_image, default="interpolation.png",
                   help="the sheet image (PNG/JPEG/WebP by extension; default interpolation.png)")
    p.add_argument("--rows", type=positive_int, default=8,
                   help="interpolations in the sheet (default 8; with --z at most K - 1)")
    p.add_argument("--steps", type=positive_int, default=10,
                   help="faces per interpolation, both ends included, >= 2 (default 10)")
    p.add_argument("--method", choices=zspace.INTERPOLATIONS, default="linear",
                   help="linear (straight line) or slerp (great-circle arc) interpolation (default linear)")
    p.add_argument("--animation", type=output_file, default=None,
                   help="also write a looping animation here (.gif or .webp)")
    p.add_argument("--keys", type=positive_int, default=4,
                   help="z's the animation loops through, >= 2 (default 4; the first of the sheet's z's)")
    p.add_argument("--frames-per-key", type=positive_int, default=16,
                   help="animation frames from one key z to the next (default 16)")
    p.add_argument("--frame-ms", type=positive_int, default=80, help="display time of a frame in ms (default 80)")
    p.add_argument("--scale", type=positive_int, default=2,
                   help="enlarge the animation's faces by this integer factor, nearest neighbour (default 2)")
    p.add_argument("--pad", type=int, default=2, help="pixels between faces in the sheet (default 2)")
    p.add_argument("--save-z", type=output_file, default=None,
                   help="also save the z's used (.npy or .json) for reuse with --z")
    add_device_arguments(p, "generate")
    p.add_argument("--batch-size", type=positive_int, default=100, help="faces per forward pass (default 100)")
    p.add_argument("--tags", default=None,
                   help="for a conditional model (train_faces.py --conditional): the tags every face is asked for, "
                        "comma-separated, each optionally with a weight in [0, 1], e.g. \"long_hair,blue_eyes=0.5\"")
    args = p.parse_args(argv)
    if args.steps < 2:
        p.error("--steps must be >= 2")
    if args.animation and not args.animation.lower().endswith((".gif", ".webp")):
        p.error("--animation must end in .gif or .webp, got {}".format(args.animation))
    if args.animation and args.keys < 2:
        p.error("--keys must be >= 2")
    if args.animation and args.frames_per_key < 2:
        p.error("--frames-per-key must be >= 2")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        gen = generator_from_args(args, device_from_args(args))
        y = resolve_tags(gen, args.tags)
        face = "faces of {} px".format(gen.size)
        limits.check_count("rows", args.rows * args.steps, limits.face_bytes(gen.size), face,
                           "{} x --steps {}".format(args.rows, args.steps))
        limits.check_count("batch_size", args.batch_size, limits.face_bytes(gen.size), face + " in one batch")
        if args.animation:
            limits.check_count("keys", args.keys * args.frames_per_key, 3 * (gen.size * args.scale) ** 2,
                               "animation frames of {} px".format(gen.size * args.scale),
                               "{} x --frames-per-key {} (--scale {})".format(args.keys, args.frames_per_key,
                                                                             args.scale))
        if args.z:
            z = zspace.read_z(args.z, gen.z_dim)
            if len(z) < 2:
                raise ValueError("--z {}: interpolation needs at least 2 vectors, got 1".format(args.z))
            rows = min(args.rows, len(z) - 1)
        else:
            z = zspace.sample_z(max(args.rows + 1, args.keys), gen.z_dim, args.seed)
            rows = args.rows
        sheet_z = [zspace.interpolate(z[i], z[i + 1], args.steps, args.method) for i in range(rows)]
        faces = zspace.generate(gen, numpy.concatenate(sheet_z), args.batch_size, y=y)
        save_image(args.out, tile(faces, rows, args.steps, pad=args.pad))
        print("wrote {} ({} rows x {} faces, {})".format(args.out, rows, args.steps, args.method))
        if args.animation:
            keys = z[:args.keys]
            path = zspace.loop_path(keys, args.frames_per_key, args.method)
            frames = [enlarge(tile(face[None], 1, 1), args.scale)
                      for face in zspace.generate(gen, path, args.batch_size, y=y)]
            save_animation(args.animation, frames, args.frame_ms)
            print("wrote {} ({} frames looping through {} z's)".format(args.animation, len(frames), len(keys)))
        if args.save_z:
            zspace.write_z(args.save_z, z)
            print("wrote {} ({} z's)".format(args.save_z, len(z)))
    except (ModelFileError, zspace.ZFileError, ValueError, OSError) as e:
        print_error(e)
        return 2
    return 0


def enlarge(image, scale):
    """Nearest-neighbour enlargement of a ``uint8 (H, W, 3)`` image by an integer factor."""
    return image.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else image


if __name__ == "__main__":
    sys.exit(run_command(main))
