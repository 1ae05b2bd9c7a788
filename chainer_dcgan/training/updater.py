"""The adversarial training step of the original, as a ``chainer.training`` Updater."""
import chainer
import chainer.functions as F
import numpy
from chainer import training

from chainer_dcgan.functions import _blas
from chainer_dcgan.models import hparams
from chainer_dcgan.training.diffaugment import check_steps, diff_augment
from chainer_dcgan.utils.memory import reuse_freed_memory
from chainer_dcgan.utils.random_state import serialize_random_state


def _grads(loss, link):
    """``loss.backward()`` restricted to the paths that reach ``link``'s parameters, which get their ``grad``."""
    params = [p for p in link.params() if p.requires_grad]
    chainer.grad([loss], params, set_grad=True)


class DCGANUpdater(training.updaters.StandardUpdater):
    """One iteration of the 2015 anime-face DCGAN.

    Per iteration: draw z uniform in [-1, 1]; ``x_fake = G(z)``; ``y_fake = D(x_fake)``;
    ``y_real = D(x_real)`` on a randomly flipped real batch; then

    * ``gen/loss = softmax_cross_entropy(y_fake, REAL)``,
    * ``dis/loss = softmax_cross_entropy(y_fake, FAKE) + softmax_cross_entropy(y_real, REAL)``,

    with one forward pass feeding both losses, G updated first and then D, as in the original.
    Both losses are reported with ``chainer.report``.

    The random source for z and the flips is a ``numpy.random.RandomState`` saved in snapshots,
    so a seeded run resumed from a snapshot replays the same iterations.

    Args:
        iterator: yields batches of ``float32 (3, 96, 96)`` arrays in ``[-1, 1]``.
        optimizer (dict): ``{"gen": ..., "dis": ...}`` set up on the Generator and Discriminator.
        device: a ``chainer.backend.Device`` (or specifier) where the batch goes.
        seed (int or None): seed of the updater's random source.
        loss (str): ``"softmax"`` (faithful 2-class cross-entropy) or ``"hinge"``.
        flip (bool): random horizontal flips of the real batch (faithful: True).
        tagged (bool): tag-conditional training (:class:`ConditionalUpdater` says how); the
            iterator then yields ``(x, y)`` pairs, ``y`` ``float32 (K,)``.
        augment (tuple of str or None): DiffAugment steps (:mod:`chainer_dcgan.training.diffaugment`)
            applied to the real and the fake batch before D, each with its own draws from the
            updater's random source; None (faithful): D sees the images as they are.
    """

    def __init__(self, iterator, optimizer, device=None, seed=None, loss="softmax", flip=True, tagged=False,
                 augment=None, **kwargs):
        if set(optimizer) != {"gen", "dis"}:
            raise ValueError("optimizer must be a dict with keys 'gen' and 'dis', got {}".format(sorted(optimizer)))
        if loss not in ("softmax", "hinge"):
            raise ValueError("loss must be 'softmax' or 'hinge', got {!r}".format(loss))
        super().__init__(iterator, optimizer, device=device, **kwargs)
        if self.device is None or self.device.xp is numpy:
            reuse_freed_memory()  # a CPU run: its activations reuse freed memory (utils/memory.py)
            _blas.split_products()  # and its products run on the loops' threads, none spinning
        self.random_state = numpy.random.RandomState(seed)
        self.loss = loss
        self.flip = flip
        self.tagged = tagged
        self.augment = check_steps(augment) if augment else None

    def for_dis(self, x):
        """``x`` as D sees it: through the DiffAugment steps when the updater has them."""
        return diff_augment(x, self.random_state, self.augment) if self.augment else x

    @property
    def generator(self):
        """The :class:`~chainer_dcgan.models.Generator` that the ``"gen"`` optimizer updates."""
        return self._optimizers["gen"].target

    @property
    def discriminator(self):
        """The :class:`~chainer_dcgan.models.Discriminator` that the ``"dis"`` optimizer updates."""
        return self._optimizers["dis"].target

    def _labels(self, xp, n, label):
        return xp.full((n,), label, dtype=numpy.int32)

    def loss_gen(self, y_fake):
        """G's loss on D's logits for its fakes, ``float32 (N, 2)``; reported as ``gen/loss``.

        Returns:
            a scalar float32 Variable: the cross-entropy towards ``REAL_LABEL`` (faithful), or the
            mean fake-minus-real logit (hinge).
        """
        xp = chainer.backend.get_array_module(y_fake)
        if self.loss == "hinge":
            loss = F.mean(y_fake[:, hparams.FAKE_LABEL] - y_fake[:, hparams.REAL_LABEL])
        else:
            loss = F.softmax_cross_entropy(y_fake, self._labels(xp, len(y_fake), hparams.REAL_LABEL))
        chainer.report({"loss": loss}, self.generator)
        return loss

    def loss_dis(self, y_fake, y_real):
        """D's loss on its logits ``float32 (N, 2)`` for fakes and reals; reported as ``dis/loss``.

        Returns:
            a scalar float32 Variable: the sum of both batches' cross-entropies (fakes towards
            ``FAKE_LABEL``, reals towards ``REAL_LABEL``), or the sum of both hinge margins.
        """
        xp = chainer.backend.get_array_module(y_fake)
        if self.loss == "hinge":
            margin = lambda y, sign: F.mean(F.relu(1.0 - sign * (y[:, hparams.REAL_LABEL] - y[:, hparams.FAKE_LABEL])))  # noqa: E731
            loss = margin(y_real, 1.0) + margin(y_fake, -1.0)
        else:
            loss = (F.softmax_cross_entropy(y_fake, self._labels(xp, len(y_fake), hparams.FAKE_LABEL))
                    + F.softmax_cross_entropy(y_real, self._labels(xp, len(y_real), hparams.REAL_LABEL)))
        chainer.report({"loss": loss}, self.discriminator)
        return loss

    def real_batch(self):
        """The next real batch on the device, ``float32 (N, 3, H, W)``, randomly flipped; when
        ``tagged``, ``(x, y)`` with its tags ``float32 (N, K)``."""
        batch = self.get_iterator("main").next()
        n = len(batch)
        flips = self.random_state.uniform(size=n) < hparams.FLIP_PROBABILITY if self.flip else None
        x = self.converter(batch, self.device)
        if self.tagged:
            x, y = x
        if flips is not None and flips.any():
            xp = self.device.xp
            mask = xp.asarray(flips.reshape(n, 1, 1, 1))
            x = xp.where(mask, x[..., ::-1], x)
        return (x, y) if self.tagged else x

    def fake_tags(self, tags_real):
        """The tag sets for the fakes: the rows of ``tags_real`` ``(N, K)`` permuted by the updater's random source."""
        order = self.random_state.permutation(len(tags_real))
        return tags_real[self.device.xp.asarray(order)]

    def update_core(self):
        """One iteration: a real batch, one forward pass, then G's update and D's (see the class)."""
        gen_opt, dis_opt = self.get_optimizer("gen"), self.get_optimizer("dis")
        gen, dis = self.generator, self.discriminator

        if self.tagged:
            x_real, tags_real = self.real_batch()
            fake_y, real_y = (self.fake_tags(tags_real),), (tags_real,)
        else:
            x_real, fake_y, real_y = self.real_batch(), (), ()
        z = gen.make_hidden(len(x_real), self.random_state)
        x_fake = gen(z, *fake_y)
        y_fake = dis(self.for_dis(x_fake), *fake_y)
        y_real = dis(self.for_dis(x_real), *real_y)

        # Each loss is backpropagated only as far as its own model's parameters need
        # (chainer.grad): G's loss passes through D without computing D's weight gradients,
        # which the original computed and threw away, and D's loss stops at D's input. The
        # parameters' gradients are those of Variable.backward().
        gen.cleargrads()
        dis.cleargrads()
        _grads(self.loss_gen(y_fake), gen)
        gen_opt.update()

        # D's gradients come from its own loss alone; cut the graph at G's output so D's
        # backward pass does not flow into G.
        x_fake.unchain_backward()
        dis.cleargrads()
        _grads(self.loss_dis(y_fake, y_real), dis)
        dis_opt.update()

    def serialize(self, serializer):
        super().serialize(serializer)
        serialize_random_state(serializer["random_state"], self.random_state)


class ConditionalUpdater(DCGANUpdater):
    """One iteration of tag-conditional training (same losses and update order as :class:`DCGANUpdater`).

    The real batch comes with its tags: ``(x, y)`` pairs (a
    :class:`~chainer_dcgan.datasets.TaggedDataset`). Fakes are conditioned on the same batch's tag
    sets in a random order: rows of the training data itself, so the joint distribution of tags
    (one hair colour at a time, ...) is the data's, on every ChainerMN rank without shared state.
    D sees each image with the tags it was made for (fakes) or has (reals):
    ``dis(G(z, y_f), y_f)`` and ``dis(x, y)``.

    Args:
        iterator: yields batches of ``(float32 (3, 96, 96), float32 (K,))`` pairs.
        optimizer (dict): ``{"gen": ..., "dis": ...}`` set up on a
            :class:`~chainer_dcgan.models.ConditionalGenerator` and a
            :class:`~chainer_dcgan.models.ProjectionDiscriminator`.
        **kwargs: as for :class:`DCGANUpdater` (``device``, ``seed``, ``loss``, ``flip``).
    """

    def __init__(self, iterator, optimizer, **kwargs):
        super().__init__(iterator, optimizer, tagged=True, **kwargs)
