"""``C = A @ B`` and ``C += A @ B`` straight into a window of a larger array, through NumPy's own BLAS.

The stride-2 layers sum four shifted products (:mod:`.stride2_conv`). With ``numpy.matmul`` each one
after the first goes to a temporary and is then added with a second, single-threaded pass over
memory; BLAS's ``gemm`` can add into ``C`` itself (``beta = 1``) and write into a window whose rows
are further apart than its width (``ldc``). This module calls the ``cblas_?gemm`` of the OpenBLAS that
NumPy's wheels carry (``numpy.libs``), with the integer width that build uses, so the thread setting
and kernels are NumPy's.

:func:`gemm` returns False (and does nothing) where it cannot serve: no such library or symbol (other
NumPy builds), other dtypes, or layouts BLAS cannot take without a copy; the caller then uses NumPy.
``CHAINER_DCGAN_BLAS=0`` turns it off.
"""
import ctypes
import glob
import os

import numpy

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
    if os.environ.get("CHAINER_DCGAN_BLAS", "1").strip().lower() not in ("0", "false", "no", "off"):
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


def library():
    """Which library and symbols :func:`gemm` calls, or None where it falls back to NumPy."""
    _load()
    return _STATE.get("library")


def _operand(a):
    """``(transpose flag, leading dimension)`` of a 2-D array BLAS can read in place, else None."""
    item = a.itemsize
    s0, s1 = a.strides
    if s1 == item and s0 % item == 0 and s0 // item >= max(a.shape[1], 1):
        return _NO_TRANS, s0 // item
    if s0 == item and s1 % item == 0 and s1 // item >= max(a.shape[0], 1):
        return _TRANS, s1 // item
    return None


def gemm(a, b, out, accumulate=False):
    """``out = a @ b`` (or ``out += a @ b``); True if done, False if the caller must do it.

    ``a (m, k)``, ``b (k, n)``, ``out (m, n)``: NumPy arrays of one float dtype whose rows (or, for
    ``a`` and ``b``, columns) are contiguous; ``out`` may be a window of a wider array.
    """
    if type(a) is not numpy.ndarray or type(b) is not numpy.ndarray or type(out) is not numpy.ndarray:
        return False
    fn = _load().get(out.dtype)
    if fn is None or a.dtype != out.dtype or b.dtype != out.dtype or a.ndim != 2 or b.ndim != 2:
        return False
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k or out.shape != (m, n) or not out.flags.writeable or min(m, n, k) == 0:
        return False
    ta, tb, tc = _operand(a), _operand(b), _operand(out)
    if ta is None or tb is None or tc is None or tc[0] != _NO_TRANS:
        return False
    fn(_ROW_MAJOR, ta[0], tb[0], m, n, k, 1.0, a.ctypes.data, ta[1], b.ctypes.data, tb[1],
       1.0 if accumulate else 0.0, out.ctypes.data, tc[1])
    return True
