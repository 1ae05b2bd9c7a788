"""Where the time of one faithful CPU training iteration goes: per kind of work and per layer.

Runs :class:`chainer_dcgan.training.updater.DCGANUpdater` (96 px, the fast path) for ``--iterations``
iterations after two warm-up ones and prints

1. the wall time per iteration without instrumentation (median);
2. the time per kind of work, from ``cProfile``'s own-time of each function, in buckets: matrix
   products (BLAS), layout changes, BatchNorm and activations, the optimizer, waiting for the loop
   pool's other thread, and the rest (Python, Chainer's graph, data);
3. per stride-2 layer and direction (forward, gradient of the input, gradient of the weight), the
   time of its matrix products and their rate, counting the products' own multiply-adds (the
   padded grid included) and, beside it, the layer's useful GFLOP/s.

Usage::

    python bench/cpu_profile.py [--batchsize 32] [--iterations 5] [--threads 2]

Threads are set as in bench/train_step.py (before NumPy loads). Figures are printed, never asserted.
"""
import argparse
import collections
import cProfile
import os
import pstats
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from train_step import check_counts  # noqa: E402  (imports no NumPy: the thread count is set first)

BUCKETS = (  # (bucket, substrings of "file:function" that fall in it), first match wins
    ("matrix products (BLAS)", ("_blas.py:", "stride2_conv.py:_matmul", "method 'dot'", "numpy.dot", "matmul",
                                "tensordot")),
    ("Winograd transforms", ("wino_",)),
    ("layout changes", ("space_to_depth", "depth_to_space", "to_grid", "from_grid", "reorder_weight",
                        "restore_weight", "add_into", "im2col", "col2im", "stride2_conv.py:")),
    ("BatchNorm + activations", ("batch_norm_act.py:", "bn_act", "affine_act", "elu")),
    ("optimizer (Adam, weight decay)", ("adam", "weight_decay", "optimizer")),
    ("waiting for the loop pool's other thread", ("method 'acquire'",)),
    ("NumPy reductions (bias gradients, losses)", ("method 'reduce'",)),
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batchsize", type=int, default=32)
    p.add_argument("--iterations", type=int, default=5, help="profiled iterations (default 5)")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=0)
    return check_counts(p, p.parse_args(argv), {"batchsize": 1, "iterations": 1, "threads": 1})


def bucket_of(key):
    filename, _, name = key
    label = "{}:{}".format(os.path.basename(filename), name)
    for bucket, needles in BUCKETS:
        if any(n in label for n in needles):
            return bucket
    return "other (Python, Chainer's graph, data)"


def main(argv=None):
    args = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sys.path.insert(0, ROOT)
    import chainer_dcgan  # noqa: F401
    import chainer
    import numpy
    from chainer_dcgan.functions import _blas, _kernels, stride2_conv
    from chainer_dcgan.models import Discriminator, Generator
    from chainer_dcgan.training import make_optimizer
    from chainer_dcgan.training.updater import DCGANUpdater
    from chainer_dcgan.utils import memory
    from train_step import GFLOP_PER_TRAIN_IMAGE, blas_description, cpu_model, git_commit

    n = args.batchsize
    rng = numpy.random.RandomState(args.seed)
    data = list(rng.uniform(-1, 1, (n, 3, 96, 96)).astype(numpy.float32))
    numpy.random.seed(args.seed)
    gen, dis = Generator(), Discriminator()
    updater = DCGANUpdater(chainer.iterators.SerialIterator(data, n, shuffle=False),
                           {"gen": make_optimizer(gen), "dis": make_optimizer(dis)},
                           device=chainer.get_device("@numpy"), seed=args.seed)
    print("# CPU profile of one faithful training iteration, 96 px, batch {}, {} thread(s)".format(n, args.threads))
    print("# date {}  commit {}  cpu {}".format(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), git_commit(),
                                                  cpu_model()))
    print("# BLAS: {}; products through {}".format(blas_description(), _blas.library() or "numpy.matmul"))
    print("# loops: {}; {}".format(_kernels.description(), memory.policy()))
    print("# OPENBLAS_CORETYPE={}  load average {}".format(os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
                                                          " ".join(open("/proc/loadavg").read().split()[:3])))
    for _ in range(2):
        updater.update()
    walls = []
    for _ in range(args.iterations):
        t = time.perf_counter()
        updater.update()
        walls.append(time.perf_counter() - t)
    wall = statistics.median(walls)
    print("\nwall time per iteration (uninstrumented, median of {}): {:.3f} s, {:.1f} img/s".format(
        len(walls), wall, n / wall))

    # per layer and direction: wrap the three grid primitives
    layer = collections.defaultdict(lambda: [0, 0.0, 0.0])

    def wrap(name, kind):
        fn = getattr(stride2_conv, name)

        def timed(first, second, nn, h, w, path):
            t = time.perf_counter()
            out = fn(first, second, nn, h, w, path)
            dt = time.perf_counter() - t
            if path == "wino":  # (9, A, T) and (9, 4B, T); the weight (9, A, 4B)
                A, B = (first.shape[1], second.shape[1] // 4) if name == "_wgrad" else \
                    (first.shape[1], first.shape[2] // 4)
            elif name == "_wgrad":
                A, B = first.shape[0], second.shape[0] // (16 if path == "cols" else 4)
            elif path == "cols":
                A, B = first.shape[0], first.shape[1] // 16
            else:
                A, B = first.shape[1], first.shape[2] // 4
            key = "{:>3} ch <-> {:>3} ch, small side {:>2} ({}): {}".format(
                B, A, h, {"cols": "columns", "wino": "Winograd"}.get(path, path), kind)
            rec = layer[key]
            rec[0] += 1
            rec[1] += dt
            rec[2] += 2.0 * A * B * 16 * nn * h * w  # the layer's useful multiply-adds, x2
            return out
        return timed

    originals = {name: getattr(stride2_conv, name) for name in ("_gather", "_scatter", "_wgrad")}
    stride2_conv._gather = wrap("_gather", "gather (conv forward / deconv input gradient)")
    stride2_conv._scatter = wrap("_scatter", "scatter (deconv forward / conv input gradient)")
    stride2_conv._wgrad = wrap("_wgrad", "weight gradient")
    profiler = cProfile.Profile()
    profiler.enable()
    t0 = time.perf_counter()
    for _ in range(args.iterations):
        updater.update()
    profiled = (time.perf_counter() - t0) / args.iterations
    profiler.disable()
    for name, fn in originals.items():
        setattr(stride2_conv, name, fn)

    stats = pstats.Stats(profiler).stats
    buckets = collections.Counter()
    for key, (_, _, tottime, _, _) in stats.items():
        buckets[bucket_of(key)] += tottime / args.iterations
    total = sum(buckets.values())
    print("\nper kind of work (cProfile own time; the profiled iteration took {:.3f} s):".format(profiled))
    print("{:<44}{:>10}{:>8}".format("kind", "s/iter", "share"))
    for bucket, t in buckets.most_common():
        print("{:<44}{:>10.3f}{:>7.0f}%".format(bucket, t, 100 * t / total))

    other = sorted(((tottime / args.iterations, key) for key, (_, _, tottime, _, _) in stats.items()
                    if bucket_of(key).startswith("other")), reverse=True)[:8]
    print("  largest in 'other': " + "; ".join("{}:{} {:.3f}".format(
        os.path.basename(key[0]), key[2], t) for t, key in other))

    print("\nper stride-2 layer (the grid primitives, products and their accumulation):")
    print("{:<92}{:>7}{:>10}{:>16}".format("layer and direction", "calls", "ms/iter", "useful GFLOP/s"))
    for key, (calls, t, flop) in sorted(layer.items(), key=lambda kv: -kv[1][1]):
        print("{:<92}{:>7}{:>10.1f}{:>16.0f}".format(key, calls // args.iterations, 1e3 * t / args.iterations,
                                                       flop / t / 1e9))
    gemm_t = sum(t for _, t, _ in layer.values()) / args.iterations
    print("\nstride-2 layers: {:.3f} s/iter; whole iteration {:.0f} useful GFLOP/s ({} GFLOP per image)".format(
        gemm_t, n * GFLOP_PER_TRAIN_IMAGE / wall, GFLOP_PER_TRAIN_IMAGE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
