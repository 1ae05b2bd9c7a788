"""The model family. ``faithful`` holds the 2015 Chains (the defaults); variants live beside it.

``from chainer_dcgan.models import Generator, Discriminator, sample_z`` gives the faithful ones.
"""
from chainer_dcgan.models.faithful import Discriminator, Generator, sample_z

__all__ = ["Generator", "Discriminator", "sample_z"]
