#!/usr/bin/env python
"""Compute tag vectors for a trained generator, measure them, and write the demo's JSON.

1. Train a small multi-label tag classifier on the tagged faces of --dataset (a folder with
   manifest.jsonl; e.g. one written by the synthetic-face writer), holding out --holdout of them to
   report its accuracy beside chance (or load one with --classifier).
2. Draw --samples z's uniform in [-1, 1], generate their faces with --model and label them; for each
   tag on at least --min-count faces (and missing from as many), its vector is (--method)
   mean: mean z (faces with it) - mean z (faces without);
   linear (default): the normal of a logistic regression of the tag's probability on z;
   orthogonal: that normal less its projection on the normals of the tags that can go with it;
   scaled so max |v_i| = 1, then shortened (--reach P, default 0.9) to the length at which a
   logistic model of the tag predicts a mean probability P at slider 1.
   With --refine N, each vector then takes N Adam steps through the generator and the classifier
   on the labelled z's (tagging.refine_vectors): the faces are pulled toward the tag until its
   mean probability reaches --reach, while the mean absolute change of the other tags (the
   off-target change below; rival tags such as the other hair colours aside) is made small. It
   costs N generator passes per tag (forward and backward) but makes far more sliders clean
   (issue 21's bar: below 0.3 at z0, above 0.8 at s = 1, off@1 below 0.1). With --calibrate P,
   each vector is then scaled (at most 2x) to the length at which its tag's mean probability on
   --calibrate-samples of the labelled faces, through the generator and the classifier, is P.
3. Measure each vector: the classifier's mean probability of its tag on faces from --effect-samples
   z0's versus from clip(z0 + s * v, -1, 1) for each s in --strengths, and at s = 1 the mean absolute
   change of every other tag's probability ("off@1"); print the table (with the classifier's held-out
   balanced accuracy per tag, "clf acc", when it was trained here). With --min-reach P, a tag whose
   probability at s = 1 stays below P gets no slider (the model does not draw it); with
   --max-side-effect C, neither does a tag whose slider moves some other tag by more than C on
   average (it draws that tag instead: an animal_ears slider that turns the hair blonde).
4. Write --out atomically: {"tags": [{"name", "v": [100 floats], "count", "effect"}, ...], ...}.

Example:
  python tools/tag_vectors.py --dataset data/synthetic --model result/gen_iter_10000.npz --out tags.json
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan import zspace  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import (add_device_arguments, add_model_argument, device_from_args,  # noqa: E402
                               finite_float, fraction, generator_from_args, non_negative_int,
                               open_probability, output_file, output_image, positive_int,
                               print_error, probability, seed, tag_list)
from chainer_dcgan.models.serialization import ModelFileError  # noqa: E402
from chainer_dcgan.zspace import tagging  # noqa: E402
from chainer_dcgan.utils.images import save_image, tile  # noqa: E402

import numpy  # noqa: E402,I100


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(p)
    p.add_argument("--dataset", default=None,
                   help="tagged dataset folder (manifest.jsonl + images) to train the classifier on; "
                        "required unless --classifier is given")
    p.add_argument("--classifier", default=None,
                   help="use this classifier (saved with --save-classifier, or a shipped model's name for the one "
                        "shipped with it, e.g. default) instead of training one")
    p.add_argument("--save-classifier", type=output_file, default=None, help="save the trained classifier here (npz)")
    p.add_argument("--out", type=output_file, default="tag_vectors.json", help="output JSON (default tag_vectors.json)")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed of the classifier's training and of the z's (labelled: seed, measured: seed + 1; "
                        "default 0)")
    p.add_argument("--tags", type=tag_list, default=None,
                   help="comma-separated tags to make vectors for (default: every tag on at least --min-tag-images "
                        "images, or every tag of --classifier); with --classifier each must be one of its tags")
    p.add_argument("--min-tag-images", type=positive_int, default=20,
                   help="a dataset tag is learnt when at least this many images have it and as many lack it "
                        "(default 20)")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N dataset records")
    p.add_argument("--holdout", type=fraction, default=0.1,
                   help="fraction of the dataset held out to report the classifier's accuracy (default 0.1)")
    p.add_argument("--epochs", type=positive_int, default=10, help="classifier training epochs (default 10)")
    p.add_argument("--width", type=positive_int, default=16,
                   help="channels of the classifier's first layer (default 16)")
    p.add_argument("--downscale", type=positive_int, default=2, choices=(1, 2, 3, 4),
                   help="the classifier average-pools its 96x96 input by this factor first (default 2)")
    p.add_argument("--samples", type=positive_int, default=2000,
                   help="generated faces labelled to compute the vectors (default 2000)")
    p.add_argument("--min-count", type=positive_int, default=20,
                   help="a tag gets a vector when at least this many labelled faces have it and as many lack it "
                        "(default 20)")
    p.add_argument("--threshold", type=probability, default=0.5,
                   help="a generated face has a tag when the classifier's probability is >= this (default 0.5)")
    p.add_argument("--method", choices=sorted(tagging.METHODS), default="linear",
                   help="how a tag's direction is found: mean (mean difference), linear (logistic-regression "
                        "normal; default) or orthogonal (that normal, orthogonal to the normals of the tags "
                        "that can go with it: least entangled, weakest)")
    p.add_argument("--reach", type=probability, default=0.9,
                   help="shorten each vector to the length at which a logistic model of its tag predicts this "
                        "mean probability at slider 1: the slider moves the face no further than its tag needs "
                        "(default 0.9; 1 keeps every vector at full length, max |v_i| = 1)")
    p.add_argument("--refine", type=non_negative_int, default=0, metavar="STEPS",
                   help="refine each vector with this many Adam steps through the generator and the classifier, "
                        "pulling faces toward the tag at --reach and holding the other tags (default 0: off; "
                        "60 is what the shipped model used)")
    p.add_argument("--calibrate", type=open_probability, default=None, metavar="P",
                   help="then scale each vector (at most 2x) to the length at which its tag's mean probability, "
                        "through the generator and the classifier on --calibrate-samples of the labelled faces, is "
                        "P: no longer than the tag needs, no shorter (default: off; the shipped model used 0.85)")
    p.add_argument("--calibrate-samples", type=positive_int, default=200,
                   help="labelled faces the --calibrate scale is found on (default 200)")
    p.add_argument("--min-reach", type=probability, default=None,
                   help="drop the vectors whose tag's mean probability at slider 1 stays below this (e.g. 0.8); "
                        "needs the effect measurement")
    p.add_argument("--max-side-effect", type=probability, default=None,
                   help="drop the vectors whose slider at s = 1 changes some other tag's probability by more than "
                        "this on average (e.g. 0.6): they draw another tag rather than their own; needs the effect "
                        "measurement")
    p.add_argument("--effect-samples", type=positive_int, default=200,
                   help="z0's for the effect measurement (default 200)")
    p.add_argument("--no-effect", action="store_true", help="skip the effect measurement")
    p.add_argument("--strengths", type=finite_float, nargs="+", default=[0.5, 1.0],
                   help="slider values s of the effect measurement (default 0.5 1)")
    p.add_argument("--sheet", type=output_image, default=None,
                   help="also write an image: one row per tag vector, one face z0 with that tag's slider at "
                        "-1, -0.5, 0, 0.5, 1 (through the demo's formula)")
    add_device_arguments(p, "train the classifier and generate")
    p.add_argument("--batch-size", type=positive_int, default=100, help="faces per forward pass (default 100)")
    args = p.parse_args(argv)
    if args.dataset is None and args.classifier is None:
        p.error("--dataset is required (or --classifier)")
    for flag, value in (("--min-reach", args.min_reach), ("--max-side-effect", args.max_side_effect)):
        if value is not None and args.no_effect:
            p.error("{} needs the effect measurement: leave out --no-effect".format(flag))
    return args


#: The flags of this tool's library parameters that are not named --PARAMETER (see chainer_dcgan.cli.error_message).
FLAGS = {"min_count": "--min-tag-images"}  # load_tagged_faces's min_count; tag_vectors' is checked here


def train_classifier(args, device):
    images, labels, tags = tagging.load_tagged_faces(args.dataset, args.tags, args.min_tag_images, limit=args.limit)
    order = numpy.random.RandomState(args.seed).permutation(len(images))
    n_test = int(round(len(images) * args.holdout))
    test, train = order[:n_test], order[n_test:]
    print("dataset {}: {} images, {} tags ({} for training, {} held out)".format(
        args.dataset, len(images), len(tags), len(train), len(test)))
    start = time.time()
    clf = tagging.train_tag_classifier(images[train], labels[train], tags, epochs=args.epochs, seed=args.seed,
                                       width=args.width, downscale=args.downscale, device=device)
    print("classifier trained in {:.1f} s".format(time.time() - start))
    accuracy = None
    if n_test:
        ev = tagging.evaluate_classifier(clf, images[test], labels[test])
        print("held-out accuracy {:.3f} (always-majority {:.3f}), balanced accuracy {:.3f} (chance 0.5)".format(
            ev["accuracy"].mean(), ev["baseline"].mean(), ev["balanced"].mean()))
        accuracy = dict(zip(tags, ev["balanced"].tolist()))
    return clf, accuracy


SHEET_SLIDERS = (-1.0, -0.5, 0.0, 0.5, 1.0)


def write_sheet(path, gen, vectors, seed, batch_size):
    """Row k: the face of compose(z0, 1, sliders with only tag k set to s, V) for s in SHEET_SLIDERS."""
    names, matrix = tagging.stack_vectors(vectors)
    z0 = zspace.sample_z(1, gen.z_dim, seed)[0]
    sliders = numpy.zeros((len(names) * len(SHEET_SLIDERS), len(names)))
    for k in range(len(names)):
        sliders[k * len(SHEET_SLIDERS):(k + 1) * len(SHEET_SLIDERS), k] = SHEET_SLIDERS
    z = zspace.compose(numpy.tile(z0, (len(sliders), 1)), 1.0, sliders, matrix)
    save_image(path, tile(zspace.generate(gen, z, batch_size), len(names), len(SHEET_SLIDERS), pad=2))


def main(argv=None):
    args = parse_args(argv)
    try:
        device = device_from_args(args)
        gen = generator_from_args(args, device)
        if args.classifier:
            clf, accuracy = tagging.load_classifier(args.classifier), None
            clf.to_device(device)
        else:
            clf, accuracy = train_classifier(args, device)
            if args.save_classifier:
                tagging.save_classifier(args.save_classifier, clf)
                print("wrote {}".format(args.save_classifier))
        start = time.time()
        wanted = args.tags if args.classifier else None  # a classifier trained here knows only --tags
        vectors = tagging.tag_vectors(gen, clf, args.samples, args.seed, args.threshold, args.min_count,
                                      args.batch_size, tags=wanted, method=args.method,
                                      reach=args.reach)
        print("{} of {} tags have vectors ({} faces labelled in {:.1f} s)".format(
            len(vectors), len(wanted if wanted is not None else clf.tags), args.samples, time.time() - start))
        labelled = zspace.sample_z(args.samples, gen.z_dim, args.seed)  # the z's tag_vectors labelled (not measured)
        if args.refine and vectors:
            start = time.time()
            vectors = tagging.refine_vectors(gen, clf, vectors, labelled, steps=args.refine,
                                             target=min(args.reach, 0.99), seed=args.seed)
            print("refined {} vectors ({} steps each) in {:.1f} s".format(len(vectors), args.refine,
                                                                         time.time() - start))
        if args.calibrate is not None and vectors:
            start = time.time()
            z = labelled[:args.calibrate_samples]
            vectors, scales = tagging.calibrate_vectors(gen, clf, vectors, z, args.calibrate,
                                                        batch_size=args.batch_size)
            print("calibrated {} vectors to a mean probability of {:g} on {} labelled faces in {:.1f} s; "
                  "scales {}".format(len(vectors), args.calibrate, len(z), time.time() - start,
                                     " ".join("{} {:.3f}".format(tv.name, c) for tv, c in zip(vectors, scales))))
        if not vectors:
            raise ValueError("no tag has --min-count {} generated faces with it and {} without among --samples {} "
                             "at --threshold {:g}: lower --min-count or give more --samples".format(
                                 args.min_count, args.min_count, args.samples, args.threshold))
        effects = None
        if vectors and not args.no_effect:
            effects = tagging.measure_effect(gen, clf, vectors, args.effect_samples, args.seed + 1,
                                             tuple(args.strengths), args.batch_size)
            print(tagging.format_effect_table(effects, accuracy), end="")
            if args.min_reach is not None:
                reach = {e.name: e.shifted[e.at] for e in effects}
                dropped = [tv.name for tv in vectors if reach[tv.name] < args.min_reach]
                vectors = [tv for tv in vectors if reach[tv.name] >= args.min_reach]
                effects = [e for e in effects if e.name not in dropped]
                print("--min-reach {:g}: dropped {} tag(s) the model does not draw: {}".format(
                    args.min_reach, len(dropped), ", ".join(dropped) or "none"))
                if not vectors:
                    raise ValueError("no tag reaches --min-reach {:g} at slider 1".format(args.min_reach))
            if args.max_side_effect is not None:
                vectors, effects, dropped = tagging.drop_side_effects(vectors, effects, args.max_side_effect)
                print("--max-side-effect {:g}: dropped {} tag(s) whose slider draws another tag: {}".format(
                    args.max_side_effect, len(dropped), ", ".join(
                        "{} ({} {:.2f})".format(name, *other) for name, other in dropped) or "none"))
                if not vectors:
                    raise ValueError("every slider moves another tag by more than --max-side-effect {:g}".format(
                        args.max_side_effect))
        if args.sheet and vectors:
            write_sheet(args.sheet, gen, vectors, args.seed + 2, args.batch_size)
            print("wrote {} ({} rows: z0 with one slider at {})".format(
                args.sheet, len(vectors), ", ".join("{:g}".format(s) for s in SHEET_SLIDERS)))
        meta = {"method": tagging.METHODS[args.method] + (
                    ", shortened to reach a mean probability of {:g} at slider 1".format(args.reach)
                    if args.reach < 1 else "") + (
                    ", refined by {} Adam steps through the generator and the classifier".format(args.refine)
                    if args.refine else "") + (
                    ", scaled to a mean probability of {:g} at slider 1 through the generator".format(args.calibrate)
                    if args.calibrate is not None else "") + (
                    "; sliders that move another tag by more than {:g} at slider 1 dropped".format(args.max_side_effect)
                    if args.max_side_effect is not None else ""),
                "model": os.path.basename(args.model), "samples": args.samples, "seed": args.seed,
                "threshold": args.threshold}
        tagging.write_tag_vectors(args.out, vectors, effects, meta)
        print("wrote {} ({} tags)".format(args.out, len(vectors)))
    except (ModelFileError, tagging.TaggedDatasetError, tagging.TagVectorFileError, ValueError, OSError) as e:
        print_error(e, FLAGS)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
