"""Shims that let chainer 7.8.1 (the last release) import on today's Python stacks.

Imported by ``chainer_dcgan/__init__.py`` before chainer itself. Each shim is a no-op where
the stack still has what chainer expects, so on an old stack nothing changes:

* ``chainer._environment_check`` imports ``numpy.distutils.system_info`` (gone on Python 3.12 and
  numpy 2; a DeprecationWarning on 3.11) and ``pkg_resources`` (gone in setuptools 82, broken
  ``distutils.msvccompiler`` on setuptools 74-81). We register an equivalent module that checks
  the optional dependencies through ``importlib.metadata`` instead.
* ``numpy.sctypes`` (removed in numpy 2) is read at import by ``chainer.functions.array.as_strided``.
* ``Thread.setDaemon`` (deprecated since Python 3.10) is called by ``MultiprocessIterator``.
"""
import importlib.metadata
import sys
import threading
import types
import warnings

import numpy

_installed = False


def _sctypes():
    return {
        "int": [numpy.int8, numpy.int16, numpy.int32, numpy.int64],
        "uint": [numpy.uint8, numpy.uint16, numpy.uint32, numpy.uint64],
        "float": [numpy.float16, numpy.float32, numpy.float64],
        "complex": [numpy.complex64, numpy.complex128],
        "others": [bool, object, bytes, str, numpy.void],
    }


def _check_optional_dependencies():
    """What chainer's own check does, without pkg_resources: warn on a CuPy/iDeep version clash."""
    import chainer._version as version

    for dep in version._optional_dependencies:
        found = []
        for pkg in dep["packages"]:
            try:
                found.append((pkg, importlib.metadata.version(pkg)))
            except importlib.metadata.PackageNotFoundError:
                continue
        if len(found) > 1:
            warnings.warn(
                "Multiple installations of {} detected: {}; keep only one.".format(
                    dep["name"], ", ".join(p for p, _ in found)))


def _environment_check_module():
    module = types.ModuleType("chainer._environment_check")
    module.check = _check_optional_dependencies
    return module


class _QuietThread(threading.Thread):
    def setDaemon(self, daemonic):  # noqa: N802 - chainer's spelling
        self.daemon = daemonic


def install():
    """Apply the shims (idempotent). Must run before the first ``import chainer``."""
    global _installed
    if _installed:
        return
    if "sctypes" not in numpy.__dict__:
        numpy.sctypes = _sctypes()
    sys.modules.setdefault("chainer._environment_check", _environment_check_module())
    _installed = True

    import chainer.iterators.multiprocess_iterator as mpi_iter

    namespace = types.ModuleType("threading")
    namespace.__dict__.update(threading.__dict__)
    namespace.Thread = _QuietThread
    mpi_iter.threading = namespace
