"""The faithful DCGAN Chains: :class:`Generator` and :class:`Discriminator`.

Link names follow the 2015 original (``l0z, dc1..dc4, bn0l, bn1..bn3`` and ``c0..c3, l4l,
bn1..bn3``) so that an HDF5 file it saved loads with ``chainer.serializers.load_hdf5``. The
original also defined ``bn0`` in both Chains and never used it; loading ignores it.

Variants (tanh output, leaky ReLU, other z sizes, other image sizes, spectral normalization in D)
are constructor options; defaults are faithful.

Sizes (:func:`architecture`): 96 px is the original (a 6x6 first map, four 4x4 stride-2 blocks).
64, 128 and 256 px start from a 4x4 map and use the same blocks, one more per doubling (4, 5, 6).
Channels follow one rule at every size: the hidden layer next to the image has 64 channels and
each halving of the resolution doubles them, capped at 512 (hparams ``SIZE_MIN_CHANNELS``,
``SIZE_MAX_CHANNELS``); the faithful 96 px widths are exactly this rule::

    size  first map  generator channels (z -> image)   discriminator channels (image -> logits)
      64     4x4     512 256 128 64 3                  3 64 128 256 512
      96     6x6     512 256 128 64 3                  3 64 128 256 512
     128     4x4     512 512 256 128 64 3              3 64 128 256 512 512
     256     4x4     512 512 512 256 128 64 3          3 64 128 256 512 512 512

Link names extend the original's pattern: ``l0z, dc1..dcK, bn0l, bn1..bn(K-1)`` and
``c0..c(K-1), l{K}l, bn1..bn(K-1)`` for K blocks, so the 96 px Chains are today's, link for link.

The links are :mod:`chainer_dcgan.links` (Chainer's own, same parameters) so that the 4x4/stride 2
(de)convolutions and BatchNormalization+activation take the fast paths of
:mod:`chainer_dcgan.functions`; ``chainer.using_config("dcgan_fast", False)`` (or the environment
variable ``CHAINER_DCGAN_FAST=0``) runs Chainer's own functions instead, with the same results.
"""
import chainer
import chainer.functions as F
import chainer.link_hooks
import chainer.links as L
import numpy

from chainer_dcgan import functions, links
from chainer_dcgan.models import hparams


def _normal():
    return chainer.initializers.Normal(hparams.INIT_STD)


def _batch_norm(size):
    return links.BatchNormalization(size, decay=hparams.BN_DECAY, eps=hparams.BN_EPS)


def sample_z(n, z_dim=hparams.Z_DIM, random_state=None, xp=numpy):
    """Draw ``n`` latent vectors uniform in ``[-1, 1]``.

    Args:
        n (int): how many.
        z_dim (int): their dimension.
        random_state (numpy.random.RandomState or int or None): the source; an int seeds a new one,
            None uses NumPy's global state.
        xp: ``numpy`` or ``cupy``: where the result lives. Values are always drawn on the host so
            a seed gives the same z on CPU and GPU.

    Returns:
        float32 ``(n, z_dim)`` in ``[-1, 1]``.
    """
    if random_state is None or isinstance(random_state, (int, numpy.integer)):
        random_state = numpy.random.RandomState(random_state) if random_state is not None else numpy.random
    z = random_state.uniform(hparams.Z_LOW, hparams.Z_HIGH, (n, z_dim)).astype(numpy.float32)
    return z if xp is numpy else xp.asarray(z)


def generate(generator, z, batch_size=100, y=None):
    """Faces for the latent vectors ``z``, in test mode (BatchNorm running statistics), with no graph.

    This is how a trained generator is used; calling the link itself (``generator(z)``) runs in the
    mode of ``chainer.config.train``, which is training mode unless set otherwise, where BatchNorm
    normalizes each batch by its own statistics (one z at a time gives one blurred face for every z),
    and returns a ``chainer.Variable`` with its graph. :meth:`Generator.generate` calls this.

    Args:
        generator: a :class:`Generator` (or any link ``(N, D) -> (N, 3, H, W)``), on any device.
        z: ``float (N, D)`` in ``[-1, 1]``, NumPy or on the generator's device (e.g.
            :meth:`Generator.make_hidden`).
        batch_size (int): faces per forward pass.
        y: ``float (N, K)`` or ``(K,)`` (the same tags for every z) in ``[0, 1]``: the tags, for a
            :class:`~chainer_dcgan.models.ConditionalGenerator`; None for an unconditional one.

    Returns:
        NumPy ``float32 (N, 3, H, W)``, roughly ``(pixel - 128) / 128`` and unclipped
        (:func:`chainer_dcgan.utils.images.to_image` and :func:`~chainer_dcgan.utils.images.tile` make pixels of it).
    """
    host = chainer.backend.CpuDevice()
    z = numpy.asarray(host.send(z), dtype=numpy.float32)
    if z.ndim != 2:
        raise ValueError("z: expected a 2-d array of latent vectors, got shape {}".format(z.shape))
    if len(z) == 0:
        raise ValueError("z: no latent vectors to generate from")
    if y is not None:
        y = numpy.asarray(host.send(y), dtype=numpy.float32)
        y = numpy.broadcast_to(y, (len(z), y.shape[-1])) if y.ndim == 1 else y
        if len(y) != len(z):
            raise ValueError("y: {} rows of tags for {} latent vectors".format(len(y), len(z)))
    device = generator.device
    out = []
    with chainer.using_config("train", False), chainer.using_config("enable_backprop", False):
        for i in range(0, len(z), batch_size):
            args = [device.send(z[i:i + batch_size])]
            if y is not None:
                args.append(device.send(numpy.ascontiguousarray(y[i:i + batch_size])))
            out.append(host.send(generator(*args).array))
    return numpy.concatenate(out).astype(numpy.float32, copy=False)


def architecture(size):
    """The layout of the Chains for ``size`` px images.

    Returns:
        tuple ``(base, gen_channels, dis_channels)``: the side of the first (generator) / last
        (discriminator) feature map in pixels, and the channels of the (de)convolutions, input first.

    Raises:
        ValueError: ``size`` is not one of ``hparams.SIZES``.
    """
    if size not in hparams.SIZES:
        raise ValueError("size must be one of {}, got {!r}".format(", ".join(map(str, hparams.SIZES)), size))
    if size == hparams.IMAGE_SIZE:
        return hparams.BASE_SIZE, hparams.GEN_CHANNELS, hparams.DIS_CHANNELS
    blocks = (size // hparams.SIZE_BASE).bit_length() - 1
    hidden = tuple(min(hparams.SIZE_MAX_CHANNELS, hparams.SIZE_MIN_CHANNELS * 2 ** i) for i in range(blocks))
    return hparams.SIZE_BASE, hidden[::-1] + (3,), (3,) + hidden


class Generator(chainer.Chain):
    """z ``float32 (N, z_dim)`` in [-1, 1] -> image array ``float32 (N, 3, size, size)``.

    Faithful (96 px): Linear ``l0z`` to 6x6x512, BatchNorm ``bn0l`` (over the 18,432 features),
    ReLU, reshape, then four 4x4 stride-2 deconvolutions ``dc1..dc4`` (512->256->128->64->3) with
    BatchNorm+ReLU between. Other sizes add blocks (see :func:`architecture`). The output is
    unbounded (no tanh, as in the original): roughly ``(pixel-128)/128``.

    Args:
        z_dim (int): latent size (faithful: 100).
        output_activation (str): ``"none"`` (faithful) or ``"tanh"``.
        size (int): image side in pixels, one of ``hparams.SIZES`` (faithful: 96).
    """

    def __init__(self, z_dim=hparams.Z_DIM, output_activation="none", size=hparams.IMAGE_SIZE):
        super().__init__()
        if output_activation not in ("none", "tanh"):
            raise ValueError("output_activation must be 'none' or 'tanh', got {!r}".format(output_activation))
        base, c, _ = architecture(size)
        self.z_dim = z_dim
        self.output_activation = output_activation
        self.size = size
        self.base = base
        self.blocks = len(c) - 1
        self.config = {"z_dim": z_dim, "output_activation": output_activation, "size": size}
        k, st, p = hparams.KSIZE, hparams.STRIDE, hparams.PAD
        # Creation order is the original's (it fixes which random draws each weight gets).
        with self.init_scope():
            self.l0z = L.Linear(z_dim, base * base * c[0], initialW=_normal())
            for i in range(1, self.blocks + 1):
                setattr(self, "dc{}".format(i), links.Deconvolution2D(c[i - 1], c[i], k, st, p, initialW=_normal()))
            self.bn0l = _batch_norm(base * base * c[0])
            for i in range(1, self.blocks):
                setattr(self, "bn{}".format(i), _batch_norm(c[i]))

    def make_hidden(self, n, random_state=None):
        """``n`` latent vectors on this link's device (see :func:`sample_z`)."""
        return sample_z(n, self.z_dim, random_state, self.xp)

    def generate(self, z, y=None, batch_size=100):
        """Faces for ``z`` in test mode, with no graph: NumPy ``float32 (N, 3, size, size)``.

        The way to draw faces with a trained generator (see :func:`generate`: ``gen(z)`` runs in
        training mode by default)::

            gen = load_generator("default")
            x = gen.generate(gen.make_hidden(16, random_state=0))   # (16, 3, 96, 96)
            save_image("faces.png", tile(x, 4, 4))

        Args:
            z: ``float (N, z_dim)`` in ``[-1, 1]``, NumPy or on this link's device.
            y: the tags, ``float (N, K)`` or ``(K,)`` in ``[0, 1]``, for a conditional generator only.
            batch_size (int): faces per forward pass.
        """
        return generate(self, z, batch_size=batch_size, y=y)

    def forward(self, z):
        return self.synthesize(z, lambda bn, h: bn(h, activation="relu"))

    def synthesize(self, z, normalize):
        """The forward pass with ``normalize(bn_link, h)`` applying each BatchNorm and the ReLU after it.

        Subclasses change how the BatchNorms are called (the conditional G passes its tags) and keep
        the layers and their order.
        """
        h = normalize(self.bn0l, self.l0z(z))
        h = F.reshape(h, (h.shape[0], -1, self.base, self.base))
        for i in range(1, self.blocks):
            h = normalize(getattr(self, "bn{}".format(i)), getattr(self, "dc{}".format(i))(h))
        x = getattr(self, "dc{}".format(self.blocks))(h)
        return F.tanh(x) if self.output_activation == "tanh" else x


class Discriminator(chainer.Chain):
    """Image array ``float32 (N, 3, size, size)`` -> logits ``float32 (N, 2)`` (class 0 real, 1 fake).

    Faithful (96 px): four 4x4 stride-2 convolutions ``c0..c3`` (3->64->128->256->512) with ELU
    after each and BatchNorm ``bn1..bn3`` on all but the first, then Linear ``l4l`` from 6x6x512
    to 2 logits. Other sizes add blocks (see :func:`architecture`; the Linear is ``l{K}l``).

    Args:
        activation (str): ``"elu"`` (faithful) or ``"leaky_relu"`` (slope 0.2).
        size (int): image side in pixels, one of ``hparams.SIZES`` (faithful: 96).
        spectral_norm (bool): divide every convolution's and the Linear's weight by its largest
            singular value (``chainer.link_hooks.SpectralNormalization``, one power iteration per
            training forward pass) and leave out the BatchNorms, whose scaling would undo that bound
            (Miyato et al. 2018). Faithful: False.
    """

    def __init__(self, activation="elu", size=hparams.IMAGE_SIZE, spectral_norm=False):
        super().__init__()
        if activation not in ("elu", "leaky_relu"):
            raise ValueError("activation must be 'elu' or 'leaky_relu', got {!r}".format(activation))
        base, _, c = architecture(size)
        self.activation = activation
        self.size = size
        self.blocks = len(c) - 1
        self.spectral_norm = bool(spectral_norm)
        self.config = {"activation": activation, "size": size, "spectral_norm": self.spectral_norm}
        k, st, p = hparams.KSIZE, hparams.STRIDE, hparams.PAD
        with self.init_scope():
            for i in range(self.blocks):
                setattr(self, "c{}".format(i), links.Convolution2D(c[i], c[i + 1], k, st, p, initialW=_normal()))
            setattr(self, self.linear_name, L.Linear(base * base * c[-1], 2, initialW=_normal()))
            if not self.spectral_norm:
                for i in range(1, self.blocks):
                    setattr(self, "bn{}".format(i), _batch_norm(c[i + 1]))
        if self.spectral_norm:
            for name in ["c{}".format(i) for i in range(self.blocks)] + [self.linear_name]:
                getattr(self, name).add_hook(chainer.link_hooks.SpectralNormalization())

    @property
    def linear_name(self):
        """Name of the last link, the Linear to 2 logits (``"l4l"`` at 96 px)."""
        return "l{}l".format(self.blocks)

    def _activate(self, h):
        return functions.elu(h) if self.activation == "elu" else F.leaky_relu(h, 0.2)

    def features(self, x):
        """The last convolution's activated features ``float32 (N, C, base, base)`` (``(N, 512, 6, 6)`` at 96 px)."""
        h = self._activate(self.c0(x))
        for i in range(1, self.blocks):
            h = getattr(self, "c{}".format(i))(h)
            if self.spectral_norm:
                h = self._activate(h)
            else:
                h = getattr(self, "bn{}".format(i))(h, activation=self.activation)
        return h

    def forward(self, x):
        return getattr(self, self.linear_name)(self.features(x))
