"""Tag-conditional Chains on the faithful architecture: ask for tags, get a face that has them.

:class:`ConditionalGenerator` maps z ``float32 (N, D)`` and tags y ``float32 (N, K)`` in [0, 1]
(multi-hot; fractions set a tag's strength) to faces. Its BatchNormalizations are *conditional*
(de Vries et al. 2017, Dumoulin et al. 2017): each normalises as the faithful one does, then scales
and shifts by ``gamma + y @ gamma_y`` and ``beta + y @ beta_y``, so each tag owns one gamma and one
beta offset per channel. The offsets start at zero: an untrained conditional G is a faithful G.
Both Chains take the faithful ones' ``size`` (64, 96, 128, 256 px) and D its ``spectral_norm``.

:class:`ProjectionDiscriminator` is the faithful D whose REAL logit gains the projection term of
Miyato & Koyama (2018): ``<y @ embed, mean over positions of D's last features>``. Its output keeps
the faithful shape ``(N, 2)``, so the updater's 2-class softmax loss (default) and hinge loss apply
unchanged. The embedding starts at zero: an untrained projection D is a faithful D.

Both record their tag vocabulary (``config["tags"]``, names in order), which
:func:`chainer_dcgan.models.serialization.save_model` writes into the npz; :meth:`ConditionalGenerator.encode_tags`
turns ``{"long_hair": 1, "smile": 0.5}`` into y and refuses a tag the model does not know.
"""
import chainer
import chainer.functions as F
import numpy

from chainer_dcgan import functions, links
from chainer_dcgan.models import hparams
from chainer_dcgan.models.faithful import Discriminator, Generator
from chainer_dcgan.utils import parameter_error


class UnknownTagError(ValueError):
    """A tag asked of a conditional model that is not in its vocabulary (the message lists the known ones)."""


def parse_tag_spec(text):
    """``"long_hair,blue_eyes=0.5"`` -> ``{"long_hair": 1.0, "blue_eyes": 0.5}`` (weights in [0, 1]).

    Raises:
        ValueError: an empty name, a weight that is not a number in [0, 1], or a tag given twice.
    """
    result = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, weight = part.partition("=")
        name = name.strip()
        if not name:
            raise ValueError("tag spec {!r}: empty tag name".format(text))
        value = 1.0
        if sep:
            try:
                value = float(weight)
            except ValueError:
                raise ValueError("tag spec {!r}: weight of {} is not a number: {!r}".format(text, name, weight)) from None
            if not 0.0 <= value <= 1.0:
                raise ValueError("tag spec {!r}: weight of {} must lie in [0, 1], got {}".format(text, name, weight))
        if name in result:
            raise ValueError("tag spec {!r}: {} given twice".format(text, name))
        result[name] = value
    return result


def check_known_tags(vocabulary, tags, owner="this model"):
    """Raise :class:`UnknownTagError` naming the names of ``tags`` that are not in ``vocabulary`` (and,
    as ``owner`` knows them, the known ones): the one check of asked tags against a model's tags."""
    unknown = [t for t in tags if t not in vocabulary]
    if unknown:
        raise UnknownTagError("unknown tag{} {} ({} knows: {})".format(
            "s" if len(unknown) > 1 else "", ", ".join(unknown), owner, ", ".join(vocabulary)))


def encode_tags(vocabulary, tags):
    """y ``float32 (K,)`` for ``tags`` over ``vocabulary`` (K names).

    Args:
        tags: a dict ``name -> weight in [0, 1]``, an iterable of names (weight 1), or a spec string
            for :func:`parse_tag_spec`.

    Raises:
        UnknownTagError: a name not in ``vocabulary``.
    """
    if isinstance(tags, str):
        tags = parse_tag_spec(tags)
    elif not isinstance(tags, dict):
        tags = {t: 1.0 for t in tags}
    check_known_tags(vocabulary, tags)
    index = {t: k for k, t in enumerate(vocabulary)}
    y = numpy.zeros(len(vocabulary), dtype=numpy.float32)
    for t, w in tags.items():
        y[index[t]] = w
    return y


def resolve_tags(generator, spec):
    """The y that the tag ``spec`` (see :func:`parse_tag_spec`) asks of ``generator``: ``float32 (K,)``, or None.

    None when ``generator`` is unconditional and no spec is given; a conditional generator needs a
    spec (an empty one, ``""``, asks for no tag).

    Raises:
        ValueError: about ``tags`` (:func:`~chainer_dcgan.utils.parameter_error`): tags given to an
            unconditional model, none given to a conditional one; a malformed spec; :class:`UnknownTagError`
            for a tag the model does not know.
    """
    tags = getattr(generator, "tags", None)
    if tags is None:
        if spec:
            raise parameter_error(ValueError, "tags", ": this model is not conditional (it was trained without tags)")
        return None
    if spec is None:
        raise parameter_error(ValueError, "tags", " is needed: this model is conditional on {} tags: {}".format(
            len(tags), ", ".join(tags)))
    return encode_tags(tags, spec)


def _check_tags(tags):
    tags = [str(t) for t in tags]
    if not tags:
        raise ValueError("tags: a conditional model needs at least one tag")
    if len(set(tags)) != len(tags):
        raise ValueError("tags: names must be distinct, got {}".format(tags))
    return tags


class ConditionalBatchNormalization(chainer.Chain):
    """BatchNorm whose scale and shift depend on tags: ``(gamma + y W_g) * x_hat + (beta + y W_b)``.

    ``x_hat`` is the faithful normalisation (batch statistics in training, running ones in test
    mode; ``eps`` and ``decay`` from :mod:`chainer_dcgan.models.hparams`), computed by the child ``bn``.

    Args:
        size (int): C, the channels (or features, for ``(N, C)`` inputs).
        n_tags (int): K.

    Parameters: ``gamma``, ``beta`` ``(C,)`` (1 and 0), ``gamma_y``, ``beta_y`` ``(K, C)`` (zeros).
    """

    def __init__(self, size, n_tags):
        super().__init__()
        with self.init_scope():
            self.bn = links.BatchNormalization(size, decay=hparams.BN_DECAY, eps=hparams.BN_EPS,
                                               use_gamma=False, use_beta=False)
            self.gamma = chainer.Parameter(chainer.initializers.One(), (size,))
            self.beta = chainer.Parameter(chainer.initializers.Zero(), (size,))
            self.gamma_y = chainer.Parameter(chainer.initializers.Zero(), (n_tags, size))
            self.beta_y = chainer.Parameter(chainer.initializers.Zero(), (n_tags, size))

    def scale_shift(self, y):
        """Per-example ``(gamma, beta)``, each ``(N, C)``, for tags ``y`` ``(N, K)``."""
        gamma = F.broadcast_to(self.gamma, (len(y), self.gamma.shape[0])) + F.matmul(y, self.gamma_y)
        beta = F.broadcast_to(self.beta, (len(y), self.beta.shape[0])) + F.matmul(y, self.beta_y)
        return gamma, beta

    def forward(self, x, y, activation=None):
        """``x`` ``(N, C)`` or ``(N, C, H, W)``, ``y`` ``(N, K)`` -> like ``x``, after ``activation``."""
        gamma, beta = self.scale_shift(y)
        if x.ndim == 4:
            gamma = F.reshape(gamma, gamma.shape + (1, 1))
            beta = F.reshape(beta, beta.shape + (1, 1))
        h = F.broadcast_to(gamma, x.shape) * self.bn(x) + F.broadcast_to(beta, x.shape)
        return functions.activation(h, activation)


def _as_tags(y, n, k, xp):
    if y is None:
        raise ValueError("a conditional model needs tags y of shape ({}, {}); got None".format(n, k))
    y = y if isinstance(y, chainer.Variable) else chainer.Variable(xp.asarray(y, dtype=numpy.float32))
    if y.shape != (n, k):
        raise ValueError("y must have shape ({}, {}) (one row of {} tag weights per z), got {}".format(
            n, k, k, y.shape))
    return y


class ConditionalGenerator(Generator):
    """z ``float32 (N, D)`` in [-1, 1] and y ``float32 (N, K)`` in [0, 1] -> ``float32 (N, 3, size, size)``.

    The faithful :class:`~chainer_dcgan.models.Generator` of the same ``size`` (same link names and
    shapes: ``l0z``, ``dc1..dcB``) whose BatchNorms ``bn0l, bn1..bn(B-1)`` are
    :class:`ConditionalBatchNormalization`. Each adds ``2 K C`` parameters for its C channels: at 96 px
    ``2 K (18432 + 256 + 128 + 64) = 37,760 K`` more than the faithful G.

    Args:
        tags (list of str): the K tag names, in the order of y's columns.
        z_dim (int), output_activation (str), size (int): as for the faithful Generator.
    """

    def __init__(self, tags, z_dim=hparams.Z_DIM, output_activation="none", size=hparams.IMAGE_SIZE):
        tags = _check_tags(tags)
        super().__init__(z_dim=z_dim, output_activation=output_activation, size=size)
        self.tags = tags
        self.config = dict(self.config, tags=list(tags))
        names = ["bn0l"] + ["bn{}".format(i) for i in range(1, self.blocks)]
        channels = {name: getattr(self, name).avg_mean.shape[0] for name in names}
        for name in names:  # replace the faithful BatchNorms, keeping their order
            delattr(self, name)
        with self.init_scope():
            for name in names:
                setattr(self, name, ConditionalBatchNormalization(channels[name], len(tags)))

    @property
    def n_tags(self):
        return len(self.tags)

    def encode_tags(self, tags):
        """y ``float32 (K,)`` for a dict/list/spec of tags (see :func:`encode_tags`); raises UnknownTagError."""
        return encode_tags(self.tags, tags)

    def forward(self, z, y=None):
        y = _as_tags(y, len(z), self.n_tags, self.xp)
        return self.synthesize(z, lambda bn, h: bn(h, y, activation="relu"))


class ProjectionDiscriminator(Discriminator):
    """Image ``float32 (N, 3, size, size)`` and tags y ``float32 (N, K)`` -> logits ``float32 (N, 2)``.

    The faithful :class:`~chainer_dcgan.models.Discriminator` of the same ``size`` (class 0 real,
    1 fake) plus ``embed``, a ``(K, C)`` matrix (C = 512, the last convolution's channels): the REAL
    logit gains ``sum_c (y @ embed)_c * phi_c`` where ``phi`` is the mean over positions of the last
    convolution's activated features (:meth:`features`). That adds ``512 K`` parameters.

    Args:
        tags (list of str): the K tag names, in the order of y's columns.
        activation (str), size (int), spectral_norm (bool): as for the faithful Discriminator.
            ``embed`` is not normalised (Miyato & Koyama normalise it too); it starts at zero.
    """

    def __init__(self, tags, activation="elu", size=hparams.IMAGE_SIZE, spectral_norm=False):
        tags = _check_tags(tags)
        super().__init__(activation=activation, size=size, spectral_norm=spectral_norm)
        self.tags = tags
        self.config = dict(self.config, tags=list(tags))
        channels = getattr(self, "c{}".format(self.blocks - 1)).out_channels
        with self.init_scope():
            self.embed = chainer.Parameter(chainer.initializers.Zero(), (len(tags), channels))

    @property
    def n_tags(self):
        return len(self.tags)

    def forward(self, x, y=None):
        y = _as_tags(y, len(x), self.n_tags, self.xp)
        h = self.features(x)
        logits = getattr(self, self.linear_name)(h)
        phi = F.mean(h, axis=(2, 3))  # (N, C)
        projection = F.sum(F.matmul(y, self.embed) * phi, axis=1, keepdims=True)  # (N, 1)
        real = self.xp.zeros((1, 2), dtype=numpy.float32)
        real[0, hparams.REAL_LABEL] = 1.0
        return logits + F.matmul(projection, real)


__all__ = ["ConditionalGenerator", "ProjectionDiscriminator", "ConditionalBatchNormalization",
           "UnknownTagError", "check_known_tags", "encode_tags", "parse_tag_spec", "resolve_tags"]
