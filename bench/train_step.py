"""Images per second of one faithful DCGAN training iteration: Chainer (fast path on and off) vs PyTorch.

One run measures, interleaved round by round so that a busy machine slows all of them alike:

* train: one full iteration of :class:`chainer_dcgan.DCGANUpdater` (G forward, D on fake and real,
  both backward passes, both Adam+WeightDecay updates), with ``chainer_dcgan``'s fast functions
  (``config.dcgan_fast = True``) and with Chainer's own (``False``), and the same iteration written in
  PyTorch (``bench/torch_reference.py``);
* G-only inference (test mode, no graph) for the same three;
* the time to generate 100 faces (z -> uint8 images) with the fast path.

Figures are medians over ``--repeats`` rounds after ``--warmup`` rounds. The last line is
``ratio Chainer/PyTorch train: X.XX`` (fast path on). Times are printed, never asserted.

Usage::

    python bench/train_step.py [--batchsize 100] [--gpu -1] [--threads 2] [--repeats 5] [--tf32] [--size 96]

``--size 128`` or ``256`` times the larger models (:func:`chainer_dcgan.models.faithful.architecture`),
the same in both frameworks; the GFLOP/s column is then left out (its constant is the 96 px one).
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GFLOP_PER_TRAIN_IMAGE = 5.2  # forward + both backward passes, see bench/RESULTS.md


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batchsize", type=int, default=100, help="images per iteration (faithful: 100)")
    p.add_argument("--gpu", type=int, default=-1, help="GPU id for both frameworks; -1 (default) runs on CPU")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="CPU threads for BLAS/OpenMP and torch alike (default: all cores)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds; medians are printed (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--infer-repeats", type=int, default=5, help="timed rounds of G-only inference (default 5)")
    p.add_argument("--tf32", action="store_true",
                   help="GPU only: allow TF32 matrix products in both (CUPY_TF32=1; torch allow_tf32); "
                        "default is strict float32 in both")
    p.add_argument("--skip-own", action="store_true",
                   help="do not time Chainer's own functions (fast path off); it is the slowest part on CPU")
    p.add_argument("--skip-torch", action="store_true", help="do not time the PyTorch reference")
    p.add_argument("--torch-compile", action="store_true",
                   help="also time the PyTorch reference through torch.compile (compiled in the warm-up rounds)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak TFLOP/s for the precision used; adds a share-of-peak column "
                        "(H100/H200 SXM: 67 float32, 495 dense TF32)")
    p.add_argument("--size", type=int, choices=(64, 96, 128, 256), default=96,
                   help="image side of the models (default 96, the faithful one)")
    p.add_argument("--seed", type=int, default=0, help="seeds weights, data, z and flips (default 0)")
    return check_counts(p, p.parse_args(argv), {"batchsize": 1, "threads": 1, "repeats": 1, "warmup": 0,
                                                 "infer_repeats": 1})


def check_counts(parser, args, least):
    """``args``, once each count in ``least`` (``{dest: smallest value}``) is at least that; else the
    parser's one ``error:`` line naming the flag, exit status 2 (NumPy is not loaded yet)."""
    for dest, low in least.items():
        if getattr(args, dest) < low:
            parser.error("argument --{}: must be >= {}, got {}".format(dest.replace("_", "-"), low,
                                                                        getattr(args, dest)))
    return args


def set_threads(n):
    """Same thread count for OpenBLAS/OpenMP (numpy) and torch; must run before numpy is imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
        return out + ("+local changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_description():
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed"
    infos = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join("{} ({}) {} kernel={} threads={}".format(
        os.path.basename(os.path.dirname(i.get("filepath", ""))), os.path.basename(i.get("filepath", "")),
        i.get("version"), i.get("architecture"), i.get("num_threads")) for i in infos) or "none found"


def median_rate(times, n):
    return n / statistics.median(times)


class Timer:
    """Wall time of a callable, synchronising the device first and after; ``cpu`` keeps the
    process CPU time (all threads) of the last call, a second view on a shared machine."""

    def __init__(self, sync):
        self.sync = sync
        self.cpu = None

    def __call__(self, fn):
        self.sync()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        self.sync()
        t = time.perf_counter() - t0
        self.cpu = time.process_time() - c0
        return t


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    if args.gpu >= 0 and args.tf32:
        os.environ["CUPY_TF32"] = "1"
    sys.path.insert(0, ROOT)
    sys.path.insert(0, HERE)

    import chainer_dcgan  # noqa: F401  (shims chainer before it is imported)
    import chainer
    import numpy
    from chainer_dcgan import functions as dcgan_functions
    from chainer_dcgan.utils.images import to_image
    from chainer_dcgan.models import Discriminator, Generator
    from chainer_dcgan.training import make_optimizer
    from chainer_dcgan.training.updater import DCGANUpdater

    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(args.threads)
    except ImportError:
        pass

    on_gpu = args.gpu >= 0
    device = chainer.get_device("@cupy:{}".format(args.gpu) if on_gpu else "@numpy")
    device.use()
    if on_gpu:
        import cupy
        chainer_sync = cupy.cuda.Device(args.gpu).synchronize
    else:
        def chainer_sync():
            pass

    n = args.batchsize
    rng = numpy.random.RandomState(args.seed)
    batch = rng.uniform(-1, 1, (n, 3, args.size, args.size)).astype(numpy.float32)
    dataset = list(batch)

    def chainer_step(fast):
        numpy.random.seed(args.seed)
        gen, dis = Generator(size=args.size), Discriminator(size=args.size)
        gen.to_device(device)
        dis.to_device(device)
        opts = {"gen": make_optimizer(gen), "dis": make_optimizer(dis)}
        it = chainer.iterators.SerialIterator(dataset, n, shuffle=False)
        updater = DCGANUpdater(it, opts, device=device, seed=args.seed)

        def step():
            with chainer.using_config("dcgan_fast", fast):
                updater.update()

        def infer(z):
            with chainer.using_config("dcgan_fast", fast), chainer.using_config("train", False), \
                    chainer.no_backprop_mode():
                return gen(z).array

        return step, infer, gen

    print("# DCGAN train step, {} px, batch {}, {}".format(
        args.size, n, "GPU {}".format(args.gpu) if on_gpu else "CPU"))
    print("# date {}  commit {}".format(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), git_commit()))
    print("# python {}  numpy {}  chainer {}".format(platform.python_version(), numpy.__version__,
                                                     chainer.__version__))
    if on_gpu:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(args.gpu)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        print("# device {}  cupy {}  cudnn {}  CUPY_TF32={}".format(
            name, cupy.__version__, chainer.backends.cuda.cudnn_enabled, os.environ.get("CUPY_TF32", "0")))
    else:
        print("# cpu {} ({} cores visible)".format(cpu_model(), os.cpu_count()))
    print("# threads {} (OMP/OPENBLAS/MKL_NUM_THREADS, threadpoolctl, torch.set_num_threads)".format(args.threads))
    print("# BLAS libraries loaded (numpy.libs is numpy's): {}".format(blas_description()))
    print("# OPENBLAS_CORETYPE={}  OPENBLAS_L2_SIZE={}".format(os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
                                                              os.environ.get("OPENBLAS_L2_SIZE", "(unset)")))
    print("# fast path default: dcgan_fast={} (CHAINER_DCGAN_FAST={})".format(
        dcgan_functions.fast_default(), os.environ.get("CHAINER_DCGAN_FAST", "(unset)")))

    candidates = []  # (label, train_step, infer, sync)
    fast_step, fast_infer, fast_gen = chainer_step(True)
    candidates.append(("chainer fast", fast_step, fast_infer, chainer_sync))
    if not args.skip_own:
        own_step, own_infer, _ = chainer_step(False)
        candidates.append(("chainer own", own_step, own_infer, chainer_sync))
    if not args.skip_torch:
        import torch
        torch.set_num_threads(args.threads)
        if on_gpu:
            torch.backends.cuda.matmul.allow_tf32 = args.tf32
            torch.backends.cudnn.allow_tf32 = args.tf32
            print("# torch {}  cudnn {}  allow_tf32={}".format(torch.__version__, torch.backends.cudnn.version(),
                                                               args.tf32))

            def torch_sync():
                torch.cuda.synchronize()
        else:
            print("# torch {}  threads {}  mkldnn {}".format(torch.__version__, torch.get_num_threads(),
                                                            torch.backends.mkldnn.is_available()))

            def torch_sync():
                pass
        from torch_reference import TorchStep
        tstep = TorchStep(batch, "cuda:{}".format(args.gpu) if on_gpu else "cpu", seed=args.seed)
        candidates.append(("pytorch", tstep, tstep.generate, torch_sync))
        if args.torch_compile:
            cstep = TorchStep(batch, "cuda:{}".format(args.gpu) if on_gpu else "cpu", seed=args.seed, compile=True)
            candidates.append(("pytorch compiled", cstep, tstep.generate, torch_sync))

    if not on_gpu:
        from chainer_dcgan.functions import _blas, _kernels, stride2_conv
        from chainer_dcgan.utils import memory
        print("# CPU fast path: products through {}; fused loops: {} (CHAINER_DCGAN_KERNELS={}); layers: {}".format(
            _blas.library() or "numpy.matmul", _kernels.description(),
            os.environ.get("CHAINER_DCGAN_KERNELS", "(unset)"), stride2_conv.description()))
        print("# memory (process-wide, so PyTorch's too): {} (CHAINER_DCGAN_MALLOC={})".format(
            memory.policy(), os.environ.get("CHAINER_DCGAN_MALLOC", "(unset)")))

    # Training: interleaved rounds, rotating the order so no framework always runs first.
    train = {label: [] for label, *_ in candidates}
    cpu = {label: [] for label, *_ in candidates}
    for r in range(args.warmup + args.repeats):
        order = candidates[r % len(candidates):] + candidates[:r % len(candidates)]
        for label, step, _, sync in order:
            timer = Timer(sync)
            t = timer(step)
            if r >= args.warmup:
                train[label].append(t)
                cpu[label].append(timer.cpu)
    print()
    print("{:<22}{:>12}{:>12}{:>14}{:>14}".format("train", "img/s", "s/iter", "GFLOP/s", "CPU-s/iter"))
    rates = {}
    for label, *_ in candidates:
        rates[label] = median_rate(train[label], n)
        print("{:<22}{:>12.2f}{:>12.3f}{:>14.1f}{:>14.2f}".format(
            label, rates[label], statistics.median(train[label]),
            rates[label] * GFLOP_PER_TRAIN_IMAGE if args.size == 96 else float("nan"),
            statistics.median(cpu[label])))
    if args.peak_tflops and args.size == 96:
        print("# share of the peak {:g} TFLOP/s: {}".format(args.peak_tflops, "; ".join(
            "{} {:.2f} %".format(label, 100 * rates[label] * GFLOP_PER_TRAIN_IMAGE / 1e3 / args.peak_tflops)
            for label, *_ in candidates)))
    print("# each round's s/iter: " + "; ".join(
        "{} {}".format(label, " ".join("{:.2f}".format(t) for t in train[label])) for label, *_ in candidates))

    z = numpy.random.RandomState(args.seed + 1).uniform(-1, 1, (n, 100)).astype(numpy.float32)
    z_dev = device.send(z)
    infer = {label: [] for label, *_ in candidates}
    for r in range(1 + args.infer_repeats):
        for label, _, fn, sync in candidates:
            arg = z if label.startswith("pytorch") else z_dev
            t = Timer(sync)(lambda: fn(arg))
            if r >= 1:
                infer[label].append(t)
    print()
    print("{:<22}{:>12}".format("G inference", "img/s"))
    infer_rates = {}
    for label, *_ in candidates:
        infer_rates[label] = median_rate(infer[label], n)
        print("{:<22}{:>12.2f}".format(label, infer_rates[label]))

    def hundred_faces():
        z100 = fast_gen.make_hidden(100, numpy.random.RandomState(args.seed + 2))
        x = chainer.backend.CpuDevice().send(fast_infer(z100))
        return [to_image(a) for a in x]

    faces = [Timer(chainer_sync)(hundred_faces) for _ in range(1 + args.infer_repeats)][1:]
    print()
    print("100 faces (z -> uint8 images, fast path): {:.3f} s".format(statistics.median(faces)))
    if "chainer own" in rates:
        print("ratio fast/own train: {:.2f}".format(rates["chainer fast"] / rates["chainer own"]))
        print("ratio fast/own inference: {:.2f}".format(infer_rates["chainer fast"] / infer_rates["chainer own"]))
    if "pytorch" in rates:
        if "chainer own" in rates:
            print("ratio Chainer(own)/PyTorch train: {:.2f}".format(rates["chainer own"] / rates["pytorch"]))
        print("ratio Chainer/PyTorch inference: {:.2f}".format(infer_rates["chainer fast"] / infer_rates["pytorch"]))
        if "pytorch compiled" in rates:
            print("ratio Chainer/PyTorch compiled train: {:.2f}".format(rates["chainer fast"] / rates["pytorch compiled"]))
        print("ratio Chainer/PyTorch train: {:.2f}".format(rates["chainer fast"] / rates["pytorch"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
