"""Keep freed memory in the process for reuse (glibc): large arrays without fresh pages each time.

glibc's ``malloc`` gives every block above its mmap threshold (at most 32 MB) fresh pages from the
kernel and returns them on ``free``. A CPU training iteration makes and drops hundreds of megabytes
of activations and gradients, so each one is faulted in and zeroed by the kernel again: measured on
a 2-core AVX-512 machine, fresh pages filled at 5.8 GB/s against 24 GB/s for reused memory, and a
batch-100 iteration of the faithful DCGAN took 4.06 s instead of 3.05 s (bench/RESULTS.md).
:func:`reuse_freed_memory` turns mmap off for ``malloc`` (``M_MMAP_MAX = 0``) and stops it from
trimming the heap (``M_TRIM_THRESHOLD``), so freed blocks serve the next iteration. The process keeps
its peak heap until it exits: right for a training run, which
:class:`~chainer_dcgan.training.updater.DCGANUpdater` on the CPU is, so it calls this.

It is process-wide (PyTorch in the same process is served by the same ``malloc``), idempotent, and a
no-op where the C library has no ``mallopt`` (not glibc) or ``CHAINER_DCGAN_MALLOC=0``.
"""
import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
_STATE = {}


def reuse_freed_memory():
    """Set glibc's malloc to keep and reuse freed memory (see the module doc); returns whether it did."""
    if "done" in _STATE:
        return _STATE["done"]
    done = False
    if os.environ.get("CHAINER_DCGAN_MALLOC", "1").strip().lower() not in ("0", "false", "no", "off"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            done = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))
    _STATE["done"] = done
    return done


def policy():
    """One line for logs and benchmarks: whether :func:`reuse_freed_memory` is in force."""
    if _STATE.get("done"):
        return "malloc keeps freed memory (M_MMAP_MAX=0, M_TRIM_THRESHOLD=2^31-1)"
    return "malloc as the C library sets it"
