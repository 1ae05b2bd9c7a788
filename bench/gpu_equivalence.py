"""One training update on CuPy equals the same update on NumPy, to float32 tolerance.

For each model family (faithful, tag-conditional, spectral-norm discriminator) the same seeded
weights, real batch, z, flips (and tags) go through one full :class:`chainer_dcgan.DCGANUpdater`
iteration (G forward, D on fake and real, both backward passes, both Adam+WeightDecay steps) on the
CPU and on ``--gpu``, with the fast path on and off. It prints, per model and fast-path setting:

* ``grad``: the worst relative L2 error ``|g_gpu - g_cpu| / |g_cpu|`` over the parameters'
  gradients after the update (G's from G's loss, D's from D's loss);
* ``step``: the worst relative L2 error of the weight change the optimizers made;
* ``stats``: the worst relative error of BatchNorm's running statistics after the update;

and PASS when all three lie under ``--tolerance`` (default 1e-3; float32 sums in another order
give about 1e-6 to 1e-4). Exit status 1 if any comparison fails, 2 without a GPU.

Usage::

    python bench/gpu_equivalence.py --gpu 0 [--batchsize 100] [--size 96]

``--gpu -1`` compares NumPy with NumPy (a self-check that runs anywhere: every error is then 0).
"""
import argparse
import copy
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import chainer_dcgan  # noqa: E402,F401  (shims chainer before it is imported)
import chainer  # noqa: E402
import numpy  # noqa: E402

from chainer_dcgan.training import make_optimizer, seeded_models  # noqa: E402
from chainer_dcgan.updater import ConditionalUpdater, DCGANUpdater  # noqa: E402

KINDS = ("faithful", "conditional", "spectral_norm")
TAGS = ["blonde_hair", "blue_hair", "smile", "glasses"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", type=int, default=0, help="GPU id; -1 compares the CPU with itself")
    p.add_argument("--batchsize", type=int, default=100)
    p.add_argument("--size", type=int, default=96, choices=(64, 96, 128, 256))
    p.add_argument("--tolerance", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    return p.parse_args(argv)


def relative_error(a, b):
    a = numpy.asarray(a, dtype=numpy.float64)
    b = numpy.asarray(b, dtype=numpy.float64)
    denominator = numpy.linalg.norm(b)
    diff = numpy.linalg.norm(a - b)
    return float(diff / denominator) if denominator > 0 else float(diff)


def one_update(kind, device, fast, args):
    """Seeded models on ``device`` after one update; returns (initial weights, gen, dis) on the host."""
    tags = TAGS if kind == "conditional" else None
    gen, dis = seeded_models(args.seed, tags, size=args.size, spectral_norm=(kind == "spectral_norm"))
    initial = {("gen", k): chainer.backend.CpuDevice().send(p.array).copy() for k, p in gen.namedparams()}
    initial.update({("dis", k): chainer.backend.CpuDevice().send(p.array).copy() for k, p in dis.namedparams()})
    gen.to_device(device)
    dis.to_device(device)
    rs = numpy.random.RandomState(args.seed + 1)
    n = args.batchsize
    x = rs.uniform(-1, 1, (n, 3, args.size, args.size)).astype(numpy.float32)
    if tags:
        y = (rs.uniform(size=(n, len(tags))) < 0.3).astype(numpy.float32)
        dataset = list(zip(x, y))
        updater_class = ConditionalUpdater
    else:
        dataset = list(x)
        updater_class = DCGANUpdater
    it = chainer.iterators.SerialIterator(dataset, n, shuffle=False)
    opts = {"gen": make_optimizer(gen), "dis": make_optimizer(dis)}
    updater = updater_class(it, opts, device=device, seed=args.seed)
    with chainer.using_config("dcgan_fast", fast):
        updater.update()
    return initial, gen, dis


def host(a):
    return None if a is None else chainer.backend.CpuDevice().send(a)


def compare(kind, fast, gpu_device, args):
    cpu_device = chainer.get_device("@numpy")
    initial, gen_c, dis_c = one_update(kind, cpu_device, fast, args)
    _, gen_g, dis_g = one_update(kind, gpu_device, fast, args)
    worst = {"grad": (0.0, ""), "step": (0.0, ""), "stats": (0.0, "")}

    def note(key, err, name):
        if err > worst[key][0] or not worst[key][1]:
            worst[key] = (err, name)

    for model, c, g in (("gen", gen_c, gen_g), ("dis", dis_c, dis_g)):
        params_g = dict(g.namedparams())
        for name, pc in c.namedparams():
            pg = params_g[name]
            if pc.grad is not None:
                note("grad", relative_error(host(pg.grad), pc.grad), model + name)
            start = initial[(model, name)]
            note("step", relative_error(host(pg.array) - start, pc.array - start), model + name)
        links_g = dict(g.namedlinks())
        for name, link in c.namedlinks():
            for key in ("avg_mean", "avg_var"):
                value = getattr(link, key, None)
                if isinstance(value, numpy.ndarray):
                    note("stats", relative_error(host(getattr(links_g[name], key)), value),
                         "{}{}/{}".format(model, name, key))
    ok = all(err < args.tolerance and numpy.isfinite(err) for err, _ in worst.values())
    print("{:<14} fast={:<5} grad {:.2e} ({})  step {:.2e} ({})  stats {:.2e} ({})  {}".format(
        kind, str(fast), worst["grad"][0], worst["grad"][1], worst["step"][0], worst["step"][1],
        worst["stats"][0], worst["stats"][1], "PASS" if ok else "FAIL"), flush=True)
    return ok


def main(argv=None):
    args = parse_args(argv)
    if args.gpu >= 0:
        from chainer.backends import cuda
        if not cuda.available:
            print("error: chainer sees no CuPy/GPU here", file=sys.stderr)
            return 2
        device = chainer.get_device("@cupy:{}".format(args.gpu))
    else:
        device = chainer.get_device("@numpy")
    device.use()
    print("# one update on {} vs NumPy, {} px, batch {}, tolerance {:g}, CUPY_TF32={}".format(
        device, args.size, args.batchsize, args.tolerance, os.environ.get("CUPY_TF32", "0")), flush=True)
    results = [compare(kind, fast, device, args) for kind in args.kinds for fast in (True, False)]
    print("gpu_equivalence: {} of {} PASS".format(sum(results), len(results)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
