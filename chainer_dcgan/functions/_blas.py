"""``C = A @ B`` and ``C += A @ B`` straight into a window of a larger array, through NumPy's own BLAS.

The stride-2 layers sum four shifted products (:mod:`.stride2_conv`). With ``numpy.matmul`` each one
after the first goes to a temporary and is then added with a second, single-threaded pass over
memory; BLAS's ``gemm`` can add into ``C`` itself (``beta = 1``) and write into a window whose rows
are further apart than its width (``ldc``). This module calls the ``cblas_?gemm`` of the OpenBLAS that
NumPy's wheels carry (``numpy.libs``), with the integer width that build uses, so the thread setting
and kernels are NumPy's.

``CHAINER_DCGAN_BLAS=mkl`` calls oneMKL's instead (``libmkl_rt`` of the ``mkl`` package from PyPI,
the ``[mkl]`` extra; 685 MB, so never a requirement), which multiplies the layers'
shapes faster on Intel CPUs with AVX-512 (``bench/gemm.py``). It runs sequential (MKL's own threads
would keep spinning between calls, as numba's did) and each product is split by its longer side of
``out`` over the compiled loops' waiting thread pool (:mod:`._kernels`, ``CHAINER_DCGAN_THREADS``);
ctypes releases the GIL during the calls. Without that package this setting falls back to OpenBLAS.

:func:`gemm` returns False (and does nothing) where it cannot serve: no such library or symbol (other
NumPy builds), other dtypes, or layouts BLAS cannot take without a copy; the caller then uses NumPy.
``CHAINER_DCGAN_BLAS=0`` turns it off.
"""
import ctypes
import ctypes.util
import glob
import os
import sys

import numpy

from chainer_dcgan.functions import _kernels

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
# (symbol prefix, symbol suffix, integer type): NumPy 2 wheels (scipy-openblas, 64-bit integers),
# NumPy 1.26 wheels (openblas64_), and a plain 32-bit-integer OpenBLAS.
_FLAVOURS = (("scipy_cblas_", "64_", ctypes.c_int64), ("cblas_", "64_", ctypes.c_int64),
             ("cblas_", "", ctypes.c_int))
_STATE = {}


def _candidates():
    base = os.path.dirname(os.path.dirname(numpy.__file__))
    pattern = ("numpy.libs", "*openblas*.so*"), ("numpy", ".libs", "*openblas*.so*")
    for parts in pattern:
        for path in sorted(glob.glob(os.path.join(base, *parts))):
            yield path


def _load():
    """The ``{dtype: function}`` of the first OpenBLAS found with a known cblas flavour, else {}."""
    if "funcs" in _STATE:
        return _STATE["funcs"]
    funcs = {}
    choice = os.environ.get("CHAINER_DCGAN_BLAS", "1").strip().lower()
    if choice == "mkl":
        funcs = _load_mkl()
        if funcs:
            _STATE["funcs"] = funcs
            return funcs
    if choice not in ("0", "false", "no", "off"):
        for path in _candidates():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix, suffix, int_t in _FLAVOURS:
                names = {numpy.dtype(numpy.float32): prefix + "sgemm" + suffix,
                         numpy.dtype(numpy.float64): prefix + "dgemm" + suffix}
                if not all(hasattr(lib, n) for n in names.values()):
                    continue
                for dtype, name in names.items():
                    fn = getattr(lib, name)
                    real = ctypes.c_float if dtype == numpy.float32 else ctypes.c_double
                    fn.restype = None
                    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, int_t, int_t, int_t, real,
                                   ctypes.c_void_p, int_t, ctypes.c_void_p, int_t, real, ctypes.c_void_p, int_t]
                    funcs[dtype] = fn
                _STATE["library"] = "{} ({}?gemm{})".format(os.path.basename(path), prefix, suffix)
                break
            if funcs:
                break
    _STATE["funcs"] = funcs
    return funcs


def _openblas_function(verb):
    """NumPy's OpenBLAS's ``set_num_threads`` (``verb="set"``, ``void (int)``) or ``get_num_threads``
    (``"get"``, ``int (void)``), or None."""
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_{}_num_threads64_", "openblas_{}_num_threads64_", "openblas_{}_num_threads"):
            fn = getattr(lib, name.format(verb), None)
            if fn is not None:
                fn.argtypes, fn.restype = ([ctypes.c_int], None) if verb == "set" else ([], ctypes.c_int)
                return fn
    return None


def split_products():
    """For a CPU training process: every product :func:`gemm` makes is split over the compiled
    loops' waiting thread pool, and NumPy's OpenBLAS is set to one thread.

    OpenBLAS's own threads keep spinning for a while after each call, and between the products come
    the loops of :mod:`._kernels` on the same cores: with both, a batch-32 iteration used 2.16
    CPU-seconds for 1.10 s of wall time (1.70 for 0.93 split; bench/RESULTS.md). Split over the pool, whose threads wait
    on a queue, the same products run as fast and nothing spins. Process-wide, like
    :func:`chainer_dcgan.utils.memory.reuse_freed_memory`, and called with it by
    :class:`~chainer_dcgan.training.updater.DCGANUpdater` on the CPU; ``CHAINER_DCGAN_BLAS_SPLIT=0``
    leaves OpenBLAS's threads as they are. Returns whether the products are split.
    """
    if "split_asked" in _STATE:
        return bool(_STATE.get("split"))
    _STATE["split_asked"] = True
    if not _load() or os.environ.get("CHAINER_DCGAN_BLAS_SPLIT", "1").strip().lower() in ("0", "false", "no", "off"):
        return bool(_STATE.get("split"))
    set_threads = _openblas_function("set")
    if set_threads is not None:
        set_threads(1)
        _STATE["split"] = _STATE["openblas_one_thread"] = True
    return bool(_STATE.get("split"))


_MKL_THREADING_SEQUENTIAL, _MKL_INTERFACE_LP64 = 1, 0


def _mkl_paths():
    """Where oneMKL's single dynamic library may be: the environment's lib folders (where the ``mkl``
    wheel puts it), then the loader's search path."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, sys.exec_prefix)):
        for path in sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*"))):
            yield path
    found = ctypes.util.find_library("mkl_rt")
    if found:
        yield found


def _load_mkl():
    """oneMKL's ``cblas_?gemm`` (sequential, 32-bit integers) as ``{dtype: function}``, else {}."""
    for path in _mkl_paths():
        try:
            lib = ctypes.CDLL(path)
            lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
            lib.MKL_Set_Interface_Layer.argtypes = [ctypes.c_int]
            # both before any other call into MKL; they answer the layer in force
            if (lib.MKL_Set_Threading_Layer(_MKL_THREADING_SEQUENTIAL) != _MKL_THREADING_SEQUENTIAL
                    or lib.MKL_Set_Interface_Layer(_MKL_INTERFACE_LP64) != _MKL_INTERFACE_LP64):
                continue
            names = {numpy.dtype(numpy.float32): "cblas_sgemm", numpy.dtype(numpy.float64): "cblas_dgemm"}
            funcs = {}
            for dtype, name in names.items():
                fn = getattr(lib, name)
                real = ctypes.c_float if dtype == numpy.float32 else ctypes.c_double
                fn.restype = None
                fn.argtypes = [ctypes.c_int] * 6 + [real, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                                    ctypes.c_int, real, ctypes.c_void_p, ctypes.c_int]
                funcs[dtype] = fn
        except (OSError, AttributeError):
            continue
        _STATE["library"] = "{} (cblas_?gemm, sequential)".format(os.path.basename(path))
        _STATE["split"] = True
        return funcs
    return {}


def library():
    """Which library and symbols :func:`gemm` calls (and whether it splits them over the loops'
    threads), or None where it falls back to NumPy."""
    _load()
    name = _STATE.get("library")
    if name and _STATE.get("split"):
        name += ", split over the loops' threads"
    if name and _STATE.get("openblas_one_thread"):
        name += ", OpenBLAS at one thread"
    return name


def _operand(a):
    """``(transpose flag, leading dimension)`` of a 2-D array BLAS can read in place, else None."""
    item = a.itemsize
    s0, s1 = a.strides
    if s1 == item and s0 % item == 0 and s0 // item >= max(a.shape[1], 1):
        return _NO_TRANS, s0 // item
    if s0 == item and s1 % item == 0 and s1 // item >= max(a.shape[0], 1):
        return _TRANS, s1 // item
    return None


def _prepare(a, b, out, accumulate):
    """``(call, side, size)`` for ``out (+)= a @ b`` where BLAS can take it in place, else None:
    ``call(lo, hi)`` computes the rows (``m >= n``) or else the columns ``lo .. hi - 1`` of ``out``,
    ``side`` is that longer side and ``size`` the multiply-adds ``m * n * k``."""
    if type(a) is not numpy.ndarray or type(b) is not numpy.ndarray or type(out) is not numpy.ndarray:
        return None
    fn = _load().get(out.dtype)
    if fn is None or a.dtype != out.dtype or b.dtype != out.dtype or a.ndim != 2 or b.ndim != 2:
        return None
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or out.shape != (m, n) or not out.flags.writeable or min(m, n, k) == 0:
        return None
    ta, tb, tc = _operand(a), _operand(b), _operand(out)
    if ta is None or tb is None or tc is None or tc[0] != _NO_TRANS:
        return None
    beta = 1.0 if accumulate else 0.0
    item = out.itemsize
    by_rows = m >= n

    def call(lo, hi):
        if by_rows:  # a's row lo is lo * lda elements on untransposed, lo elements on transposed
            a_at = a.ctypes.data + lo * item * (ta[1] if ta[0] == _NO_TRANS else 1)
            fn(_ROW_MAJOR, ta[0], tb[0], hi - lo, n, k, 1.0, a_at, ta[1], b.ctypes.data, tb[1], beta,
               out.ctypes.data + lo * tc[1] * item, tc[1])
        else:  # b's column lo: lo elements untransposed, lo * ldb transposed
            b_at = b.ctypes.data + lo * item * (1 if tb[0] == _NO_TRANS else tb[1])
            fn(_ROW_MAJOR, ta[0], tb[0], m, hi - lo, k, 1.0, a.ctypes.data, ta[1], b_at, tb[1], beta,
               out.ctypes.data + lo * item, tc[1])
    return call, max(m, n), m * n * k


def _run_parts(jobs):
    """Run ``jobs`` (one list of ``(call, lo, hi)`` per thread): the first on the calling thread, the
    others on the pool."""
    pool = _pool()

    def work(job):
        for call, lo, hi in job:
            call(lo, hi)
    futures = [pool.submit(work, job) for job in jobs[1:] if job]
    work(jobs[0])
    for f in futures:
        f.result()


def _split(side, parts):
    return [(side * i // parts, side * (i + 1) // parts) for i in range(parts)]


def gemm(a, b, out, accumulate=False):
    """``out = a @ b`` (or ``out += a @ b``); True if done, False if the caller must do it.

    ``a (m, k)``, ``b (k, n)``, ``out (m, n)``: NumPy arrays of one float dtype whose rows (or, for
    ``a`` and ``b``, columns) are contiguous; ``out`` may be a window of a wider array.
    """
    plan = _prepare(a, b, out, accumulate)
    if plan is None:
        return False
    call, side, size = plan
    if _STATE.get("split") and size >= SPLIT_ABOVE and a.shape[1] >= DEPTH_SPLIT_ABOVE * side:
        _depth_halves(a, b, out, accumulate)
        return True
    pool = _pool() if _STATE.get("split") and size >= SPLIT_ABOVE else None
    if pool is None:
        call(0, side)
        return True
    # split by the longer side of out over the threads
    _run_parts([[(call, lo, hi)] for lo, hi in _split(side, _STATE["threads"]) if hi > lo])
    return True


#: Where products are split, one whose depth ``k`` is this many times its output's longer side (the
#: RGB layers' weight gradients: 64 x 48 outputs, depth n*48*48) is split in two halves of ``k``
#: instead, so each thread reads half of both operands rather than all of one.
DEPTH_SPLIT_ABOVE = 64


def _depth_halves(a, b, out, accumulate):
    """``out (+)= a @ b`` as ``a[:, :h] @ b[:h] + a[:, h:] @ b[h:]``, the second half on the pool
    (after the first where there is none, so the sums do not depend on the thread count)."""
    h = a.shape[1] // 2
    part = numpy.empty_like(out)
    first = _prepare(a[:, :h], b[:h], out, accumulate)[0]
    second = _prepare(a[:, h:], b[h:], part, False)[0]
    m, n = out.shape
    side = max(m, n)
    if _pool() is None:
        first(0, side)
        second(0, side)
    else:
        _run_parts([[(first, 0, side)], [(second, 0, side)]])
    out += part


def gemm_many(products):
    """Several independent products ``out = a @ b``, ``products`` a list of ``(a, b, out)`` of about
    equal size; True if done, False (nothing done) where any of them is not for :func:`gemm`.

    Where products are split, whole products go to each thread (``len // threads`` of them) and only
    the rest are split by their longer side, so each thread multiplies a few large products instead of
    half of every one (the Winograd path's nine: 1.1 to 1.4 times faster at batch 32 and 16).
    """
    plans = [_prepare(a, b, out, False) for a, b, out in products]
    if any(plan is None for plan in plans):
        return False
    pool = _pool() if _STATE.get("split") and plans and plans[0][2] >= SPLIT_ABOVE else None
    if pool is None:
        for call, side, _ in plans:
            call(0, side)
        return True
    threads = _STATE["threads"]
    whole = len(plans) // threads
    jobs = [[(call, 0, side) for call, side, _ in plans[i * whole:(i + 1) * whole]] for i in range(threads)]
    for call, side, _ in plans[threads * whole:]:
        for job, (lo, hi) in zip(jobs, _split(side, threads)):
            if hi > lo:
                job.append((call, lo, hi))
    _run_parts(jobs)
    return True


#: A product of fewer multiply-adds runs on the calling thread alone (where products are split).
SPLIT_ABOVE = 1 << 18


def _pool():
    """The compiled loops' thread pool (None with one thread), over which split products run."""
    pool = _kernels._pool()
    _STATE["threads"] = _kernels._STATE["threads"]
    return pool
