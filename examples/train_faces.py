#!/usr/bin/env python
"""Train the 2015 anime-face DCGAN, faithful by default (CPU, GPU through CuPy, or ChainerMN), or with
--conditional a tag-conditional one (ask for tags at generation time).

Without --dataset it trains on the embedded procedural anime faces. Outputs in --out: trainer
snapshots (snapshot_iter_N), generator/discriminator weights (gen_iter_N.npz, dis_iter_N.npz),
log, loss.png, stats.png and sample grids in preview/ (with --conditional: one tag set per grid
row, named in preview/legend.txt).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.models import hparams  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import (add_device_arguments, augmentation_policy, device_from_args, fraction,  # noqa: E402
                               output_folder, positive_float, positive_int, print_error, seed, tag_list)
from chainer_dcgan.datasets import ImageDataset, SyntheticFaces, TaggedDataset  # noqa: E402
from chainer_dcgan.functions import _blas, _kernels, stride2_conv  # noqa: E402
from chainer_dcgan.training.distributed import create_context  # noqa: E402
from chainer_dcgan.utils.atomic import FolderLock, FolderLocked  # noqa: E402
from chainer_dcgan.utils import limits, memory  # noqa: E402
from chainer_dcgan.training.snapshots import (CONFIG_NAME, RunConfig, config_differences,  # noqa: E402
                                     newest_loadable_snapshot, read_snapshot, remove_stale_temporaries)
from chainer_dcgan.training import build_trainer, resume  # noqa: E402

import numpy  # noqa: E402,I100

#: Flags that may change when a run is resumed; every other flag (those added later included) is part
#: of the run's configuration, stored in its snapshots, and must be given the same on --resume.
RESUMABLE_FLAGS = ("out", "resume", "iteration", "epoch", "no_progress", "snapshot_interval",
                   "display_interval", "preview_interval", "gpu", "device", "in_memory", "communicator")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_device_arguments(p, "train")
    p.add_argument("--dataset", default=None,
                   help="folder of face images, optionally with manifest.jsonl; default: the embedded "
                        "procedural dataset")
    p.add_argument("--synthetic-size", type=positive_int, default=20000,
                   help="number of embedded procedural faces when --dataset is not given (default 20000)")
    p.add_argument("--in-memory", action="store_true",
                   help="hold the dataset's encoded image files in memory and decode per batch")
    p.add_argument("--out", "-o", type=output_folder, default="result",
                   help="output folder (default: result); one training at a time may write into it")
    p.add_argument("--batchsize", "-b", type=positive_int, default=hparams.BATCH_SIZE,
                   help="minibatch size per process (default {})".format(hparams.BATCH_SIZE))
    length = p.add_mutually_exclusive_group()
    length.add_argument("--iteration", "-i", type=positive_int, default=None,
                        help="number of iterations to train (default: 1000 unless --epoch)")
    length.add_argument("--epoch", "-e", type=positive_int, default=None, help="number of epochs to train")
    p.add_argument("--snapshot-interval", type=positive_int, default=1000,
                   help="iterations between snapshots (default 1000); a final one is written too")
    p.add_argument("--display-interval", type=positive_int, default=100,
                   help="iterations between log lines and loss-plot points (default 100)")
    p.add_argument("--preview-interval", type=positive_int, default=None,
                   help="iterations between 10x10 sample grids (default: --display-interval); the last "
                        "iteration draws one too")
    p.add_argument("--seed", type=seed, default=0, help="seed of weights, z, flips and shuffling (default 0)")
    p.add_argument("--resume", nargs="?", const="newest", default=None,
                   help="resume from a trainer snapshot; with no value, the newest one in --out that loads (a "
                        "damaged newer one is skipped, with a warning). The flags that define the run must "
                        "be the same as when it was written (all but --{}); a mismatch is refused"
                        .format(", --".join(f.replace("_", "-") for f in RESUMABLE_FLAGS)))
    p.add_argument("--loss", choices=("softmax", "hinge"), default="softmax",
                   help="adversarial loss: softmax (faithful 2-class cross-entropy) or hinge")
    p.add_argument("--size", type=int, choices=hparams.SIZES, default=hparams.IMAGE_SIZE,
                   help="image side in pixels of the models and the data, one of {} (default {}, the original's); "
                        "images of --dataset are resized to it, the embedded faces are drawn at it".format(
                            ", ".join(map(str, hparams.SIZES)), hparams.IMAGE_SIZE))
    p.add_argument("--spectral-norm", action="store_true",
                   help="spectral normalization on every layer of the discriminator, which then has no BatchNorm")
    p.add_argument("--lr-gen", type=positive_float, default=hparams.ADAM_ALPHA,
                   help="Adam learning rate of the generator (default {:g})".format(hparams.ADAM_ALPHA))
    p.add_argument("--lr-dis", type=positive_float, default=hparams.ADAM_ALPHA,
                   help="Adam learning rate of the discriminator (default {:g}); e.g. 4e-4 with --lr-gen 1e-4 "
                        "for two time-scale updates".format(hparams.ADAM_ALPHA))
    p.add_argument("--ema", type=fraction, default=None, metavar="DECAY",
                   help="keep a moving average of the generator's weights with this decay (e.g. 0.999): it "
                        "draws the sample grids, statistics and FID and is saved as gen_ema_iter_N.npz "
                        "(default: none)")
    p.add_argument("--diffaugment", type=augmentation_policy, default=None, metavar="POLICY",
                   help="differentiable augmentation of D's inputs, real and fake (Zhao et al. 2020): "
                        "comma-separated steps of color, translation, cutout, e.g. color,translation,cutout "
                        "(default: none, as the original)")
    p.add_argument("--fid-interval", type=positive_int, default=None,
                   help="iterations between FID/KID/precision-recall evaluations (default: none); needs the "
                        "Inception weights once: python tools/fetch_inception.py")
    p.add_argument("--fid-samples", type=positive_int, default=1000,
                   help="generated and real faces per FID evaluation (default 1000; about 0.5 s each on a CPU)")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    p.add_argument("--communicator", default=None,
                   help="train data-parallel with ChainerMN: naive (CPU or GPU), pure_nccl (GPUs, needs NCCL), "
                        "flat or non_cuda_aware (GPUs); launch with mpiexec -n N. --gpu then gives each "
                        "rank its own GPU (its index on the node) and --batchsize is per rank")
    p.add_argument("--mn-batchnorm", action="store_true",
                   help="with --communicator: batch statistics over all ranks (MultiNodeBatchNormalization)")
    p.add_argument("--conditional", action="store_true",
                   help="train tag-conditional models (conditional-BatchNorm G, projection D) on the data's tags; "
                        "needs tags: the embedded data has them, a --dataset needs a manifest.jsonl")
    vocabulary = p.add_mutually_exclusive_group()
    vocabulary.add_argument("--tags", type=tag_list, default=None,
                            help="with --conditional: comma-separated tags to condition on, in this order "
                                 "(e.g. blonde_hair,blue_hair,long_hair); default: see --min-tag-count")
    vocabulary.add_argument("--min-tag-count", type=positive_int, default=None,
                            help="with --conditional: condition on every tag found on at least N training images "
                                 "and missing from as many (default 1: every tag that varies)")
    args = p.parse_args(argv)
    if (args.tags is not None or args.min_tag_count is not None) and not args.conditional:
        p.error("--tags and --min-tag-count need --conditional")
    if args.mn_batchnorm and args.communicator is None:
        p.error("--mn-batchnorm needs --communicator")
    return args


#: The flags of the library parameters that are not named --PARAMETER (see chainer_dcgan.cli.error_message).
FLAGS = {"min_count": "--min-tag-count"}


def flag(key):
    """The flag of a run-configuration key (an argparse dest)."""
    return "--" + key.replace("_", "-")


def load_dataset(args):
    if args.dataset is None:
        dataset = SyntheticFaces(args.synthetic_size, seed=args.seed, cache=True, size=args.size)
    else:
        dataset = ImageDataset(args.dataset, size=args.size, in_memory=args.in_memory)
    return TaggedDataset(dataset, args.tags, args.min_tag_count) if args.conditional else dataset


def run_config(args):
    """The flags that define the run (all but :data:`RESUMABLE_FLAGS`), as JSON values."""
    return {key: value for key, value in sorted(vars(args).items()) if key not in RESUMABLE_FLAGS}


def check_resume(args, snapshot):
    """Refuse a snapshot written with other run-defining flags, or an --iteration below its own."""
    iteration, saved = read_snapshot(snapshot)
    name = snapshot if isinstance(snapshot, str) else "the snapshot"
    if saved is not None:
        differences = config_differences(saved, run_config(args), name=flag)
        if differences:
            raise ValueError("--resume {}: written with other flags: {}; give the same ones (or another --out)"
                             .format(name, "; ".join(differences)))
    if args.iteration is not None and args.iteration < iteration:
        raise ValueError("--iteration {} is below the resumed snapshot's iteration {} ({})".format(
            args.iteration, iteration, name))


def main(argv=None):
    args = parse_args(argv)
    context = None
    lock = None
    try:
        limits.check_count("batchsize", args.batchsize, limits.training_bytes(args.size),
                           "training examples of {} px".format(args.size))
        if args.dataset is None:
            limits.check_count("synthetic_size", args.synthetic_size, 3 * args.size ** 2,
                               "synthetic faces of {} px held in memory".format(args.size))
        context = create_context(args.communicator, args.mn_batchnorm)
        if context.is_root:
            lock = FolderLock(args.out, "a training")  # held until this process ends
            remove_stale_temporaries(args.out)  # what a killed run left: nobody else writes here now
        device = device_from_args(args, context)
        # every rank needs the conditional vocabulary, which comes from the data
        dataset = load_dataset(args) if context.is_root or args.communicator is None or args.conditional else None
        stop = (args.epoch, "epoch") if args.epoch else (args.iteration or 1000, "iteration")
        trainer = build_trainer(
            dataset, args.out, stop, device, batchsize=args.batchsize, seed=args.seed,
            snapshot_interval=args.snapshot_interval, display_interval=args.display_interval,
            preview_interval=args.preview_interval, context=context, progress=not args.no_progress,
            loss=args.loss, fid_interval=args.fid_interval, fid_samples=args.fid_samples,
            tags=dataset.tags if args.conditional else None, size=args.size,
            spectral_norm=args.spectral_norm, lr_gen=args.lr_gen, lr_dis=args.lr_dis, ema=args.ema,
            augment=args.diffaugment)
        if context.is_root:
            trainer.extend(RunConfig(run_config(args)), name=CONFIG_NAME)
        if args.resume:
            snapshot = args.resume
            if args.resume == "newest":
                warn = (lambda line: print("warning: " + line, file=sys.stderr)) if context.is_root else None
                snapshot = newest_loadable_snapshot(args.out, warn)
            snapshot = context.broadcast_file(snapshot)  # the root's snapshot, read by every rank
            if snapshot is None:
                raise FileNotFoundError("--resume: no loadable snapshot_iter_* in {}".format(args.out))
            context.check_snapshot(snapshot)
            if context.is_root:
                check_resume(args, snapshot)
            resume(trainer, snapshot)
        if context.is_root:
            print("device {}, {} examples, batch {} x {} process(es), out {}".format(
                device, len(dataset), args.batchsize, context.size, args.out), flush=True)
            print("recipe: size {} px, loss {}, spectral norm {}, lr gen {:g} dis {:g}, ema {}, diffaugment {}"
                  .format(args.size, args.loss, "on" if args.spectral_norm else "off", args.lr_gen, args.lr_dis,
                          "off" if args.ema is None else "{:g}".format(args.ema),
                          ",".join(args.diffaugment) if args.diffaugment else "off"), flush=True)
            if args.conditional:
                print("conditional on {} tags: {}".format(len(dataset.tags), ", ".join(dataset.tags)), flush=True)
            if device.xp is numpy:
                print("cpu: products through {}; loops: {}; layers: {}; {}".format(
                    _blas.library() or "numpy.matmul", _kernels.description(), stride2_conv.description(),
                    memory.policy()), flush=True)
    except (ValueError, OSError, FolderLocked) as e:
        print_error(e, FLAGS)
        if lock is not None:
            lock.release()
        if context is not None and context.size > 1:
            context.abort(2)  # under mpiexec, ends every rank (the others may wait in a collective)
        return 2
    try:
        trainer.run(show_loop_exception_msg=False)  # the error: line below says it all, without a traceback
    except OSError as e:  # e.g. a full disk: every file written before is whole (atomic writes)
        print("error: {} (the snapshots and files written before are kept; --resume continues)".format(
            " ".join(str(e).split())), file=sys.stderr)
        return 2
    finally:
        if lock is not None:
            lock.release()
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
