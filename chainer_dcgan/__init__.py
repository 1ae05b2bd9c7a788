"""chainer-dcgan: the 2015 Chainer DCGAN that learned to draw anime faces, on today's stack.

``from chainer_dcgan import Generator, Discriminator, DCGANUpdater``
"""
from chainer_dcgan import _compat

_compat.install()

from chainer_dcgan.models import Discriminator, Generator, sample_z  # noqa: E402
from chainer_dcgan.updater import DCGANUpdater  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Generator", "Discriminator", "DCGANUpdater", "sample_z"]
