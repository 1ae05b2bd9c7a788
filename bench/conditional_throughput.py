"""Training throughput of the tag-conditional models relative to the faithful ones, in the same run.

Times one full iteration of :class:`~chainer_dcgan.training.updater.ConditionalUpdater` (conditional-BatchNorm G,
projection D, K tags) and of the faithful :class:`~chainer_dcgan.DCGANUpdater` on the same embedded
faces, interleaved round by round (the order alternates) so that a busy machine slows both alike.
Both wall-clock and process CPU seconds are measured: on a shared machine the CPU time is the
steadier measure of the work. Prints each round, the medians, and the last line
``ratio conditional/faithful images per second: X.XX (wall), Y.YY (CPU)``. Times are printed, never asserted.

Usage::

    python bench/conditional_throughput.py [--batchsize 16] [--tags 35] [--size 96] [--repeats 3] [--warmup 1]
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.datasets import TAGS, SyntheticFaces, TaggedDataset  # noqa: E402
from chainer_dcgan.datasets.iterators import ResumableIterator  # noqa: E402
from chainer_dcgan.models import hparams  # noqa: E402
from chainer_dcgan.training import make_optimizer, seeded_models  # noqa: E402
from chainer_dcgan.training.updater import ConditionalUpdater, DCGANUpdater  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batchsize", type=int, default=16, help="images per iteration (default 16)")
    p.add_argument("--tags", type=int, default=len(TAGS),
                   help="K, the first K tags of the embedded data (default all {})".format(len(TAGS)))
    p.add_argument("--size", type=int, choices=hparams.SIZES, default=hparams.IMAGE_SIZE,
                   help="image size of both pairs (default {})".format(hparams.IMAGE_SIZE))
    p.add_argument("--iterations", type=int, default=2, help="iterations per timed round (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds of each (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds of each first (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seeds weights, data, z and flips (default 0)")
    return p.parse_args(argv)


def make_updater(conditional, args):
    faces = SyntheticFaces(max(4 * args.batchsize, 400), seed=args.seed, cache=True, size=args.size)  # every tag occurs
    tags = list(TAGS[:args.tags]) if conditional else None
    data = TaggedDataset(faces, tags) if conditional else faces
    gen, dis = seeded_models(args.seed, tags, size=args.size)
    opts = {"gen": make_optimizer(gen), "dis": make_optimizer(dis)}
    cls = ConditionalUpdater if conditional else DCGANUpdater
    return cls(ResumableIterator(data, args.batchsize, seed=args.seed), opts, device="@numpy", seed=args.seed)


def main(argv=None):
    args = parse_args(argv)
    updaters = {"faithful": make_updater(False, args), "conditional": make_updater(True, args)}
    times = {name: [] for name in updaters}
    cpu = {name: [] for name in updaters}
    print("{} px, batch {}, K = {} tags, {} iteration(s) per round, load average {}".format(
        args.size, args.batchsize, args.tags, args.iterations, " ".join("{:.2f}".format(x) for x in os.getloadavg())))
    for r in range(args.warmup + args.repeats):
        order = list(updaters) if r % 2 == 0 else list(reversed(list(updaters)))
        for name in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(args.iterations):
                updaters[name].update()
            seconds = (time.perf_counter() - start) / args.iterations
            cpu_seconds = (time.process_time() - start_cpu) / args.iterations
            if r >= args.warmup:
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
            print("round {} {:<11} {:.3f} s/iteration wall, {:.3f} CPU s{}".format(
                r, name, seconds, cpu_seconds, " (warm-up)" if r < args.warmup else ""), flush=True)
    medians = {name: statistics.median(t) for name, t in times.items()}
    cpu_medians = {name: statistics.median(t) for name, t in cpu.items()}
    for name, m in medians.items():
        print("{:<11} median {:.3f} s/iteration wall ({:.1f} images/s), {:.3f} CPU s".format(
            name, m, args.batchsize / m, cpu_medians[name]))
    print("load average {}".format(" ".join("{:.2f}".format(x) for x in os.getloadavg())))
    print("ratio conditional/faithful images per second: {:.2f} (wall), {:.2f} (CPU)".format(
        medians["faithful"] / medians["conditional"], cpu_medians["faithful"] / cpu_medians["conditional"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
