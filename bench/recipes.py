"""FID/KID and training speed of the faithful recipe and the modern ones, at a fixed training budget.

For each image size in ``--sizes`` and each recipe below, trains from scratch on the embedded
procedural faces (drawn at that size) for ``--images`` training images (iterations = images /
batch size), then measures FID and KID (InceptionV3 pool3 features, :mod:`chainer_dcgan.evaluation.metrics`)
between ``--fid-samples`` generated faces and as many held-out real ones, and the training speed.

Recipes (all options of ``examples/train_faces.py``)::

    faithful         the 2015 original: softmax loss, BatchNorm in D, Adam 2e-4 for both
    sn               --spectral-norm (D without BatchNorm)
    sn-hinge-ttur    --spectral-norm --loss hinge --lr-gen 1e-4 --lr-dis 4e-4
    sn-hinge-ttur-ema  the same plus --ema DECAY; FID is measured on the averaged generator

The faithful recipe is repeated over ``--faithful-seeds`` seeds, the others over ``--seeds``, so
the spread between seeds says which differences are noise. The first lines of the table are the
real-vs-real baseline: two disjoint sets of held-out real faces of the same count, the floor that
FID/KID reach at this sample count (FID is biased upwards at small counts; compare numbers measured
with the same ``--fid-samples``).

img/s is training images per second of wall-clock time between the end of the first iteration and
the end of the last (so it leaves out the one-off set-up, and includes the EMA update where there
is one); it is only comparable within one run (the same machine and load).

A small budget (the default: 256 images, minutes on two CPU cores) only shows that everything
runs and what it costs; the ranking needs a budget in the hundreds of thousands of images, e.g. on
a GPU::

    python bench/recipes.py --gpu 0 --images 500000 --batchsize 64 --fid-samples 5000 --ema 0.999

Outputs: one line per run on stdout, a Markdown table at the end, and ``--out/RECIPE-SIZE-sSEED/``
with each run's last sample grid (``preview/``), log and model files.
"""
import argparse
import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from chainer_dcgan.evaluation import inception, metrics  # noqa: E402  (installs the chainer shims first)
from chainer_dcgan.models import hparams  # noqa: E402

import chainer  # noqa: E402,I100
from chainer import training  # noqa: E402

from chainer_dcgan.cli import fraction, positive_int  # noqa: E402
from chainer_dcgan.datasets import SyntheticFaces  # noqa: E402
from chainer_dcgan.training import build_trainer  # noqa: E402
from chainer_dcgan.training.distributed import resolve_device  # noqa: E402

#: Recipe name -> build_trainer options (``ema`` is filled in from --ema).
RECIPES = {
    "faithful": {},
    "sn": {"spectral_norm": True},
    "sn-hinge-ttur": {"spectral_norm": True, "loss": "hinge", "lr_gen": 1e-4, "lr_dis": 4e-4},
    "sn-hinge-ttur-ema": {"spectral_norm": True, "loss": "hinge", "lr_gen": 1e-4, "lr_dis": 4e-4, "ema": None},
}
#: Seeds of the procedural datasets: training faces, held-out reals, the second held-out set.
TRAIN_SEED, REAL_SEED, BASELINE_SEED = 0, 1, 2


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--images", type=positive_int, default=256,
                   help="training images per run, the budget (default 256: a smoke run)")
    p.add_argument("--batchsize", type=positive_int, default=8, help="minibatch size (default 8)")
    p.add_argument("--sizes", type=int, nargs="+", choices=hparams.SIZES, default=[96, 128],
                   help="image sizes to train at (default 96 128)")
    p.add_argument("--recipes", nargs="+", choices=sorted(RECIPES), default=list(RECIPES),
                   help="recipes to run (default: all four)")
    p.add_argument("--faithful-seeds", type=positive_int, default=2,
                   help="seeds (0, 1, ...) of the faithful recipe (default 2)")
    p.add_argument("--seeds", type=positive_int, default=1, help="seeds of each other recipe (default 1)")
    p.add_argument("--ema", type=fraction, default=0.9,
                   help="decay of the EMA recipe (default 0.9, for the small default budget; 0.999 for long runs)")
    p.add_argument("--data-size", type=positive_int, default=2000,
                   help="procedural training faces (default 2000, drawn once per size and kept in memory)")
    p.add_argument("--fid-samples", type=positive_int, default=100,
                   help="generated and real faces per FID/KID (default 100; about 0.3 s each on a CPU)")
    p.add_argument("--gpu", type=int, default=-1, help="GPU id through CuPy; -1 (default): CPU")
    p.add_argument("--weights", default=None, help="InceptionV3 weights (default: python tools/fetch_inception.py's)")
    p.add_argument("--out", default="result_recipes", help="folder for each run's outputs (default result_recipes)")
    return p.parse_args(argv)


class IterationClock(training.Extension):
    """Records the wall-clock time at the end of every iteration (before any other extension)."""

    trigger = 1, "iteration"
    priority = training.PRIORITY_WRITER + 2

    def __init__(self):
        self.times = []

    def __call__(self, trainer):
        self.times.append(time.perf_counter())

    def images_per_second(self, batchsize):
        if len(self.times) < 2:
            return float("nan")
        return (len(self.times) - 1) * batchsize / (self.times[-1] - self.times[0])


def run(recipe, size, seed, data, real_features, extractor, device, args):
    """Train one recipe; returns ``(metrics dict, img/s)``."""
    options = dict(RECIPES[recipe])
    if "ema" in options:
        options["ema"] = args.ema
    iterations = max(1, args.images // args.batchsize)
    out = os.path.join(args.out, "{}-{}-s{}".format(recipe, size, seed))
    shutil.rmtree(out, ignore_errors=True)
    trainer = build_trainer(data, out, (iterations, "iteration"), device, batchsize=args.batchsize, seed=seed,
                            snapshot_interval=iterations, display_interval=iterations,
                            preview_interval=iterations, progress=False, statistics=False, size=size, **options)
    clock = IterationClock()
    trainer.extend(clock)
    trainer.run()
    gen = trainer.updater.generator
    if options.get("ema") is not None:
        gen = trainer.get_extension("gen_ema").refresh()
    fake = metrics.generator_features(gen, extractor, args.fid_samples, seed=seed + 1000)
    return metrics.evaluate(real_features, fake), clock.images_per_second(args.batchsize)


def main(argv=None):
    args = parse_args(argv)
    device = resolve_device(args.gpu)
    try:
        extractor = inception.FeatureExtractor(device, args.weights)
    except (inception.InceptionWeightsNotFound, inception.InceptionWeightsError) as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2
    print("# recipes at {} training images (batch {}), FID/KID on {} samples, {}, chainer {}".format(
        args.images, args.batchsize, args.fid_samples, device, chainer.__version__), flush=True)
    rows = []
    for size in args.sizes:
        data = SyntheticFaces(args.data_size, seed=TRAIN_SEED, cache=True, size=size)
        held_out = SyntheticFaces(args.fid_samples, seed=REAL_SEED, size=size)
        second = SyntheticFaces(args.fid_samples, seed=BASELINE_SEED, size=size)
        real, _ = metrics.dataset_features(held_out, extractor, cache=False)
        baseline = metrics.evaluate(real, metrics.dataset_features(second, extractor, cache=False)[0])
        rows.append(("real vs real", size, "-", baseline["fid"], baseline["kid"], float("nan")))
        print("{:>4} px  real vs real          FID {:8.2f}  KID {:.4f}".format(
            size, baseline["fid"], baseline["kid"]), flush=True)
        for recipe in args.recipes:
            for seed in range(args.faithful_seeds if recipe == "faithful" else args.seeds):
                result, rate = run(recipe, size, seed, data, real, extractor, device, args)
                rows.append((recipe, size, seed, result["fid"], result["kid"], rate))
                print("{:>4} px  {:<20} seed {}  FID {:8.2f}  KID {:.4f}  {:.2f} img/s".format(
                    size, recipe, seed, result["fid"], result["kid"], rate), flush=True)
    print()
    print("| size | recipe | seed | FID | KID | train img/s |")
    print("|---:|---|---:|---:|---:|---:|")
    for recipe, size, seed, fid, kid, rate in rows:
        print("| {} | {} | {} | {:.2f} | {:.4f} | {} |".format(
            size, recipe, seed, fid, kid, "-" if rate != rate else "{:.2f}".format(rate)))
    for size in args.sizes:
        fids = [r[3] for r in rows if r[0] == "faithful" and r[1] == size]
        if len(fids) > 1:
            print("# {} px faithful: FID spread over {} seeds {:.2f} (min {:.2f}, max {:.2f}, stdev {:.2f})".format(
                size, len(fids), max(fids) - min(fids), min(fids), max(fids), statistics.stdev(fids)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
