"""The model family. ``faithful`` holds the 2015 Chains (the defaults); variants live beside it.

``from chainer_dcgan.models import Generator, Discriminator, sample_z`` gives the faithful ones
(:func:`generate`, also ``Generator.generate``, draws faces in test mode);
``conditional`` holds the tag-conditional ones (:class:`ConditionalGenerator`,
:class:`ProjectionDiscriminator`).

Every Chain here has a ``config`` dict: the JSON-able constructor arguments that rebuild it, so
``MODEL_CLASSES[type(link).__name__](**link.config)`` makes an empty twin. Model files carry that
pair (see :mod:`chainer_dcgan.models.serialization`).
"""
from chainer_dcgan.models.faithful import Discriminator, Generator, generate, sample_z
from chainer_dcgan.models.conditional import (  # noqa: I100  (after the faithful ones it builds on)
    ConditionalGenerator, ProjectionDiscriminator, UnknownTagError, check_known_tags, encode_tags, parse_tag_spec,
    resolve_tags)

#: Class name -> class, for every Chain a model file may name.
MODEL_CLASSES = {cls.__name__: cls for cls in (Generator, Discriminator, ConditionalGenerator,
                                               ProjectionDiscriminator)}


def is_conditional(link):
    """True for a Chain that takes tags y beside its input (it has a ``tags`` vocabulary)."""
    return isinstance(link, (ConditionalGenerator, ProjectionDiscriminator))


__all__ = ["Generator", "Discriminator", "sample_z", "generate", "MODEL_CLASSES", "ConditionalGenerator",
           "ProjectionDiscriminator", "UnknownTagError", "check_known_tags", "encode_tags", "parse_tag_spec",
           "resolve_tags", "is_conditional"]
