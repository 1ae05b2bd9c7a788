#!/usr/bin/env python
"""Measure a generator against real faces: FID, KID (with standard error), precision/recall and
density/coverage, from InceptionV3 pool3 features of --n generated and --n real images.

Real images are read like training data (96x96 arrays); their features are cached in
~/.cache/chainer_dcgan/fid_stats/ keyed by the data's content and --n, so the second run only
extracts the generated side. FID falls as n grows: compare numbers measured with the same --n.
The InceptionV3 weights come from `python tools/fetch_inception.py` (see --weights).
On this project's 2-core CPU InceptionV3 takes roughly a second per image: use --n 1000 or a GPU.

Examples:
  python tools/evaluate.py --model result/gen_iter_10000.npz --dataset data/faces --n 10000 --gpu 0
  python tools/evaluate.py --model result/gen_iter_1000.npz --n 500          # the embedded dataset
  python tools/evaluate.py --untrained --n 500 --json                        # a baseline
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan import inception, metrics  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.cli import positive_int, seed  # noqa: E402
from chainer_dcgan.distributed import resolve_device  # noqa: E402
from chainer_dcgan.serialization import ModelFileError, load_generator  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--model",
                       help="generator weights: npz (gen_iter_N.npz or a trainer snapshot) "
                            "or the 2015 original's HDF5")
    model.add_argument("--untrained", action="store_true",
                       help="evaluate a freshly initialised faithful generator (seeded by --seed): "
                            "a baseline")
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
    p.add_argument("--gpu", "-g", type=int, default=-1, help="GPU id, -1 for CPU (default -1)")
    p.add_argument("--device", default=None, help="Chainer device specifier (e.g. @cupy:0); overrides --gpu")
    p.add_argument("--seed", type=seed, default=0,
                   help="picks the real sample and the z's (and the untrained generator's weights); "
                        "default 0")
    p.add_argument("--weights", default=None,
                   help="path of default_1.pt (default: $CHAINER_DCGAN_INCEPTION or the cache)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the real-feature cache")
    p.add_argument("--cache-dir", default=None,
                   help="real-feature cache folder (default: {})".format(metrics.stats_cache_dir()))
    p.add_argument("--json", action="store_true", help="print one JSON object instead of aligned lines")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.n < 6:
        p.error("--n must be >= 6")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        device = resolve_device(args.gpu, args.device)
        if args.untrained:
            from chainer_dcgan.training import seeded_models

            gen = seeded_models(args.seed)[0]
        else:
            gen = load_generator(args.model)
        gen.to_device(device)
        if args.dataset is None:
            from chainer_dcgan.datasets import SyntheticFaces

            dataset = SyntheticFaces(args.synthetic_size, seed=args.synthetic_seed)
        else:
            dataset = args.dataset
        extractor = inception.FeatureExtractor(device, args.weights, args.batchsize)
        real, cache_path = metrics.dataset_features(dataset, extractor, args.n, seed=args.seed,
                                                    cache=not args.no_cache, cache_dir=args.cache_dir,
                                                    progress=not args.no_progress)
        fake = metrics.generator_features(gen, extractor, args.n, seed=args.seed + 1,
                                          progress=not args.no_progress)
        result = metrics.evaluate(real, fake)
    except inception.InceptionWeightsNotFound as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2
    except (ModelFileError, inception.InceptionWeightsError, ValueError, OSError) as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key in ("fid", "kid", "kid_stderr", "precision", "recall", "density", "coverage",
                    "n_real", "n_fake"):
            value = result[key]
            print("{:<11} {}".format(key, value if isinstance(value, int) else "{:.6g}".format(value)))
        if cache_path:
            print("{:<11} {}".format("real cache", cache_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
