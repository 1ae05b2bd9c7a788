"""chainer 7.8.1 on today's stacks: importing chainer_dcgan first makes chainer import cleanly."""
import subprocess
import sys

import numpy

SCRIPT = """
import chainer_dcgan, chainer, numpy
import chainer.functions as F
from chainer_dcgan import Generator, Discriminator
x = numpy.zeros((2, 3, 8, 8), numpy.float32)
F.as_strided(x, (2,), (4,))  # reads numpy.sctypes, gone in numpy 2
it = chainer.iterators.MultiprocessIterator(list(range(8)), 2, n_processes=1, shuffle=False)
assert it.next() == [0, 1]  # starts a thread through Thread.setDaemon
it.finalize()
print("ok", chainer.__version__)
"""


def test_import_with_deprecation_warnings_as_errors():
    proc = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", SCRIPT],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ok 7.8.1" in proc.stdout


def test_sctypes_present_for_chainer():
    assert set(numpy.sctypes) >= {"int", "uint", "float"}


def test_shim_is_idempotent():
    from chainer_dcgan import _compat

    _compat.install()
    _compat.install()
    import chainer

    assert chainer.__version__ == "7.8.1"
