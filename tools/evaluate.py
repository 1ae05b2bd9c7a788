#!/usr/bin/env python
"""Measure a generator against real faces: FID, KID (with standard error), precision/recall and
density/coverage, from InceptionV3 pool3 features of --n generated and --n real images.

Real images are read like training data, at the model's size (96x96 for the original); their
features are cached in ~/.cache/chainer_dcgan/fid_stats/ keyed by the data's content and --n, so the second run only
extracts the generated side. FID falls as n grows: compare numbers measured with the same --n.
The InceptionV3 weights come from `python tools/fetch_inception.py` (see --weights).

--real-baseline measures real faces against other real faces: the floor at this --n. With
--degrade the second sample is blurred or noised first, a ruler for what a defect of that size
costs on this data (on the embedded faces, a 1-pixel blur alone is far above the floor).

A conditional model (train_faces.py --conditional) makes each face from a tag set drawn from the
data's own. With --classifier (a tag classifier saved by tools/tag_vectors.py --save-classifier) it
also reports agreement: per tag P(classifier says it | asked for it), P(... | not asked), their
balanced accuracy and ROC AUC (chance 0.5), beside a control generated from shuffled tag sets and
the classifier's own balanced accuracy on real images. --no-fid skips the Inception metrics.
On this project's 2-core CPU InceptionV3 takes roughly a second per image: use --n 1000 or a GPU.

Examples:
  python tools/evaluate.py --model result/gen_iter_10000.npz --dataset data/faces --n 10000 --gpu 0
  python tools/evaluate.py --model result/gen_iter_1000.npz --n 500          # the embedded dataset
  python tools/evaluate.py --untrained --n 500 --json                        # a baseline
  python tools/evaluate.py --real-baseline --n 1000                            # the floor
  python tools/evaluate.py --real-baseline --n 1000 --degrade blur:1           # real faces 1 px soft
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import (add_device_arguments, add_model_argument, degradation,  # noqa: E402
                               device_from_args, generator_from_args, positive_int, print_error, seed)
from chainer_dcgan.evaluation import agreement, inception, metrics  # noqa: E402
from chainer_dcgan.models import hparams  # noqa: E402
from chainer_dcgan.models.serialization import ModelFileError  # noqa: E402
from chainer_dcgan.zspace.tagging import TaggedDatasetError  # noqa: E402
from chainer_dcgan.utils import limits  # noqa: E402


#: The conditional vocabulary comes from the model, not from a flag (see chainer_dcgan.cli.error_message).
FLAGS = {"tags": "the model's tags"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_mutually_exclusive_group(required=True)
    add_model_argument(model, "--model")
    model.add_argument("--untrained", action="store_true",
                       help="evaluate a freshly initialised faithful generator (seeded by --seed): "
                            "a baseline")
    model.add_argument("--real-baseline", action="store_true",
                       help="compare --n real faces with --n other real faces of the same data (the floor a "
                            "model can reach at this sample count: FID is biased upwards at small n)")
    p.add_argument("--degrade", type=degradation, default=None, metavar="KIND:AMOUNT",
                   help="with --real-baseline: blur (blur:SIGMA, in pixels) or noise (noise:SIGMA, on the "
                        "(pixel-128)/128 scale) the second real sample, to see what a defect of that size "
                        "costs on this data (e.g. blur:1)")
    p.add_argument("--dataset", default=None,
                   help="folder of real images (with or without manifest.jsonl); default: the embedded "
                        "synthetic faces, as examples/train_faces.py uses them")
    p.add_argument("--synthetic-size", type=positive_int, default=20000,
                   help="without --dataset: size of the synthetic dataset the real sample is drawn from "
                        "(default 20000)")
    p.add_argument("--synthetic-seed", type=seed, default=0,
                   help="without --dataset: its seed (default 0, as train_faces.py --seed 0)")
    p.add_argument("--n", type=positive_int, default=10000,
                   help="images on each side, >= 6 (default 10000; all real images if the dataset is "
                        "smaller)")
    p.add_argument("--batchsize", "-b", type=positive_int, default=50,
                   help="images per InceptionV3 pass (default 50)")
    add_device_arguments(p, "generate and measure")
    p.add_argument("--seed", type=seed, default=0,
                   help="picks the real sample and the z's (and the untrained generator's weights); "
                        "default 0")
    p.add_argument("--weights", default=None,
                   help="path of default_1.pt (default: $CHAINER_DCGAN_INCEPTION or the cache)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the real-feature cache")
    p.add_argument("--cache-dir", default=None,
                   help="real-feature cache folder (default: {})".format(metrics.stats_cache_dir()))
    p.add_argument("--classifier", default=None,
                   help="conditional models: a tag classifier (tools/tag_vectors.py --save-classifier, or a shipped "
                        "model's name for the one shipped with it, e.g. default) to measure agreement with the tags "
                        "asked for")
    p.add_argument("--agreement-n", type=positive_int, default=500,
                   help="faces generated for the agreement (and real images for the classifier's accuracy; "
                        "default 500)")
    p.add_argument("--no-fid", action="store_true", help="skip FID/KID/precision/recall (no Inception needed)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of aligned lines")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.n < 6:
        p.error("--n must be >= 6")
    if args.degrade is not None and not args.real_baseline:
        p.error("--degrade applies to --real-baseline only")
    return args



def main(argv=None):
    args = parse_args(argv)
    try:
        device = device_from_args(args)
        gen = None  # --real-baseline: a second real sample instead
        if args.untrained:
            from chainer_dcgan.training import seeded_models

            gen = seeded_models(args.seed)[0]
            gen.to_device(device)
        elif args.model is not None:
            gen = generator_from_args(args, device)
        size = getattr(gen, "size", hparams.IMAGE_SIZE)
        # per sample: Inception features (2048 float64, real and generated) and a float32 image; per batch
        # example: a 299 px input and its activations (about 32 inputs' worth)
        limits.check_count("n", args.n, 2 * 2048 * 8 + 3 * size * size * 4, "samples")
        limits.check_count("batchsize", args.batchsize, 3 * 299 * 299 * 4 * 32, "Inception inputs in one batch")
        if args.dataset is None:
            from chainer_dcgan.datasets import SyntheticFaces

            dataset = SyntheticFaces(args.synthetic_size, seed=args.synthetic_seed, size=size)
        else:
            from chainer_dcgan.datasets import ImageDataset

            dataset = ImageDataset(args.dataset, size=size, verify=False)  # real at the model's size
        tag_sets, result, cache_path = None, {}, None
        if getattr(gen, "tags", None) is not None:
            from chainer_dcgan.datasets import TaggedDataset

            tag_sets = TaggedDataset(dataset, gen.tags).labels
        elif args.classifier:
            raise ValueError("--classifier: agreement is for conditional models; {} is not one".format(args.model))
        if not args.no_fid:
            extractor = inception.FeatureExtractor(device, args.weights, args.batchsize)
            real, cache_path = metrics.dataset_features(dataset, extractor, args.n, seed=args.seed,
                                                        cache=not args.no_cache, cache_dir=args.cache_dir,
                                                        progress=not args.no_progress)
            if gen is None:
                other = metrics.held_out(dataset, args.n, args.seed)
                if args.degrade is not None:
                    other = metrics.Degraded(other, *args.degrade, seed=args.seed)
                fake, _ = metrics.dataset_features(other, extractor,
                                                   args.n, seed=args.seed + 1, cache=not args.no_cache,
                                                   cache_dir=args.cache_dir, progress=not args.no_progress)
            else:
                fake = metrics.generator_features(gen, extractor, args.n, seed=args.seed + 1,
                                                  progress=not args.no_progress, tag_sets=tag_sets)
            result = metrics.evaluate(real, fake)
        table = None
        if args.classifier:
            from chainer_dcgan.zspace.tagging import load_classifier

            clf = load_classifier(args.classifier)
            clf.to_device(device)
            agree = agreement.conditional_agreement(gen, clf, tag_sets, args.agreement_n, seed=args.seed + 2)
            control = agreement.conditional_agreement(gen, clf, tag_sets, args.agreement_n, seed=args.seed + 2,
                                                      shuffle=True)
            accuracy = agreement.classifier_accuracy(clf, dataset, args.agreement_n, seed=args.seed + 3)
            table = agreement.format_agreement_table(agree, control, accuracy)
            result["agreement"] = {
                "tags": {a.name: {"p_on": a.p_on, "p_off": a.p_off, "balanced": a.balanced, "auc": a.auc,
                                  "n_on": a.n_on, "shuffled_balanced": c.balanced, "shuffled_auc": c.auc}
                         for a, c in zip(agree, control)},
                "mean_balanced": agreement.mean_balanced(agree), "mean_auc": agreement.mean_auc(agree),
                "shuffled_mean_balanced": agreement.mean_balanced(control),
                "shuffled_mean_auc": agreement.mean_auc(control), "chance": 0.5,
                "classifier_balanced_accuracy": accuracy}
    except (ModelFileError, inception.InceptionWeightsError, TaggedDatasetError, ValueError, OSError) as e:
        print_error(e, FLAGS)
        return 2
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key in ("fid", "kid", "kid_stderr", "precision", "recall", "density", "coverage",
                    "n_real", "n_fake"):
            if key not in result:
                continue
            value = result[key]
            print("{:<11} {}".format(key, value if isinstance(value, int) else "{:.6g}".format(value)))
        if cache_path:
            print("{:<11} {}".format("real cache", cache_path))
        if table:
            print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
