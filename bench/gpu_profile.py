"""Where the time of one faithful training iteration goes on the GPU (or CPU): kernels against host.

Three views of the same :class:`chainer_dcgan.DCGANUpdater` iteration (fast path on, then off):

1. ``cupyx.profiler.benchmark``: per iteration, the host time of the call (Python and launches,
   without waiting for the GPU) and the GPU time between events recorded before and after it. When
   the two are close the iteration is bound by the host (Python, launch overhead), not by kernels.
2. the sum of the CUDA kernels' own durations in one iteration, read by PyTorch's profiler (CUPTI
   sees every kernel of the process, CuPy's too), with the kernel count and the ten longest kinds;
   wall time minus that sum is time the GPU sat idle waiting for the host.
3. Chainer's ``TimerHook``: time per Chainer function kind (forward and backward), synchronised.

Usage::

    python bench/gpu_profile.py --gpu 0 [--batchsize 100] [--iterations 20]
"""
import argparse
import collections
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import chainer_dcgan  # noqa: E402,F401
import chainer  # noqa: E402
import numpy  # noqa: E402

from chainer_dcgan.training import make_optimizer, seeded_models  # noqa: E402
from chainer_dcgan.training.updater import DCGANUpdater  # noqa: E402

GFLOP_PER_TRAIN_IMAGE = 5.2


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", type=int, default=0)
    p.add_argument("--batchsize", type=int, default=100)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def make_step(device, n, seed):
    gen, dis = seeded_models(seed)
    gen.to_device(device)
    dis.to_device(device)
    x = numpy.random.RandomState(seed).uniform(-1, 1, (n, 3, 96, 96)).astype(numpy.float32)
    it = chainer.iterators.SerialIterator(list(x), n, shuffle=False)
    updater = DCGANUpdater(it, {"gen": make_optimizer(gen), "dis": make_optimizer(dis)}, device=device, seed=seed)
    return updater.update


def kernel_view(step, sync):
    """Sum and count of CUDA kernel durations in one call of ``step`` (PyTorch profiler / CUPTI)."""
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError as e:
        print("  kernel view: no torch ({})".format(e))
        return
    torch.cuda.init()
    sync()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        step()
        sync()
    kinds = collections.defaultdict(lambda: [0, 0.0])
    total, count = 0.0, 0
    for ev in prof.events():
        device_type = str(getattr(ev, "device_type", ""))
        if "CUDA" not in device_type:
            continue
        duration = getattr(ev, "device_time", None)
        if duration is None:
            duration = getattr(ev, "cuda_time", 0.0)
        name = ev.name.split("(")[0][:60]
        kinds[name][0] += 1
        kinds[name][1] += duration
        total += duration
        count += 1
    if not count:
        print("  kernel view: the profiler saw no CUDA kernels (CUPTI may not see CuPy's context)")
        return
    print("  kernels in one iteration: {} launches, {:.2f} ms of kernel time".format(count, total / 1e3))
    for name, (k, t) in sorted(kinds.items(), key=lambda kv: -kv[1][1])[:10]:
        print("    {:>7.2f} ms {:>5}x  {}".format(t / 1e3, k, name))
    return total / 1e3


def main(argv=None):
    args = parse_args(argv)
    from chainer.backends import cuda
    if args.gpu < 0 or not cuda.available:
        print("error: needs a GPU that chainer sees through CuPy", file=sys.stderr)
        return 2
    import cupy
    from cupyx.profiler import benchmark
    device = chainer.get_device("@cupy:{}".format(args.gpu))
    device.use()
    sync = cupy.cuda.Device(args.gpu).synchronize
    n = args.batchsize
    print("# one faithful iteration, batch {}, CUPY_TF32={}".format(n, os.environ.get("CUPY_TF32", "0")))
    for fast in (True, False):
        step = make_step(device, n, args.seed)

        def run():
            with chainer.using_config("dcgan_fast", fast):
                step()

        for _ in range(3):
            run()
        sync()
        b = benchmark(run, n_repeat=args.iterations, n_warmup=2)
        cpu_ms = float(numpy.median(b.cpu_times)) * 1e3
        gpu_ms = float(numpy.median(b.gpu_times)) * 1e3
        print()
        print("fast path {}: host {:.2f} ms/iter (Python and launches), GPU {:.2f} ms/iter (events); "
              "{:.0f} img/s, {:.1f} TFLOP/s".format("on" if fast else "off", cpu_ms, gpu_ms, n / gpu_ms * 1e3,
                                                    n / gpu_ms * 1e3 * GFLOP_PER_TRAIN_IMAGE / 1e3))
        kernel_ms = kernel_view(run, sync)
        if kernel_ms:
            print("  GPU busy {:.0f} % of the iteration; idle (waiting for the host) {:.2f} ms".format(
                100 * kernel_ms / gpu_ms, max(gpu_ms - kernel_ms, 0.0)))
        hook = chainer.function_hooks.TimerHook()
        with hook:
            run()
        sync()
        print("  Chainer functions (TimerHook, ms, one iteration):")
        rows = hook.summary()
        for name, record in sorted(rows.items(), key=lambda kv: -kv[1]["elapsed_time"])[:12]:
            print("    {:>8.2f} ms {:>5}x  {}".format(record["elapsed_time"] * 1e3, record["occurrence"], name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
