"""Seconds per 1,000 images of InceptionV3 pool3 features: Chainer (fast CPU path on and off) vs
the TorchScript original run by PyTorch, on the same images, interleaved round by round so a busy
machine slows all of them alike. Includes the resize of 96x96 faces to 299x299.

Figures are medians over --repeats rounds of --batch images after one warm-up round. Times are
printed, never asserted; the last line is ``ratio Chainer/PyTorch: X.XX`` (fast path on).

Usage::

    python bench/inception_speed.py [--batch 16] [--repeats 3] [--gpu -1] [--skip-own] [--skip-torch]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy  # noqa: E402

from chainer_dcgan.evaluation import inception  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.training.distributed import resolve_device  # noqa: E402

import chainer  # noqa: E402,I100


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=16, help="images per round and per forward pass (default 16)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds (default 3)")
    p.add_argument("--gpu", type=int, default=-1, help="GPU id for both; -1 (default) is the CPU")
    p.add_argument("--weights", default=None, help="default_1.pt (default: found as the library finds it)")
    p.add_argument("--skip-own", action="store_true", help="do not time Chainer's own functions (slowest)")
    p.add_argument("--skip-torch", action="store_true", help="do not time PyTorch")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    weights = inception.find_weights(args.weights)
    device = resolve_device(args.gpu)
    extractor = inception.FeatureExtractor(device, weights, batchsize=args.batch)
    x = numpy.random.RandomState(0).uniform(-1, 1, (args.batch, 3, 96, 96)).astype(numpy.float32)

    def chainer_fast():
        extractor.features(x)  # returns NumPy: waits for the GPU

    def chainer_own():
        with chainer.using_config("dcgan_fast", False):
            chainer_fast()

    runs = {"chainer (fast path)": chainer_fast}
    if not args.skip_own and args.gpu < 0:
        runs["chainer (own functions)"] = chainer_own
    if not args.skip_torch:
        try:
            import torch
        except ImportError:
            print("torch not installed: no PyTorch reference")
        else:
            tdev = "cuda:{}".format(args.gpu) if args.gpu >= 0 else "cpu"
            model = torch.jit.load(weights, map_location=tdev).eval()
            pixels = torch.from_numpy(numpy.clip(numpy.rint(x * 128 + 128), 0, 255)).to(tdev)

            def torch_run():
                with torch.no_grad():
                    n, c, h, w = pixels.shape
                    theta = torch.zeros(n, 2, 3, device=tdev)
                    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
                    theta[:, 0, 2] = 1.0 / w - 1.0 / 299
                    theta[:, 1, 2] = 1.0 / h - 1.0 / 299
                    grid = torch.nn.functional.affine_grid(theta, [n, c, 299, 299], align_corners=False)
                    y = torch.nn.functional.grid_sample(pixels, grid, mode="bilinear", padding_mode="border",
                                                        align_corners=False)
                    model((y - 128) / 128)
                    if tdev != "cpu":
                        torch.cuda.synchronize()
            runs["pytorch (TorchScript)"] = torch_run
    times = {name: [] for name in runs}
    for round_ in range(args.repeats + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if round_:
                times[name].append(time.perf_counter() - start)
    print("device {}, {} threads, batch {}, {} rounds".format(
        device, os.cpu_count(), args.batch, args.repeats))
    per_1000 = {name: statistics.median(t) / args.batch * 1000 for name, t in times.items()}
    for name, value in per_1000.items():
        print("{:<26} {:8.1f} s per 1,000 images".format(name, value))
    if "pytorch (TorchScript)" in per_1000:
        ratio = per_1000["chainer (fast path)"] / per_1000["pytorch (TorchScript)"]
        print("ratio Chainer/PyTorch: {:.2f}".format(ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
