"""The modules that moved when the package went from flat to folders by role, old name -> new name.

Every old dotted name (and any name below it, e.g. ``chainer_dcgan.extensions.ema``) still imports: a
finder on ``sys.meta_path`` answers it with the module object of the new name, so the two names are
one module (same globals, same classes; patching one patches the other). ``chainer_dcgan.X`` attribute
access on the package resolves the old names too. New code uses the new names; this table is the one
place the old ones live (tests/test_moved.py imports each).
"""
import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    # utilities every layer uses
    "chainer_dcgan.atomic": "chainer_dcgan.utils.atomic",
    "chainer_dcgan.jsonio": "chainer_dcgan.utils.jsonio",
    "chainer_dcgan.images": "chainer_dcgan.utils.images",
    "chainer_dcgan.random_state": "chainer_dcgan.utils.random_state",
    # the models, their hyper-parameters, files and shipped names
    "chainer_dcgan.hparams": "chainer_dcgan.models.hparams",
    "chainer_dcgan.serialization": "chainer_dcgan.models.serialization",
    "chainer_dcgan.pretrained": "chainer_dcgan.models.pretrained",
    # datasets
    "chainer_dcgan.manifest": "chainer_dcgan.datasets.manifest",
    # collecting data
    "chainer_dcgan.safebooru": "chainer_dcgan.collection.safebooru",
    "chainer_dcgan.faces": "chainer_dcgan.collection.faces",
    # training
    "chainer_dcgan.updater": "chainer_dcgan.training.updater",
    "chainer_dcgan.snapshots": "chainer_dcgan.training.snapshots",
    "chainer_dcgan.distributed": "chainer_dcgan.training.distributed",
    "chainer_dcgan.extensions": "chainer_dcgan.training.extensions",
    # evaluation
    "chainer_dcgan.inception": "chainer_dcgan.evaluation.inception",
    "chainer_dcgan.metrics": "chainer_dcgan.evaluation.metrics",
    "chainer_dcgan.statistics": "chainer_dcgan.evaluation.statistics",
    "chainer_dcgan.agreement": "chainer_dcgan.evaluation.agreement",
    # z-space
    "chainer_dcgan.tagging": "chainer_dcgan.zspace.tagging",
    # export and the browser demo
    "chainer_dcgan.export_conditional": "chainer_dcgan.export.conditional",
    "chainer_dcgan.web_demo": "chainer_dcgan.demo.server",
    # test doubles
    "chainer_dcgan.safebooru_server": "chainer_dcgan.testing.safebooru_server",
}


def new_name(name):
    """The name ``name`` has now (``name`` itself when it did not move)."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return name


class _Alias(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self.spec = module.__spec__  # the import system sets __spec__ to the old name's; put it back below
        return module

    def exec_module(self, module):
        module.__spec__ = self.spec  # the module already ran under its new name


class MovedFinder(importlib.abc.MetaPathFinder):
    """Answers an old module name with the module of its new name."""

    def find_spec(self, name, path=None, target=None):
        if not name.startswith("chainer_dcgan.") or new_name(name) == name:
            return None
        target_name = new_name(name)
        if importlib.util.find_spec(target_name) is None:
            return None
        return importlib.util.spec_from_loader(name, _Alias(target_name))


def install():
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedFinder())


def package_getattr(name):
    """``chainer_dcgan.<old name>`` as an attribute: the moved module (imported on first use)."""
    full = "chainer_dcgan." + name
    if full in MOVED:
        return importlib.import_module(full)
    raise AttributeError("module 'chainer_dcgan' has no attribute {!r}".format(name))
