#!/usr/bin/env python
"""Train the inversion encoder E for a generator (image -> z; see chainer_dcgan.zspace.inversion).

Stage 1 (--iterations steps): pairs (G(z), z) for fresh z, loss = mean (E(x) - z)^2 (times --z-weight)
+ mean |G(E(x)) - x| (times --pixel-weight). Stage 2 (--real-iterations steps): real faces with the
pixel loss alone: the embedded faces of --real-seed (the default model was trained on seed 0) or a
folder of face crops (--real-folder). --feature-weight adds to both stages a feature loss (the tag
classifier's features of G(E(x)) against those of x). G is not changed. The run saves a checkpoint (--checkpoint,
default OUT.ckpt.npz) every --checkpoint-interval steps and resumes from it when started again
with the same flags. --out gets E in float16 with the generator's identity recorded, so it is
refused for any other generator.

Example:
  python tools/train_encoder.py --model default --out encoder.npz --iterations 1200 --real-iterations 200
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.zspace import inversion, tagging  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.cli import (add_device_arguments, add_model_argument, device_from_args,  # noqa: E402
                               generator_from_args, non_negative_float, non_negative_int, output_file,
                               positive_float, positive_int, print_error, run_command, seed)
from chainer_dcgan.datasets.images import ImageDataset  # noqa: E402
from chainer_dcgan.datasets.synthetic import SyntheticFaces  # noqa: E402
from chainer_dcgan.models import is_conditional, pretrained  # noqa: E402
from chainer_dcgan.models.serialization import ModelFileError  # noqa: E402
from chainer_dcgan.utils import limits  # noqa: E402
from chainer_dcgan.utils.images import to_image  # noqa: E402

import numpy  # noqa: E402,I100


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(p)
    p.add_argument("--out", type=output_file, required=True, help="the encoder file to write (npz, float16)")
    p.add_argument("--iterations", type=non_negative_int, default=1200,
                   help="stage-1 steps on generated pairs (default 1200)")
    p.add_argument("--real-iterations", type=non_negative_int, default=0,
                   help="stage-2 steps on real faces, pixel loss only (default 0)")
    p.add_argument("--real-seed", type=seed, default=0,
                   help="dataset seed of the embedded faces for stage 2 (default 0: the default model's own)")
    p.add_argument("--real-count", type=positive_int, default=4000,
                   help="how many embedded faces (indices 0..N-1) stage 2 draws from (default 4000)")
    p.add_argument("--real-folder", default=None, help="a folder of face crops for stage 2 instead of embedded faces")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per step (default 32)")
    p.add_argument("--z-weight", type=non_negative_float, default=1.0, help="weight of the z loss (default 1)")
    p.add_argument("--pixel-weight", type=non_negative_float, default=1.0,
                   help="weight of the pixel loss (default 1)")
    p.add_argument("--feature-weight", type=non_negative_float, default=0.0,
                   help="weight of a feature loss in both stages: mean squared difference of the tag classifier's "
                        "last convolutional features of G(E(x)) and of x (default 0: none)")
    p.add_argument("--classifier", default=None,
                   help="the tag classifier for --feature-weight (default: the one shipped with --model)")
    p.add_argument("--lr", type=positive_float, default=5e-4, help="Adam's step size (default 5e-4)")
    p.add_argument("--width", type=positive_int, default=32,
                   help="channels of E's first convolution (default 32: about 1.6 M parameters, 3 MB in float16)")
    p.add_argument("--seed", type=seed, default=0, help="seed of E's initial weights and of every step's draws")
    p.add_argument("--checkpoint", type=output_file, default=None,
                   help="resumable checkpoint (default OUT.ckpt.npz)")
    p.add_argument("--checkpoint-interval", type=positive_int, default=50, help="steps between checkpoints")
    p.add_argument("--display-interval", type=positive_int, default=10, help="steps between progress lines")
    add_device_arguments(p, "train")
    return p.parse_args(argv)


def _real_faces(args, size):
    if args.real_folder is not None:
        if not os.path.isdir(args.real_folder):
            raise ValueError("--real-folder {}: not a folder".format(args.real_folder))
        data = ImageDataset(args.real_folder, size=size)
        if not len(data):
            raise ValueError("--real-folder {}: holds no images".format(args.real_folder))
        return numpy.stack([to_image(data[i]) for i in range(len(data))])
    data = SyntheticFaces(args.real_count, seed=args.real_seed, size=size)
    return numpy.stack([data.image(i) for i in range(len(data))])


def main(argv=None):
    args = parse_args(argv)
    checkpoint = args.checkpoint or os.path.splitext(args.out)[0] + ".ckpt.npz"
    try:
        gen = generator_from_args(args)
        limits.check_count("batch_size", args.batch_size, limits.training_bytes(gen.size),
                           "training examples of {} px".format(gen.size))
        if args.real_iterations and args.real_folder is None:
            limits.check_count("real_count", args.real_count, 3 * gen.size ** 2,
                               "embedded faces of {} px held in memory".format(gen.size))
        if is_conditional(gen):
            raise ValueError("--model {}: a conditional generator; train its encoder with "
                             "chainer_dcgan.zspace.inversion.train_encoder(..., y_rows=...)".format(args.model))
        gen.to_device(device_from_args(args))
        real = _real_faces(args, gen.size) if args.real_iterations else None
        features = None
        if args.feature_weight:
            source = args.classifier or pretrained.companion(args.model, pretrained.CLASSIFIER)
            if source is None:
                raise ValueError("--feature-weight: {} comes with no tag classifier; give --classifier FILE".format(
                    args.model))
            classifier = tagging.load_classifier(source)
            classifier.to_device(gen.device)
            features = classifier.features
        numpy.random.seed(args.seed)
        encoder = inversion.Encoder(gen.z_dim, gen.size, args.width, inversion.generator_digest(gen))
        encoder.to_device(gen.device)
        start = time.time()
        sums = {}

        def progress(it, stage, losses):
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            if it % args.display_interval == 0:
                print("step {} (stage {}) {} {:.0f} s".format(it, stage, " ".join(
                    "{} {:.4f}".format(k, v / args.display_interval) for k, v in sorted(sums.items())),
                    time.time() - start), flush=True)
                sums.clear()

        inversion.train_encoder(gen, encoder, args.iterations, args.batch_size, args.z_weight, args.pixel_weight,
                                real, args.real_iterations, lr=args.lr, seed=args.seed, checkpoint=checkpoint,
                                checkpoint_interval=args.checkpoint_interval, callback=progress,
                                features=features, feature_weight=args.feature_weight)
        inversion.save_encoder(args.out, encoder)
        print("wrote {} ({} bytes; {:.0f} s this run)".format(args.out, os.path.getsize(args.out), time.time() - start))
    except (ModelFileError, tagging.TaggedDatasetError, ValueError, OSError) as e:
        print_error(e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
