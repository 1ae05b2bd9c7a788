"""Fused, multi-threaded CPU loops for the fast path's element-wise work, compiled with numba.

NumPy runs each element-wise operation on one core and each as its own pass over memory, so on a
2-core machine the layout changes, BatchNorm and activations of :mod:`.stride2_conv` and
:mod:`.batch_norm_act` cost nearly as much as the matrix products (bench/RESULTS.md, the profile
on AVX-512). Here each of them is one loop, split over the cores:

* :func:`space_to_depth`, :func:`depth_to_space`, :func:`to_grid`, :func:`from_grid`,
  :func:`im2col`, :func:`col2im`, :func:`reorder_weight`, :func:`restore_weight`: the layout changes
  around the matrix products (biases added on the way); :func:`wino_input`, :func:`wino_input_adjoint`,
  :func:`wino_output`, :func:`wino_output_adjoint`, :func:`wino_weight`, :func:`wino_weight_grad`: the
  Winograd path's transforms (:mod:`.stride2_conv`), which take the place of those for most layers;
* :func:`add_into`: the accumulation of a shifted product into its window (where BLAS cannot);
* :func:`bn_act_forward`, :func:`bn_act_backward`: training-mode BatchNormalization with its
  activation, statistics included; :func:`affine_act_backward`, :func:`elu_forward`,
  :func:`elu_backward` likewise;
* :func:`adam_update`: Adam's step (:mod:`chainer_dcgan.training.optimizers`).

Each loop is split over channels (or rows) and each channel's sums run in a fixed order, so a result
does not depend on the number of threads. BatchNorm's sums are kept in float64; the additions of
:func:`add_into` and :func:`col2im` are in the arrays' dtype, as the NumPy code they replace.

The loops run only where :func:`active` says so: NumPy arrays, numba importable,
``chainer.config.dcgan_kernels`` (default: the environment variable ``CHAINER_DCGAN_KERNELS``, on
unless ``0``/``false``/``no``/``off``) and training mode (``chainer.config.train``), where the
compilation on first use (a few seconds, once per process; nothing is cached on disk, since numba's
cache is pickled) is paid back within an iteration. Elsewhere the NumPy code of the calling modules
runs, and the tests hold each loop to it. Threads: ``CHAINER_DCGAN_THREADS``, else
``OMP_NUM_THREADS``, else ``OPENBLAS_NUM_THREADS``, else all cores; the calling thread runs one part
and a pool of waiting threads the others (numba's own parallel loops keep their threads spinning,
which slowed the next OpenBLAS call 1.4x).
"""
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import chainer
import numpy

_OFF = ("0", "false", "no", "off")
_LOCK = threading.Lock()
_STATE = {"numba": None, "loops": None, "threads": None, "pool": None, "pid": None}

ACT_CODES = {None: 0, "relu": 1, "elu": 2, "leaky_relu": 3}
LEAKY_SLOPE = 0.2


def switch_default(name):
    """Whether the environment variable ``name`` leaves a switch on: True unless it is 0/false/no/off."""
    return os.environ.get(name, "1").strip().lower() not in _OFF


def kernels_default():
    """The default of ``chainer.config.dcgan_kernels``: False where ``CHAINER_DCGAN_KERNELS`` is 0/false/no/off."""
    return switch_default("CHAINER_DCGAN_KERNELS")


def _numba():
    if _STATE["numba"] is None:
        try:
            import numba
        except ImportError:
            numba = False
        _STATE["numba"] = numba
    return _STATE["numba"]


def importable():
    """Whether numba can be imported here (it is an install requirement; a missing one falls back)."""
    return bool(_numba())


def active(*arrays, train_only=True):
    """Whether the compiled loops serve these arrays (see the module doc); ``train_only=False`` for
    work that happens only in training anyway (the optimizer's update)."""
    value = getattr(chainer.config, "dcgan_kernels", None)
    on = kernels_default() if value is None else bool(value)
    if not (on and (getattr(chainer.config, "train", False) or not train_only)):
        return False
    if not all(type(a) is numpy.ndarray and a.dtype in (numpy.float32, numpy.float64) for a in arrays):
        return False
    return importable()


def description():
    """One line for logs and benchmarks: ``numba X.Y, N thread(s)``, or that the NumPy passes run."""
    if not importable():
        return "numba absent: NumPy passes"
    return "numba {}, {} thread(s)".format(_numba().__version__, thread_count())


def thread_count():
    """Threads for the loops: CHAINER_DCGAN_THREADS, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, else all cores."""
    numba = _numba()
    top = numba.config.NUMBA_NUM_THREADS if numba else (os.cpu_count() or 1)
    for var in ("CHAINER_DCGAN_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        text = os.environ.get(var, "").strip()
        if text.isdigit() and int(text) > 0:
            return min(int(text), top)
    return top


def _pool():
    """A thread pool of ``thread_count() - 1`` workers (the caller runs one part), remade after a fork."""
    pid = os.getpid()
    if _STATE["threads"] is None:
        _STATE["threads"] = thread_count()
    if _STATE["threads"] > 1 and _STATE.get("pid") != pid:
        with _LOCK:
            if _STATE.get("pid") != pid:
                _STATE["pool"] = ThreadPoolExecutor(_STATE["threads"] - 1, thread_name_prefix="chainer_dcgan")
                _STATE["pid"] = pid
    return _STATE.get("pool") if _STATE["threads"] > 1 else None


#: Below this many elements a loop runs on the calling thread alone: waking a worker costs more.
SERIAL_BELOW = 1 << 15


def _run(name, total, work, *args):
    """Loop ``name`` over its outer index ``0 .. total - 1``, split in equal parts over the threads
    (``work``, the number of elements it writes, below :data:`SERIAL_BELOW`: not split).

    The workers of the pool wait on a queue: unlike a spinning thread pool (numba's own parallel
    loops), they leave both cores to OpenBLAS between calls, which measured 1.4x slower matrix
    products right after a parallel loop.
    """
    loop = _loop(name)
    pool = _pool()
    parts = min(_STATE["threads"], total) if pool is not None and work >= SERIAL_BELOW else 1
    if parts <= 1:
        loop(0, total, *args)
        return
    bounds = [total * i // parts for i in range(parts + 1)]
    futures = [pool.submit(loop, bounds[i], bounds[i + 1], *args) for i in range(1, parts)]
    loop(bounds[0], bounds[1], *args)
    for f in futures:
        f.result()


# --- the loops (plain Python here; compiled by _loops() on first use) --------------------------------

def _space_to_depth(lo, hi, x, Z):
    # x (N, C, H, W) -> Z (C, 2, 2, N, gh, gw): Z[c, py, px, n, u, v] = x_pad[n, c, 2u + py, 2v + px]
    N, C, H, W = x.shape
    gh, gw = Z.shape[4], Z.shape[5]
    for k in range(lo, hi):
        c, n = k // N, k % N
        for py in range(2):
            for px in range(2):
                for u in range(gh):
                    r = 2 * u + py - 1
                    if r < 0 or r >= H:
                        for v in range(gw):
                            Z[c, py, px, n, u, v] = 0
                        continue
                    for v in range(gw):
                        s = 2 * v + px - 1
                        if s < 0 or s >= W:
                            Z[c, py, px, n, u, v] = 0
                        else:
                            Z[c, py, px, n, u, v] = x[n, c, r, s]


def _depth_to_space(lo, hi, Z, bias, x):
    # Z (C, 2, 2, N, gh, gw) -> x (N, C, H, W) + bias (C,) (length 0: no bias)
    N, C, H, W = x.shape
    for k in range(lo, hi):
        n, c = k // C, k % C
        b = bias[c] if bias.shape[0] else 0.0
        for r in range(H):
            py, u = (r + 1) % 2, (r + 1) // 2
            for s in range(W):
                x[n, c, r, s] = Z[c, py, (s + 1) % 2, n, u, (s + 1) // 2] + b


def _to_grid(lo, hi, y, Y):
    # y (N, C, h, w) -> Y (C, N, gh, gw), zero in the last grid row and column
    N, C, h, w = y.shape
    gh, gw = Y.shape[2], Y.shape[3]
    for k in range(lo, hi):
        c, n = k // N, k % N
        for u in range(gh):
            for v in range(gw):
                Y[c, n, u, v] = y[n, c, u, v] if u < h and v < w else 0


def _from_grid(lo, hi, Y, bias, y):
    # Y (C, N, gh, gw) -> y (N, C, h, w) + bias (C,) (length 0: no bias)
    N, C, h, w = y.shape
    for k in range(lo, hi):
        n, c = k // C, k % C
        b = bias[c] if bias.shape[0] else 0.0
        for u in range(h):
            for v in range(w):
                y[n, c, u, v] = Y[c, n, u, v] + b


def _move_weight(lo, hi, Wc, Wr, to_taps):
    # Wr[ay*2+ax, o, c*4+py*2+px] is Wc[o, c, 2ay+py, 2ax+px], Wc (A, B, 4, 4), Wr (4, A, 4B);
    # to_taps: Wc into Wr (reorder_weight), else Wr into Wc (restore_weight)
    B = Wc.shape[1]
    for o in range(lo, hi):
        for c in range(B):
            for ay in range(2):
                for py in range(2):
                    for ax in range(2):
                        for px in range(2):
                            if to_taps:
                                Wr[ay * 2 + ax, o, c * 4 + py * 2 + px] = Wc[o, c, 2 * ay + py, 2 * ax + px]
                            else:
                                Wc[o, c, 2 * ay + py, 2 * ax + px] = Wr[ay * 2 + ax, o, c * 4 + py * 2 + px]


def _im2col(lo, hi, Z, col):
    # Z (4B, N, gh, gw) -> col (4, 4B, N, h, w): col[ay*2+ax, r, n, i, j] = Z[r, n, i + ay, j + ax]
    N, h, w = col.shape[2], col.shape[3], col.shape[4]
    for r in range(lo, hi):
        for a in range(4):
            ay, ax = a // 2, a % 2
            for n in range(N):
                for i in range(h):
                    for j in range(w):
                        col[a, r, n, i, j] = Z[r, n, i + ay, j + ax]


def _col2im(lo, hi, P, Z):
    # the transpose of _im2col: Z[r, n, u, v] = sum over the taps (in their order) of
    # P[ay*2+ax, r, n, u - ay, v - ax] where that pixel exists; each cell written once, summed in
    # P's dtype like the additions it replaces
    N, h, w = P.shape[2], P.shape[3], P.shape[4]
    zero = P[0, 0, 0, 0, 0] * 0
    gh, gw = Z.shape[2], Z.shape[3]
    for r in range(lo, hi):
        for n in range(N):
            for u in range(gh):
                for v in range(gw):
                    acc = zero
                    if u < h:
                        if v < w:
                            acc += P[0, r, n, u, v]
                        if v > 0:
                            acc += P[1, r, n, u, v - 1]
                    if u > 0:
                        if v < w:
                            acc += P[2, r, n, u - 1, v]
                        if v > 0:
                            acc += P[3, r, n, u - 1, v - 1]
                    Z[r, n, u, v] = acc


def _wino_in(lo, hi, x, V):
    # x (N, C, H, W) -> V (9, 4C, N, th, tw): for each 3x3 tile d of the grid Z (space_to_depth's,
    # cells Z[c, py, px, n, u, v] = x_pad[n, c, 2u + py, 2v + px]) at rows and columns 2t .. 2t + 2,
    # v = Bt d Bt^T with Bt = [[1, -1, 0], [0, 1, 0], [0, -1, 1]], at V[3i + j, c*4 + py*2 + px, n, ti, tj]
    N, C, H, W = x.shape
    th, tw = V.shape[3], V.shape[4]
    zero = x[0, 0, 0, 0] * 0
    for k in range(lo, hi):
        c, n = k // N, k % N
        for py in range(2):
            for px in range(2):
                row = c * 4 + py * 2 + px
                for ti in range(th):
                    r0 = 4 * ti + py - 1
                    for tj in range(tw):
                        s0 = 4 * tj + px - 1
                        d00 = d01 = d02 = d10 = d11 = d12 = d20 = d21 = d22 = zero
                        if 0 <= r0 < H:
                            if s0 >= 0:
                                d00 = x[n, c, r0, s0]
                            d01 = x[n, c, r0, s0 + 2]
                            if s0 + 4 < W:
                                d02 = x[n, c, r0, s0 + 4]
                        d10 = x[n, c, r0 + 2, s0] if s0 >= 0 else zero
                        d11 = x[n, c, r0 + 2, s0 + 2]
                        if s0 + 4 < W:
                            d12 = x[n, c, r0 + 2, s0 + 4]
                        if r0 + 4 < H:
                            if s0 >= 0:
                                d20 = x[n, c, r0 + 4, s0]
                            d21 = x[n, c, r0 + 4, s0 + 2]
                            if s0 + 4 < W:
                                d22 = x[n, c, r0 + 4, s0 + 4]
                        e00, e01, e02 = d00 - d10, d01 - d11, d02 - d12
                        e20, e21, e22 = d20 - d10, d21 - d11, d22 - d12
                        V[0, row, n, ti, tj] = e00 - e01
                        V[1, row, n, ti, tj] = e01
                        V[2, row, n, ti, tj] = e02 - e01
                        V[3, row, n, ti, tj] = d10 - d11
                        V[4, row, n, ti, tj] = d11
                        V[5, row, n, ti, tj] = d12 - d11
                        V[6, row, n, ti, tj] = e20 - e21
                        V[7, row, n, ti, tj] = e21
                        V[8, row, n, ti, tj] = e22 - e21


def _wino_in_adjoint(lo, hi, P, bias, x):
    # the transpose of _wino_in, then depth_to_space: P (9, 4C, N, th, tw) -> x (N, C, H, W) + bias
    # (length 0: no bias). Each tile's Bt^T p Bt is added into a grid of the (c, n) pair, tile by tile
    # in a fixed order, so a cell shared by two tiles sums in the same order on any thread count.
    C, H, W = x.shape[1:]
    th, tw = P.shape[3], P.shape[4]
    gh, gw = 2 * th + 1, 2 * tw + 1
    Zb = numpy.empty((2, 2, gh, gw), dtype=x.dtype)
    N = x.shape[0]
    for k in range(lo, hi):
        c, n = k // N, k % N  # n fastest: P's rows are read on along (n, ti, tj)
        b = bias[c] if bias.shape[0] else 0.0
        Zb[...] = 0
        for py in range(2):
            for px in range(2):
                row = c * 4 + py * 2 + px
                for ti in range(th):
                    for tj in range(tw):
                        p0, p1, p2 = P[0, row, n, ti, tj], P[1, row, n, ti, tj], P[2, row, n, ti, tj]
                        p3, p4, p5 = P[3, row, n, ti, tj], P[4, row, n, ti, tj], P[5, row, n, ti, tj]
                        p6, p7, p8 = P[6, row, n, ti, tj], P[7, row, n, ti, tj], P[8, row, n, ti, tj]
                        # columns: (q0, q1, q2) = (p0, -p0 + p1 - p2, p2) for each row of p
                        q00, q01, q02 = p0, p1 - p0 - p2, p2
                        q10, q11, q12 = p3, p4 - p3 - p5, p5
                        q20, q21, q22 = p6, p7 - p6 - p8, p8
                        u, v = 2 * ti, 2 * tj
                        Zb[py, px, u, v] += q00
                        Zb[py, px, u, v + 1] += q01
                        Zb[py, px, u, v + 2] += q02
                        Zb[py, px, u + 1, v] += q10 - q00 - q20
                        Zb[py, px, u + 1, v + 1] += q11 - q01 - q21
                        Zb[py, px, u + 1, v + 2] += q12 - q02 - q22
                        Zb[py, px, u + 2, v] += q20
                        Zb[py, px, u + 2, v + 1] += q21
                        Zb[py, px, u + 2, v + 2] += q22
        for r in range(H):
            py, u = (r + 1) % 2, (r + 1) // 2
            for s in range(W):
                x[n, c, r, s] = Zb[py, (s + 1) % 2, u, (s + 1) // 2] + b


def _wino_out(lo, hi, M, bias, y):
    # M (9, A, N, th, tw) -> y (N, A, h, w) + bias: each 2x2 tile is At m At^T, At = [[1, 1, 0], [0, 1, 1]]
    N = y.shape[0]
    th, tw = M.shape[3], M.shape[4]
    for k in range(lo, hi):
        o, n = k // N, k % N  # n fastest: M's rows are read on along (n, ti, tj)
        b = bias[o] if bias.shape[0] else 0.0
        for ti in range(th):
            for tj in range(tw):
                m0, m1, m2 = M[0, o, n, ti, tj], M[1, o, n, ti, tj], M[2, o, n, ti, tj]
                m3, m4, m5 = M[3, o, n, ti, tj], M[4, o, n, ti, tj], M[5, o, n, ti, tj]
                m6, m7, m8 = M[6, o, n, ti, tj], M[7, o, n, ti, tj], M[8, o, n, ti, tj]
                q00, q01 = m0 + m1, m1 + m2
                q10, q11 = m3 + m4, m4 + m5
                q20, q21 = m6 + m7, m7 + m8
                y[n, o, 2 * ti, 2 * tj] = q00 + q10 + b
                y[n, o, 2 * ti, 2 * tj + 1] = q01 + q11 + b
                y[n, o, 2 * ti + 1, 2 * tj] = q10 + q20 + b
                y[n, o, 2 * ti + 1, 2 * tj + 1] = q11 + q21 + b


def _wino_out_adjoint(lo, hi, y, M):
    # the transpose of _wino_out (bias aside): y (N, A, h, w) -> M (9, A, N, th, tw), At^T y At
    N = y.shape[0]
    th, tw = M.shape[3], M.shape[4]
    for k in range(lo, hi):
        o, n = k // N, k % N
        for ti in range(th):
            for tj in range(tw):
                y00, y01 = y[n, o, 2 * ti, 2 * tj], y[n, o, 2 * ti, 2 * tj + 1]
                y10, y11 = y[n, o, 2 * ti + 1, 2 * tj], y[n, o, 2 * ti + 1, 2 * tj + 1]
                r01, r11 = y00 + y01, y10 + y11
                M[0, o, n, ti, tj] = y00
                M[1, o, n, ti, tj] = r01
                M[2, o, n, ti, tj] = y01
                M[3, o, n, ti, tj] = y00 + y10
                M[4, o, n, ti, tj] = r01 + r11
                M[5, o, n, ti, tj] = y01 + y11
                M[6, o, n, ti, tj] = y10
                M[7, o, n, ti, tj] = r11
                M[8, o, n, ti, tj] = y11


def _wino_weight(lo, hi, Wc, U, to_u):
    # Wc (A, B, 4, 4) <-> U (9, A, 4B). to_u: U[3i + j, o, c*4 + py*2 + px] = (G g G^T)[i, j] of the
    # 2x2 taps g[ay, ax] = Wc[o, c, 2ay + py, 2ax + px], G = [[1, 0], [1, 1], [0, 1]]; else the
    # transpose, G^T U G, into Wc (the weight gradient from U's).
    B = Wc.shape[1]
    for o in range(lo, hi):
        for c in range(B):
            for py in range(2):
                for px in range(2):
                    col = c * 4 + py * 2 + px
                    if to_u:
                        w00, w01 = Wc[o, c, py, px], Wc[o, c, py, 2 + px]
                        w10, w11 = Wc[o, c, 2 + py, px], Wc[o, c, 2 + py, 2 + px]
                        U[0, o, col] = w00
                        U[1, o, col] = w00 + w01
                        U[2, o, col] = w01
                        U[3, o, col] = w00 + w10
                        U[4, o, col] = (w00 + w01) + (w10 + w11)
                        U[5, o, col] = w01 + w11
                        U[6, o, col] = w10
                        U[7, o, col] = w10 + w11
                        U[8, o, col] = w11
                    else:
                        u0, u1, u2 = U[0, o, col], U[1, o, col], U[2, o, col]
                        u3, u4, u5 = U[3, o, col], U[4, o, col], U[5, o, col]
                        u6, u7, u8 = U[6, o, col], U[7, o, col], U[8, o, col]
                        Wc[o, c, py, px] = (u0 + u1) + (u3 + u4)
                        Wc[o, c, py, 2 + px] = (u1 + u2) + (u4 + u5)
                        Wc[o, c, 2 + py, px] = (u3 + u4) + (u6 + u7)
                        Wc[o, c, 2 + py, 2 + px] = (u4 + u5) + (u7 + u8)


def _add_into(lo, hi, dst, src):
    for i in range(lo, hi):
        for j in range(dst.shape[1]):
            dst[i, j] += src[i, j]


def _expm1_neg(z):
    # exp(z) - 1 for z <= 0 without a call into libm, so that loops over it vectorise: exp(t)^256
    # with t = max(z, -104) / 256 in [-0.41, 0] from its Taylor series to t^13 (remainder below
    # 4e-17 relative, 1e-14 after the eight squarings), in float64, rounded by the caller's dtype.
    # Below -104, exp(z) < 7e-46 is nothing beside 1 in float64.
    t = max(z, -104.0) * 0.00390625
    e = 1.0 / 6227020800.0
    for k in (479001600.0, 39916800.0, 3628800.0, 362880.0, 40320.0, 5040.0, 720.0, 120.0, 24.0, 6.0, 2.0,
              1.0, 1.0):
        e = e * t + 1.0 / k
    for _ in range(8):
        e = e * e
    # near 0, e - 1 would lose the relative precision: the series of exp(z) - 1 itself (to z^12,
    # remainder below 1e-17 relative for z >= -1/4)
    p = 1.0 / 6227020800.0
    for k in (479001600.0, 39916800.0, 3628800.0, 362880.0, 40320.0, 5040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0):
        p = p * z + 1.0 / k
    return p * z if z > -0.25 else e - 1.0


def _act(z, code):
    if code == 1:
        return z if z > 0 else 0.0
    if code == 2:
        r = _expm1_neg_jit(min(z, 0.0))
        return z if z > 0 else r
    if code == 3:
        return z if z > 0 else z * LEAKY_SLOPE
    return z


def _act_grad(y, code):
    # the derivative read from the output y (see batch_norm_act)
    if code == 1:
        return 1.0 if y > 0 else 0.0
    if code == 2:
        return 1.0 if y > 0 else y + 1.0
    if code == 3:
        return 1.0 if y > 0 else LEAKY_SLOPE
    return 1.0


def _bn_act_forward(lo, hi, x, gamma, beta, eps, code, y, mean, var):
    # x, y (N, C, R); per channel: mean, biased variance, then act((x - mean) * gamma / std + beta)
    N, C, R = x.shape
    m = N * R
    for c in range(lo, hi):
        s = 0.0
        for n in range(N):
            for r in range(R):
                s += x[n, c, r]
        mu = s / m
        q = 0.0
        for n in range(N):
            for r in range(R):
                d = x[n, c, r] - mu
                q += d * d
        v = q / m
        a = gamma[c] / math.sqrt(v + eps)
        b = beta[c]
        for n in range(N):
            for r in range(R):
                y[n, c, r] = _act_jit((x[n, c, r] - mu) * a + b, code)
        mean[c] = mu
        var[c] = v


def _bn_act_backward(lo, hi, x, y, gy, gamma, mean, inv_std, code, gx, ggamma, gbeta):
    N, C, R = x.shape
    m = N * R
    for c in range(lo, hi):
        sg = 0.0
        sgx = 0.0
        for n in range(N):
            for r in range(R):
                g = gy[n, c, r] * _act_grad_jit(y[n, c, r], code)
                sg += g
                sgx += g * x[n, c, r]
        inv = inv_std[c]
        gg = inv * (sgx - mean[c] * sg)
        a = gamma[c] * inv
        b = -a * inv * gg / m
        k = -a * sg / m - b * mean[c]
        for n in range(N):
            for r in range(R):
                g = gy[n, c, r] * _act_grad_jit(y[n, c, r], code)
                gx[n, c, r] = g * a + x[n, c, r] * b + k
        ggamma[c] = gg
        gbeta[c] = sg


def _affine_act_backward(lo, hi, x, y, gy, scale, code, gx, gscale, gshift):
    N, C, R = x.shape
    for c in range(lo, hi):
        sg = 0.0
        sgx = 0.0
        for n in range(N):
            for r in range(R):
                g = gy[n, c, r] * _act_grad_jit(y[n, c, r], code)
                sg += g
                sgx += g * x[n, c, r]
                gx[n, c, r] = g * scale[c]
        gscale[c] = sgx
        gshift[c] = sg


def _elu_forward(lo, hi, x, y):
    for i in range(lo, hi):
        for j in range(x.shape[1]):
            y[i, j] = _act_jit(x[i, j], 2)


def _elu_backward(lo, hi, y, gy, gx):
    for i in range(lo, hi):
        for j in range(y.shape[1]):
            gx[i, j] = gy[i, j] * _act_grad_jit(y[i, j], 2)


def _adam(lo, hi, p, g, m, v, one_minus_beta1, one_minus_beta2, alpha_t, eps, eta, keep):
    # chainer.optimizers.Adam's update (no amsgrad, no adabound) in one pass; flat arrays
    for i in range(lo, hi):
        gi = g[i]
        mi = m[i] + one_minus_beta1 * (gi - m[i])
        vi = v[i] + one_minus_beta2 * (gi * gi - v[i])
        m[i] = mi
        v[i] = vi
        p[i] = keep * p[i] - eta * (alpha_t / (math.sqrt(vi) + eps) * mi)


_act_jit, _act_grad_jit, _expm1_neg_jit = _act, _act_grad, _expm1_neg  # replaced by their compiled versions


def _loops():
    if _STATE["loops"] is None:
        numba = _numba()
        if not numba:
            raise RuntimeError("chainer_dcgan's compiled loops need numba (pip install numba)")
        flags = {"reassoc", "contract"}  # sums may be vectorised; each still runs in one fixed order
        helper = numba.njit(inline="always", fastmath=flags)
        g = globals()
        g["_expm1_neg_jit"] = helper(_expm1_neg)
        g["_act_jit"], g["_act_grad_jit"] = helper(_act), helper(_act_grad)
        compile_ = numba.njit(nogil=True, cache=False, fastmath=flags)
        _STATE["inline"] = numba.njit(inline="always", nogil=True, fastmath=flags)
        _STATE["compile"] = compile_
        _STATE["loops"] = {name: compile_(g["_" + name]) for name in (
            "move_weight", "im2col", "col2im", "wino_in", "wino_in_adjoint", "wino_out", "wino_out_adjoint",
            "wino_weight", "space_to_depth", "depth_to_space", "to_grid", "from_grid",
            "add_into", "bn_act_forward", "bn_act_backward", "affine_act_backward", "elu_forward", "elu_backward",
            "adam")}
    return _STATE["loops"]


def _loop(name):
    """The compiled loop ``name``; ``(name, code)`` is a BatchNorm loop made for one activation, whose
    branches on it then vanish from the inner loops (a ReLU backward pass of (32, 128, 24, 24), one
    thread: 2.66 to 2.36 ms)."""
    loops = _loops()
    if name not in loops:
        base_name, code = name
        base = _STATE["inline"](globals()["_" + base_name])
        if base_name == "bn_act_forward":
            def loop(lo, hi, x, gamma, beta, eps, y, mean, var):
                base(lo, hi, x, gamma, beta, eps, code, y, mean, var)
        elif base_name == "bn_act_backward":
            def loop(lo, hi, x, y, gy, gamma, mean, inv_std, gx, ggamma, gbeta):
                base(lo, hi, x, y, gy, gamma, mean, inv_std, code, gx, ggamma, gbeta)
        else:
            def loop(lo, hi, x, y, gy, scale, gx, gscale, gshift):
                base(lo, hi, x, y, gy, scale, code, gx, gscale, gshift)
        # named after its loop and activation in profiles and tracebacks
        label = "_{}_{}".format(base_name, [k for k, v in ACT_CODES.items() if v == code][0] or "identity")
        loop.__code__ = loop.__code__.replace(co_name=label)
        loop.__name__ = loop.__qualname__ = label
        loops[name] = _STATE["compile"](loop)
    return loops[name]


# --- what the fast path calls ---------------------------------------------------------------------------

def _no_bias(dtype):
    return numpy.empty(0, dtype=dtype)


def _to_taps(loop, Wc, count):
    """Conv weight ``(A, B, 4, 4)`` -> ``(count, A, 4B)`` by ``loop`` (its ``to_taps`` direction)."""
    A, B = Wc.shape[:2]
    taps = numpy.empty((count, A, 4 * B), dtype=Wc.dtype)
    _run(loop, A, taps.size, numpy.ascontiguousarray(Wc), taps, True)
    return taps


def _from_taps(loop, taps):
    """``(count, A, 4B)`` -> conv weight ``(A, B, 4, 4)`` by ``loop`` (its other direction)."""
    _, A, B4 = taps.shape
    Wc = numpy.empty((A, B4 // 4, 4, 4), dtype=taps.dtype)
    _run(loop, A, Wc.size, Wc, numpy.ascontiguousarray(taps), False)
    return Wc


def reorder_weight(Wc):
    """As :func:`.stride2_conv.reorder_weight`."""
    return _to_taps("move_weight", Wc, 4)


def restore_weight(Wr):
    """As :func:`.stride2_conv.restore_weight`."""
    return _from_taps("move_weight", Wr)


def reorder_weight_cat(Wc):
    """Conv weight ``(A, B, 4, 4)`` -> ``(A, 16B)``: the taps of :func:`reorder_weight` side by side,
    ``[o, (ay*2+ax)*4B + c*4 + py*2 + px]``, to multiply :func:`im2col`'s rows."""
    A, B = Wc.shape[:2]
    cat = numpy.empty((A, 4, 4 * B), dtype=Wc.dtype)
    _run("move_weight", A, cat.size, numpy.ascontiguousarray(Wc), cat.transpose(1, 0, 2), True)
    return cat.reshape(A, 16 * B)


def restore_weight_cat(cat):
    """Inverse of :func:`reorder_weight_cat`: ``(A, 16B)`` -> ``(A, B, 4, 4)``."""
    A, B16 = cat.shape
    Wc = numpy.empty((A, B16 // 16, 4, 4), dtype=cat.dtype)
    _run("move_weight", A, Wc.size, Wc, numpy.ascontiguousarray(cat).reshape(A, 4, B16 // 4).transpose(1, 0, 2),
         False)
    return Wc


def im2col(Z, n, h, w):
    """The grid ``Z (4B, n*(h+1)*(w+1))`` -> ``(16B, n*h*w)``: the four shifted windows of each output
    pixel stacked, with none of the grid's extra cells (rows ``(ay*2+ax, 4B row)``)."""
    B4 = Z.shape[0]
    col = numpy.empty((4, B4, n, h, w), dtype=Z.dtype)
    _run("im2col", B4, col.size, numpy.ascontiguousarray(Z).reshape(B4, n, h + 1, w + 1), col)
    return col.reshape(4 * B4, n * h * w)


def col2im(P, n, h, w):
    """The transpose of :func:`im2col`: ``(16B, n*h*w)`` -> the grid ``(4B, n*(h+1)*(w+1))``, taps summed."""
    B4 = P.shape[0] // 4
    Z = numpy.empty((B4, n, h + 1, w + 1), dtype=P.dtype)
    _run("col2im", B4, Z.size, numpy.ascontiguousarray(P).reshape(4, B4, n, h, w), Z)
    return Z.reshape(B4, n * (h + 1) * (w + 1))


def wino_input(x):
    """NCHW ``x`` (H, W multiples of 4) -> ``V (9, 4C, N*th*tw)``: the Winograd transform of each 3x3
    tile of ``space_to_depth(x)``'s grid (tiles at even cells; ``th, tw = H/4, W/4``). See
    :mod:`.stride2_conv`, "Winograd"."""
    N, C, H, W = x.shape
    th, tw = H // 4, W // 4
    V = numpy.empty((9, 4 * C, N, th, tw), dtype=x.dtype)
    _run("wino_in", C * N, V.size, numpy.ascontiguousarray(x), V)
    return V.reshape(9, 4 * C, N * th * tw)


def wino_input_adjoint(P, shape, bias=None):
    """The transpose of :func:`wino_input`: ``P (9, 4C, N*th*tw)`` -> NCHW ``shape``, plus ``bias``."""
    N, C, H, W = shape
    x = numpy.empty(shape, dtype=P.dtype)
    b = _no_bias(P.dtype) if bias is None else numpy.ascontiguousarray(bias, dtype=P.dtype)
    _run("wino_in_adjoint", N * C, x.size, numpy.ascontiguousarray(P).reshape(9, 4 * C, N, H // 4, W // 4), b, x)
    return x


def wino_output(M, shape, bias=None):
    """``M (9, A, N*th*tw)`` -> NCHW ``shape`` ``(N, A, 2th, 2tw)``, plus ``bias``: each tile's 2x2 outputs."""
    N, A, h, w = shape
    y = numpy.empty(shape, dtype=M.dtype)
    b = _no_bias(M.dtype) if bias is None else numpy.ascontiguousarray(bias, dtype=M.dtype)
    _run("wino_out", N * A, y.size, numpy.ascontiguousarray(M).reshape(9, A, N, h // 2, w // 2), b, y)
    return y


def wino_output_adjoint(y):
    """The transpose of :func:`wino_output`: NCHW ``y`` (h, w even) -> ``(9, A, N*(h/2)*(w/2))``."""
    N, A, h, w = y.shape
    M = numpy.empty((9, A, N, h // 2, w // 2), dtype=y.dtype)
    _run("wino_out_adjoint", A * N, M.size, numpy.ascontiguousarray(y), M)
    return M.reshape(9, A, N * (h // 2) * (w // 2))


def wino_weight(Wc):
    """Conv weight ``(A, B, 4, 4)`` -> ``U (9, A, 4B)``, the taps' Winograd transform."""
    return _to_taps("wino_weight", Wc, 9)


def wino_weight_grad(gU):
    """The transpose of :func:`wino_weight`: ``(9, A, 4B)`` -> ``(A, B, 4, 4)`` (a weight gradient)."""
    return _from_taps("wino_weight", gU)


def space_to_depth(x, gh, gw):
    """As :func:`.stride2_conv.space_to_depth`: ``(N, C, H, W)`` -> ``(4C, N * gh * gw)``."""
    N, C = x.shape[:2]
    Z = numpy.empty((C, 2, 2, N, gh, gw), dtype=x.dtype)
    _run("space_to_depth", C * N, Z.size, numpy.ascontiguousarray(x), Z)
    return Z.reshape(4 * C, N * gh * gw)


def depth_to_space(Z, shape, gh, gw, bias=None):
    """As :func:`.stride2_conv.depth_to_space`."""
    N, C = shape[:2]
    x = numpy.empty(shape, dtype=Z.dtype)
    b = _no_bias(Z.dtype) if bias is None else numpy.ascontiguousarray(bias, dtype=Z.dtype)
    _run("depth_to_space", N * C, x.size, numpy.ascontiguousarray(Z).reshape(C, 2, 2, N, gh, gw), b, x)
    return x


def to_grid(y, gh, gw):
    """As :func:`.stride2_conv.to_grid`."""
    N, C = y.shape[:2]
    Y = numpy.empty((C, N, gh, gw), dtype=y.dtype)
    _run("to_grid", C * N, Y.size, numpy.ascontiguousarray(y), Y)
    return Y.reshape(C, N * gh * gw)


def from_grid(Y, shape, gh, gw, bias=None):
    """As :func:`.stride2_conv.from_grid`."""
    N, C = shape[:2]
    y = numpy.empty(shape, dtype=Y.dtype)
    b = _no_bias(Y.dtype) if bias is None else numpy.ascontiguousarray(bias, dtype=Y.dtype)
    _run("from_grid", N * C, y.size, numpy.ascontiguousarray(Y).reshape(C, N, gh, gw), b, y)
    return y


def add_into(dst, src):
    """``dst += src`` for 2-D arrays (``dst`` may be a window with a longer row stride)."""
    _run("add_into", dst.shape[0], dst.size, dst, src)


def _channels(a):
    return numpy.ascontiguousarray(a).reshape(a.shape[0], a.shape[1], -1)


def bn_act_forward(x, gamma, beta, eps, activation):
    """Training-mode BatchNorm + activation: returns ``(y, mean, var)``, the statistics biased, in x's dtype."""
    x3 = _channels(x)
    y = numpy.empty(x.shape, dtype=x.dtype)
    C = x3.shape[1]
    mean, var = numpy.empty(C), numpy.empty(C)
    _run(("bn_act_forward", ACT_CODES[activation]), C, y.size, x3, numpy.ascontiguousarray(gamma),
         numpy.ascontiguousarray(beta), float(eps), y.reshape(x3.shape), mean, var)
    return y, mean.astype(x.dtype), var.astype(x.dtype)


def bn_act_backward(x, y, gy, gamma, mean, inv_std, activation):
    """Returns ``(gx, ggamma, gbeta)`` of :func:`bn_act_forward` (``mean``, ``inv_std`` from the forward)."""
    x3 = _channels(x)
    gx = numpy.empty(x.shape, dtype=x.dtype)
    C = x3.shape[1]
    ggamma, gbeta = numpy.empty(C), numpy.empty(C)
    _run(("bn_act_backward", ACT_CODES[activation]), C, gx.size, x3, _channels(y), _channels(gy),
         numpy.ascontiguousarray(gamma), numpy.ascontiguousarray(mean), numpy.ascontiguousarray(inv_std),
         gx.reshape(x3.shape), ggamma, gbeta)
    return gx, ggamma.astype(x.dtype), gbeta.astype(x.dtype)


def affine_act_backward(x, y, gy, scale, activation):
    """Returns ``(gx, gscale, gshift)`` of ``y = activation(x * scale + shift)`` per channel."""
    x3 = _channels(x)
    gx = numpy.empty(x.shape, dtype=x.dtype)
    C = x3.shape[1]
    gscale, gshift = numpy.empty(C), numpy.empty(C)
    _run(("affine_act_backward", ACT_CODES[activation]), C, gx.size, x3, _channels(y), _channels(gy),
         numpy.ascontiguousarray(scale), gx.reshape(x3.shape), gscale, gshift)
    return gx, gscale.astype(x.dtype), gshift.astype(x.dtype)


def _rows(a):
    a = numpy.ascontiguousarray(a)
    return a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(1, -1)


def elu_forward(x):
    """``elu(x)`` (alpha 1) as a new array."""
    y = numpy.empty(x.shape, dtype=x.dtype)
    x2 = _rows(x)
    _run("elu_forward", x2.shape[0], y.size, x2, _rows(y))
    return y


def elu_backward(y, gy):
    """``gy * elu'`` read from the output ``y``."""
    gx = numpy.empty(y.shape, dtype=y.dtype)
    y2 = _rows(y)
    _run("elu_backward", y2.shape[0], gx.size, y2, _rows(gy), _rows(gx))
    return gx


def adam_update(param, grad, m, v, one_minus_beta1, one_minus_beta2, alpha_t, eps, eta, keep):
    """Adam's step in place on C-contiguous ``param``, ``m``, ``v`` (``grad`` read): ``m``, ``v`` move
    towards ``grad`` and ``grad**2``; ``param = keep * param - eta * alpha_t / (sqrt(v) + eps) * m``."""
    flat = param.reshape(-1)
    _run("adam", flat.size, flat.size, flat, numpy.ascontiguousarray(grad).reshape(-1), m.reshape(-1), v.reshape(-1),
         float(one_minus_beta1), float(one_minus_beta2), float(alpha_t), float(eps), float(eta), float(keep))
