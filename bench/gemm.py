"""The fast path's matrix products at the 96 px models' shapes: NumPy's OpenBLAS against oneMKL.

Each stride-2 layer of the faithful models is a few matrix products (chainer_dcgan/functions/
stride2_conv.py): four shifted ones per direction on the 24x24 and 12x12 grids, one on the 6x6
columns. This times one of each (forward, input gradient, weight gradient; the taps' four as
four) through :func:`chainer_dcgan.functions._blas.gemm`, with OpenBLAS and with oneMKL (the
``mkl`` package, ``CHAINER_DCGAN_BLAS=mkl``) in turn, both split over the loops' threads with
OpenBLAS's own at one, as a training process runs them, interleaved round by round so both see the
same machine, and prints each shape's GFLOP/s, the ratio MKL/OpenBLAS, and the whole set's.
These are the grid path's shapes (``CHAINER_DCGAN_WINOGRAD=0``); a training process now multiplies
the Winograd path's nine smaller products per layer instead (the module doc of stride2_conv), which
this script does not time yet.

Usage::

    python bench/gemm.py [--batchsize 32] [--threads 2] [--repeats 7]

Threads are set as in bench/train_step.py (before NumPy loads). Figures are printed, never asserted.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
from train_step import blas_description, check_counts, set_threads  # noqa: E402  (imports no NumPy)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batchsize", type=int, default=32)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeats", type=int, default=7, help="rounds; the median is printed (default 7)")
    return check_counts(p, p.parse_args(argv), {"batchsize": 1, "threads": 1, "repeats": 1})


def shapes(batch):
    """``(name, m, k, n, count)``: ``out (m, n) = a (m, k) @ b (k, n)``, ``count`` times per set, as
    stride2_conv multiplies them for the 96 px models (grid spans, weight gradients longer side first)."""
    from chainer_dcgan.functions.stride2_conv import _span

    out = []
    for side, small, big in ((24, 64, 128), (12, 128, 256)):
        span = _span(batch, side + 1, side + 1)
        A, B4 = big, 4 * small  # the convolution's outputs and its Z rows
        out += [("grid {0}x{0} {1}<->{2}: forward".format(side, small, big), A, B4, span, 4),
                ("grid {0}x{0} {1}<->{2}: input gradient".format(side, small, big), B4, A, span, 4),
                ("grid {0}x{0} {1}<->{2}: weight gradient".format(side, small, big),
                 max(A, B4), span, min(A, B4), 4)]
    cols = batch * 36
    out += [("columns 6x6 256<->512: forward", 512, 4096, cols, 1),
            ("columns 6x6 256<->512: input gradient", 4096, 512, cols, 1),
            ("columns 6x6 256<->512: weight gradient", 512, cols, 4096, 1)]
    return out


def main(argv=None):
    args = parse_args(argv)
    set_threads(args.threads)
    import numpy

    from chainer_dcgan.functions import _blas, _kernels

    # both libraries as a training process runs them (_blas.split_products): each product split over
    # the loops' pool, NumPy's OpenBLAS at one thread (its own threads would spin beside oneMKL's calls)
    _blas.split_products()
    openblas = dict(_blas._load())
    openblas_name = _blas.library()
    mkl = _blas._load_mkl()
    print("# {}".format(blas_description()))
    print("# OpenBLAS: {}; oneMKL: {}".format(openblas_name, _blas.library() if mkl else "not installed"))
    print("# batch {}, {} thread(s) ({}), {} rounds, median".format(args.batchsize, args.threads,
                                                                    _kernels.description(), args.repeats))
    if not openblas:
        print("# NumPy's OpenBLAS was not found (another NumPy build): nothing to compare")
        return 0
    libs = {"OpenBLAS": (openblas, True)}
    if mkl:
        libs["oneMKL"] = (mkl, True)
    else:
        print("# oneMKL is not installed (pip install mkl): OpenBLAS alone")
    rng = numpy.random.default_rng(0)
    rows = []
    for name, m, k, n, count in shapes(args.batchsize):
        a = rng.standard_normal((m, k), dtype=numpy.float32)
        b = rng.standard_normal((k, n), dtype=numpy.float32)
        out = numpy.empty((m, n), numpy.float32)
        times = {lib: [] for lib in libs}
        for _ in range(args.repeats + 1):  # the first round warms up
            for lib, (funcs, split) in libs.items():
                _blas._STATE.update(funcs=funcs, split=split)
                start = time.perf_counter()
                _blas.gemm(a, b, out)
                times[lib].append(time.perf_counter() - start)
        rows.append(("{} ({} x {} x {})".format(name, m, k, n), 2.0 * m * k * n, count,
                     {lib: statistics.median(t[1:]) for lib, t in times.items()}))
    ratio = "oneMKL" in libs
    print("| product (m x k x n) | " + " | ".join("{} GFLOP/s".format(lib) for lib in libs)
          + (" | oneMKL / OpenBLAS |" if ratio else " |"))
    print("|---|" + "---:|" * (len(libs) + ratio))
    total = {lib: 0.0 for lib in libs}
    for label, flop, count, med in rows:
        for lib in libs:
            total[lib] += count * med[lib]
        cells = ["{:.0f}".format(flop / med[lib] / 1e9) for lib in libs]
        if ratio:
            cells.append("{:.2f}".format(med["OpenBLAS"] / med["oneMKL"]))
        print("| {} | {} |".format(label, " | ".join(cells)))
    print("time of the set (one of each direction, taps counted): " + ", ".join(
        "{} {:.1f} ms".format(lib, t * 1e3) for lib, t in total.items()))
    if ratio:
        print("ratio oneMKL/OpenBLAS over the set: {:.2f}".format(total["OpenBLAS"] / total["oneMKL"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
