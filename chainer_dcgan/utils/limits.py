"""What a file or a flag may declare, bounded before anything is allocated.

A file states sizes (an array's shape and dtype, a model's ``z_dim``, a classifier's width) and a
flag states counts (a batch size, a grid's rows); trusted, either one asks for more memory than any
machine has and ends in a MemoryError traceback, or in the process being killed. Two kinds of bound:

* fixed caps documented here, for what the architecture allows (:data:`MAX_Z_DIM`, :data:`MAX_TAGS`,
  :data:`MAX_WIDTH`): no file of the project comes near them;
* a memory budget, :data:`MEMORY_FRACTION` of this machine's physical memory (:func:`memory_budget`),
  for what scales with a flag or a file (:func:`check_bytes`, :func:`check_count`).

Each check raises :class:`TooLarge` (a ``ValueError``) saying the limit; :func:`check_count` names its
parameter (:func:`chainer_dcgan.utils.parameter_error`), so a command line names the flag.
"""
import os

import numpy

from chainer_dcgan.utils import parameter_error

__all__ = ["TooLarge", "MEMORY_FRACTION", "MAX_Z_DIM", "MAX_TAGS", "MAX_WIDTH", "MAX_ITEMSIZE",
           "physical_memory", "memory_budget", "declared_bytes", "check_bytes", "check_count", "human",
           "face_bytes", "training_bytes", "FACE_FACTOR", "TRAINING_FACTOR"]

#: The share of physical memory one allocation that a file or flag asks for may take.
MEMORY_FRACTION = 0.5
#: The largest latent size a model file may declare (the faithful one is 100).
MAX_Z_DIM = 4096
#: The most tags a conditional model or a classifier may declare.
MAX_TAGS = 10000
#: The widest first layer a tag classifier may declare (the shipped one has 16 channels).
MAX_WIDTH = 1024
#: The widest array element a weights file may declare (float64 / int64).
MAX_ITEMSIZE = 8


class TooLarge(ValueError):
    """A file or a parameter asks for more than the limits allow (the message says the limit)."""


def physical_memory():
    """Bytes of physical memory of this machine (4 GiB when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def memory_budget():
    """The most bytes one allocation asked for by a file or a flag may take: :data:`MEMORY_FRACTION`
    of :func:`physical_memory`."""
    return int(physical_memory() * MEMORY_FRACTION)


def human(nbytes):
    """``1.5 GiB``, ``300 MiB``, ``12 KiB``, ``7 bytes``."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if nbytes >= 1 << shift:
            return "{:.3g} {}".format(nbytes / (1 << shift), unit)
    return "{} bytes".format(int(nbytes))


def declared_bytes(shape, dtype):
    """Bytes an array of ``shape`` and ``dtype`` would take, as a Python int (no overflow)."""
    n = 1
    for side in shape:
        n *= int(side)
    return n * numpy.dtype(dtype).itemsize


def _budget_text():
    return "{} ({:.0%} of this machine's {} of memory)".format(
        human(memory_budget()), MEMORY_FRACTION, human(physical_memory()))


def check_bytes(nbytes, what, limit=None):
    """Raise :class:`TooLarge` when ``nbytes`` is over ``limit`` (default :func:`memory_budget`).

    ``what`` begins the message: ``"WHAT declares/needs 8 TiB, over the limit of ..."``.
    """
    if limit is None:
        if nbytes > memory_budget():
            raise TooLarge("{} needs {}, more than the limit of {}".format(what, human(nbytes), _budget_text()))
    elif nbytes > limit:
        raise TooLarge("{} needs {}, more than the limit of {}".format(what, human(nbytes), human(limit)))


def check_count(parameter, count, bytes_each, what, shown=None):
    """Raise :class:`TooLarge` about ``parameter`` when ``count`` items of ``bytes_each`` bytes are
    over the memory budget, e.g. ``"batchsize 100000000: 100000000 training examples need about
    640 TiB, more than the limit of 64 GiB (50% of this machine's 128 GiB of memory): at most 9362"``.

    ``shown`` (default: ``count``) is how the value follows the parameter's name in the message.
    """
    need = int(count) * int(bytes_each)
    if need > memory_budget():
        most = max(1, memory_budget() // max(1, int(bytes_each)))
        raise parameter_error(TooLarge, parameter, " {}: {} {} need about {}, more than the limit of {}: at most {}"
                              .format(count if shown is None else shown, count, what, human(need), _budget_text(),
                                      most))
    return count


#: Bytes of float32 activations a face costs in one generator batch, in units of its float32 image
#: (the widest feature maps hold about 5 images' worth; output, tiles and uint8 copies the rest).
FACE_FACTOR = 16
#: The same for one training example: generator and discriminator activations, their gradients, the
#: real and fake batches (an estimate from the layer sizes, rounded up: it bounds a flag that is
#: far too large, it does not plan memory).
TRAINING_FACTOR = 64


def face_bytes(size):
    """About the bytes one generated ``size`` px face costs (see :data:`FACE_FACTOR`)."""
    return 3 * size * size * 4 * FACE_FACTOR


def training_bytes(size):
    """About the bytes one training example of ``size`` px costs in a batch (see :data:`TRAINING_FACTOR`)."""
    return 3 * size * size * 4 * TRAINING_FACTOR
