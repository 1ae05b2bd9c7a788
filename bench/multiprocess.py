"""Training images per second of 1 process vs N ChainerMN ranks (``mpiexec``, CPU, naive communicator).

Each configuration is a separate ``mpiexec -n R`` job running faithful DCGANUpdater iterations
(batch ``--batchsize`` per rank, embedded faces, gradients averaged over ranks) and timing them on
rank 0 between barriers. Threads are split so that every configuration uses the same cores:
``--cores`` BLAS/OpenMP threads for 1 rank, ``--cores / R`` for R ranks. Rounds alternate the
configurations so that a busy machine slows all of them alike; figures are medians over rounds.

The last line is ``ratio R-rank/1-rank img/s: X.XX``. Times are printed, never asserted. On a
machine shared with other jobs the figures are noisy: MPICH's waiting ranks poll (spin), so a rank
that waits for a slower one takes CPU from everything else.

Usage::

    python bench/multiprocess.py [--ranks 2] [--batchsize 8] [--iterations 3] [--rounds 2] [--cores 2]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", type=int, default=2, help="ranks of the multi-process configuration (default 2)")
    p.add_argument("--batchsize", type=int, default=8, help="images per rank and iteration (default 8)")
    p.add_argument("--iterations", type=int, default=3, help="timed iterations per job (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations first (default 1)")
    p.add_argument("--rounds", type=int, default=2, help="jobs per configuration, alternated (default 2)")
    p.add_argument("--cores", type=int, default=os.cpu_count(), help="CPU threads in all (default: all cores)")
    p.add_argument("--communicator", default="naive", help="ChainerMN communicator (default naive)")
    p.add_argument("--mn-batchnorm", action="store_true", help="use MultiNodeBatchNormalization")
    p.add_argument("--seed", type=int, default=0, help="seeds weights, data, z and flips (default 0)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.isfile(beside) else "mpiexec"


def worker(args):
    """One job's rank: time ``args.iterations`` updates; rank 0 prints a JSON line."""
    sys.path.insert(0, ROOT)
    import chainer_dcgan  # noqa: F401  (shims chainer before it is imported)
    from chainer_dcgan.datasets import SyntheticFaces
    from chainer_dcgan.datasets.iterators import ResumableIterator
    from chainer_dcgan.training.distributed import create_context
    from chainer_dcgan.training import make_optimizer, seeded_models
    from chainer_dcgan.training.updater import DCGANUpdater

    context = create_context(args.communicator, args.mn_batchnorm)
    data = SyntheticFaces(args.batchsize * context.size * 2, seed=args.seed, cache=True) \
        if context.is_root else None
    gen, dis = (context.model(m) for m in seeded_models(args.seed))
    device = context.device(-1)
    iterator = ResumableIterator(context.scatter(data, args.seed), args.batchsize, seed=args.seed + context.rank)
    optimizers = {"gen": make_optimizer(gen, context), "dis": make_optimizer(dis, context)}
    updater = DCGANUpdater(iterator, optimizers, device=device, seed=args.seed + 7919 * context.rank)
    barrier = context.comm.mpi_comm.barrier
    for _ in range(args.warmup):
        updater.update()
    barrier()
    t0 = time.perf_counter()
    for _ in range(args.iterations):
        updater.update()
    barrier()
    seconds = time.perf_counter() - t0
    if context.is_root:
        print(json.dumps({"ranks": context.size, "seconds": seconds,
                          "images": args.iterations * args.batchsize * context.size}), flush=True)


def run_job(args, ranks):
    threads = str(max(1, args.cores // ranks))
    env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--worker"]
    cmd += ["--batchsize", str(args.batchsize), "--iterations", str(args.iterations), "--warmup", str(args.warmup),
            "--communicator", args.communicator, "--seed", str(args.seed)]
    cmd += ["--mn-batchnorm"] if args.mn_batchnorm else []
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit("mpiexec -n {} failed ({}):\n{}".format(ranks, proc.returncode, proc.stderr[-3000:]))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["images"] / result["seconds"]


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    print("cores {}, batch {} per rank, {} timed iterations after {} warm-up, {} rounds, communicator {}{}".format(
        args.cores, args.batchsize, args.iterations, args.warmup, args.rounds, args.communicator,
        ", mn-batchnorm" if args.mn_batchnorm else ""), flush=True)
    rates = {1: [], args.ranks: []}
    for r in range(args.rounds):
        for ranks in rates:
            rates[ranks].append(run_job(args, ranks))
            print("round {}: {} rank(s) x {} thread(s): {:.2f} img/s".format(
                r + 1, ranks, max(1, args.cores // ranks), rates[ranks][-1]), flush=True)
    one, many = statistics.median(rates[1]), statistics.median(rates[args.ranks])
    print("median img/s: 1 rank {:.2f}, {} ranks {:.2f}".format(one, args.ranks, many))
    print("ratio {}-rank/1-rank img/s: {:.2f}".format(args.ranks, many / one))


if __name__ == "__main__":
    main()
