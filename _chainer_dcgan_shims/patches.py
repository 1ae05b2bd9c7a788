"""The shims themselves, loaded by :mod:`_chainer_dcgan_shims` when a chainer module they fix is
first imported. Each keeps chainer's behaviour and only replaces what today's stack lacks:

* ``chainer._environment_check`` imports ``numpy.distutils`` (gone on Python 3.12 and numpy 2, a
  DeprecationWarning before) and ``pkg_resources`` (gone in setuptools 82). It is replaced by a
  module doing its useful check, "several CuPy packages installed", through ``importlib.metadata``.
* ``numpy.sctypes`` (removed in numpy 2) is read at import by ``chainer.functions.array.as_strided``.
* ``chainer.testing`` imports ``pkg_resources`` for its ``with_requires`` decorators; those two
  modules get a small stand-in answering ``WorkingSet().require`` through ``importlib.metadata``.
* ``Thread.setDaemon`` (deprecated since Python 3.10) is called by ``MultiprocessIterator``.
"""
import sys

#: CuPy distributions; more than one installed breaks CuPy (chainer's own list predates these).
CUPY_PACKAGES = ("cupy", "cupy-cuda11x", "cupy-cuda12x", "cupy-cuda13x")


def _set_sctypes():
    import numpy

    if "sctypes" not in numpy.__dict__:
        numpy.sctypes = {
            "int": [numpy.int8, numpy.int16, numpy.int32, numpy.int64],
            "uint": [numpy.uint8, numpy.uint16, numpy.uint32, numpy.uint64],
            "float": [numpy.float16, numpy.float32, numpy.float64],
            "complex": [numpy.complex64, numpy.complex128],
            "others": [bool, object, bytes, str, numpy.void],
        }


def installed_versions(packages):
    """``[(name, version)]`` of the distributions in ``packages`` that are installed."""
    import importlib.metadata

    found = []
    for name in packages:
        try:
            found.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _check_environment():
    """chainer's ``_environment_check.check`` without ``numpy.distutils`` and ``pkg_resources``."""
    import warnings

    import chainer._version

    for dep in chainer._version._optional_dependencies:
        names = list(dep["packages"])
        if dep["name"] == "CuPy":
            names += [n for n in CUPY_PACKAGES if n not in names]
        found = installed_versions(names)
        if len(found) > 1:
            warnings.warn("Multiple installations of {} detected: {}; uninstall all but one.".format(
                dep["name"], ", ".join("{} {}".format(*f) for f in found)))


class _ResolutionError(Exception):
    """A requirement is not met (``pkg_resources.ResolutionError``)."""


class _DistributionNotFound(_ResolutionError):
    pass


class _VersionConflict(_ResolutionError):
    pass


class _WorkingSet:
    """The part of ``pkg_resources.WorkingSet`` that ``chainer.testing`` uses."""

    def require(self, *requirements):
        import importlib.metadata

        from packaging.requirements import Requirement

        for text in requirements:
            req = Requirement(text)
            try:
                version = importlib.metadata.version(req.name)
            except importlib.metadata.PackageNotFoundError:
                raise _DistributionNotFound(text) from None
            if not req.specifier.contains(version, prereleases=True):
                raise _VersionConflict("{} {} does not satisfy {}".format(req.name, version, text))


def _pkg_resources_stand_in():
    module = type(sys)("pkg_resources")
    module.__doc__ = "chainer-dcgan's stand-in for the pkg_resources API used by chainer.testing."
    module.WorkingSet = _WorkingSet
    module.ResolutionError = _ResolutionError
    module.DistributionNotFound = _DistributionNotFound
    module.VersionConflict = _VersionConflict
    return module


class _WithStandIn:
    """Before/after hooks that show the stand-in as ``pkg_resources`` while a module executes."""

    def before(self):
        self.saved = sys.modules.get("pkg_resources")
        sys.modules["pkg_resources"] = _pkg_resources_stand_in()

    def after(self, module):
        if self.saved is None:
            sys.modules.pop("pkg_resources", None)
        else:
            sys.modules["pkg_resources"] = self.saved


def _quiet_threads(module):
    """``module.threading`` with a Thread whose ``setDaemon`` sets ``daemon`` without a warning."""
    import threading

    class Thread(threading.Thread):
        def setDaemon(self, daemonic):  # noqa: N802 - chainer's spelling
            self.daemon = daemonic

    namespace = type(sys)("threading")
    namespace.__dict__.update(threading.__dict__)
    namespace.Thread = Thread
    module.threading = namespace


def hooks(name):
    """``(before, after)`` for a module name (either may be None), or None when it is not shimmed.

    ``before()`` runs just before the module executes, ``after(module)`` just after.
    """
    if name == "chainer":
        return _set_sctypes, None
    if name in ("chainer.testing.helper", "chainer.testing.doctest_helper"):
        stand_in = _WithStandIn()
        return stand_in.before, stand_in.after
    if name == "chainer.iterators.multiprocess_iterator":
        return None, _quiet_threads
    return None


class EnvironmentCheckLoader:
    """Loads ``chainer._environment_check`` as our module instead of chainer's file."""

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        module.check = _check_environment
