"""The faithful DCGAN Chains: :class:`Generator` and :class:`Discriminator`.

Link names follow the 2015 original (``l0z, dc1..dc4, bn0l, bn1..bn3`` and ``c0..c3, l4l,
bn1..bn3``) so that an HDF5 file it saved loads with ``chainer.serializers.load_hdf5``. The
original also defined ``bn0`` in both Chains and never used it; loading ignores it.

Variants (tanh output, leaky ReLU, other z sizes) are constructor options; defaults are faithful.

The links are :mod:`chainer_dcgan.links` (Chainer's own, same parameters) so that the 4x4/stride 2
(de)convolutions and BatchNormalization+activation take the fast paths of
:mod:`chainer_dcgan.functions`; ``chainer.using_config("dcgan_fast", False)`` (or the environment
variable ``CHAINER_DCGAN_FAST=0``) runs Chainer's own functions instead, with the same results.
"""
import chainer
import chainer.functions as F
import chainer.links as L
import numpy

from chainer_dcgan import functions, hparams, links


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


class Generator(chainer.Chain):
    """z ``float32 (N, z_dim)`` in [-1, 1] -> image array ``float32 (N, 3, 96, 96)``.

    Linear ``l0z`` to 6x6x512, BatchNorm ``bn0l`` (over the 18,432 features), ReLU, reshape, then
    four 4x4 stride-2 deconvolutions ``dc1..dc4`` (512->256->128->64->3) with BatchNorm+ReLU
    between. The output is unbounded (no tanh, as in the original): roughly ``(pixel-128)/128``.

    Args:
        z_dim (int): latent size (faithful: 100).
        output_activation (str): ``"none"`` (faithful) or ``"tanh"``.
    """

    def __init__(self, z_dim=hparams.Z_DIM, output_activation="none"):
        super().__init__()
        if output_activation not in ("none", "tanh"):
            raise ValueError("output_activation must be 'none' or 'tanh', got {!r}".format(output_activation))
        self.z_dim = z_dim
        self.output_activation = output_activation
        self.config = {"z_dim": z_dim, "output_activation": output_activation}
        c = hparams.GEN_CHANNELS
        s = hparams.BASE_SIZE
        k, st, p = hparams.KSIZE, hparams.STRIDE, hparams.PAD
        with self.init_scope():
            self.l0z = L.Linear(z_dim, s * s * c[0], initialW=_normal())
            self.dc1 = links.Deconvolution2D(c[0], c[1], k, st, p, initialW=_normal())
            self.dc2 = links.Deconvolution2D(c[1], c[2], k, st, p, initialW=_normal())
            self.dc3 = links.Deconvolution2D(c[2], c[3], k, st, p, initialW=_normal())
            self.dc4 = links.Deconvolution2D(c[3], c[4], k, st, p, initialW=_normal())
            self.bn0l = _batch_norm(s * s * c[0])
            self.bn1 = _batch_norm(c[1])
            self.bn2 = _batch_norm(c[2])
            self.bn3 = _batch_norm(c[3])

    def make_hidden(self, n, random_state=None):
        """``n`` latent vectors on this link's device (see :func:`sample_z`)."""
        return sample_z(n, self.z_dim, random_state, self.xp)

    def forward(self, z):
        s, c0 = hparams.BASE_SIZE, hparams.GEN_CHANNELS[0]
        h = self.bn0l(self.l0z(z), activation="relu")
        h = F.reshape(h, (h.shape[0], c0, s, s))
        h = self.bn1(self.dc1(h), activation="relu")
        h = self.bn2(self.dc2(h), activation="relu")
        h = self.bn3(self.dc3(h), activation="relu")
        x = self.dc4(h)
        return F.tanh(x) if self.output_activation == "tanh" else x


class Discriminator(chainer.Chain):
    """Image array ``float32 (N, 3, 96, 96)`` -> logits ``float32 (N, 2)`` (class 0 real, 1 fake).

    Four 4x4 stride-2 convolutions ``c0..c3`` (3->64->128->256->512) with ELU after each and
    BatchNorm ``bn1..bn3`` on all but the first, then Linear ``l4l`` from 6x6x512 to 2 logits.

    Args:
        activation (str): ``"elu"`` (faithful) or ``"leaky_relu"`` (slope 0.2).
    """

    def __init__(self, activation="elu"):
        super().__init__()
        if activation not in ("elu", "leaky_relu"):
            raise ValueError("activation must be 'elu' or 'leaky_relu', got {!r}".format(activation))
        self.activation = activation
        self.config = {"activation": activation}
        c = hparams.DIS_CHANNELS
        s = hparams.BASE_SIZE
        k, st, p = hparams.KSIZE, hparams.STRIDE, hparams.PAD
        with self.init_scope():
            self.c0 = links.Convolution2D(c[0], c[1], k, st, p, initialW=_normal())
            self.c1 = links.Convolution2D(c[1], c[2], k, st, p, initialW=_normal())
            self.c2 = links.Convolution2D(c[2], c[3], k, st, p, initialW=_normal())
            self.c3 = links.Convolution2D(c[3], c[4], k, st, p, initialW=_normal())
            self.l4l = L.Linear(s * s * c[4], 2, initialW=_normal())
            self.bn1 = _batch_norm(c[2])
            self.bn2 = _batch_norm(c[3])
            self.bn3 = _batch_norm(c[4])

    def forward(self, x):
        h = self.c0(x)
        h = functions.elu(h) if self.activation == "elu" else F.leaky_relu(h, 0.2)
        h = self.bn1(self.c1(h), activation=self.activation)
        h = self.bn2(self.c2(h), activation=self.activation)
        h = self.bn3(self.c3(h), activation=self.activation)
        return self.l4l(h)
