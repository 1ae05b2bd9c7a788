"""The startup hook that lets chainer 7.8.1 (the last release) import on today's Python stacks,
in any order.

Installed with chainer-dcgan next to ``chainer_dcgan_shims.pth``, whose one line runs
:func:`register` at interpreter start. Registering only puts a finder at the front of
``sys.meta_path``; this file imports nothing but ``sys`` and is kept small, so start-up stays as
fast. When one of the chainer modules in :data:`SHIMMED` is first imported, the finder loads
:mod:`_chainer_dcgan_shims.patches` and runs its shims around that module, so ``import chainer``
works first, before or without ``import chainer_dcgan``. ``chainer_dcgan`` also calls
:func:`register` on import, which covers a checkout on ``PYTHONPATH`` and ``python -S``.
"""
import sys

#: The modules whose import is shimmed (see :mod:`_chainer_dcgan_shims.patches`).
SHIMMED = frozenset({
    "chainer", "chainer._environment_check", "chainer.testing.helper", "chainer.testing.doctest_helper",
    "chainer.iterators.multiprocess_iterator", "chainer.functions.array.resize_images",
    "chainer.distributions.categorical", "chainer.functions.array.pad_sequence", "chainer.variable",
    "chainer.serializers.hdf5", "chainer.dataset.convert", "chainer.functions.math.fix",
    "chainer.links.activation.maxout", "chainer.links.caffe.protobuf3.caffe_pb2",
    "onnx_chainer.export", "onnx_chainer.functions.array", "onnx_chainer.functions.math",
})


class _HookedLoader:
    """Runs the real loader between a module's before and after hooks."""

    def __init__(self, loader, before, after):
        self.loader, self.before, self.after = loader, before, after

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader
        if self.before is not None:
            self.before()
        try:
            self.loader.exec_module(module)
        finally:
            if self.after is not None:
                self.after(module)


class ShimFinder:
    """A ``sys.meta_path`` finder that wraps the loaders of the chainer modules in :data:`SHIMMED`."""

    def find_spec(self, name, path=None, target=None):
        if name not in SHIMMED:
            return None
        import importlib.machinery

        from _chainer_dcgan_shims import patches

        if name == "chainer._environment_check":
            return importlib.machinery.ModuleSpec(name, patches.EnvironmentCheckLoader, origin=patches.__file__)
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if name in patches.REPLACED:
            spec.loader = patches.REPLACED[name]
        elif hasattr(spec.loader, "exec_module"):
            spec.loader = _HookedLoader(spec.loader, *patches.hooks(name))
        return spec


def register():
    """Put the finder first on ``sys.meta_path`` (idempotent) and shim chainer modules already imported."""
    if not any(isinstance(f, ShimFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, ShimFinder())
    imported = sorted(name for name in SHIMMED if name in sys.modules)
    if imported:
        from _chainer_dcgan_shims import patches

        for name in imported:
            hooks = patches.hooks(name)
            if hooks is None:
                continue
            before, after = hooks
            if before is not None:
                before()
            if after is not None:
                after(sys.modules[name])
