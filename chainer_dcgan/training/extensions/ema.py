"""An exponential moving average of the generator's weights (Karras et al. 2018, Yazici et al. 2019).

The averaged generator is a separate Chain, a copy of the trained one, that the trainer never
optimizes: after every iteration each of its parameters (BatchNorm's gamma and beta included)
becomes ``d * average + (1 - d) * current``, where ``d`` is ``decay`` once training is under way and
smaller in the first few thousand iterations (:meth:`GeneratorAverage.decay_at`). Its samples are usually smoother and steadier
than the raw generator's at the same iteration; a ``decay`` of 0.999 averages over about the last
1000 steps.

BatchNorm's running statistics are **not** averaged: a mean of the raw generators' statistics does
not describe the activations of the averaged weights (the averaged G then draws grey ghosts in test
mode). Instead :func:`recompute_batch_statistics` measures them anew on the averaged G itself,
with forward passes in training mode over a fixed set of z, whenever something is about to read
the average (sample grids, statistics, FID, the written ``gen_ema_iter_N.npz``).
"""
import copy

import chainer
import numpy
from chainer import training

from chainer_dcgan.models import hparams

__all__ = ["GeneratorAverage", "recompute_batch_statistics", "batch_normalizations"]

#: Forward passes (batches of z) that :func:`recompute_batch_statistics` averages by default.
REFRESH_BATCHES = 20
#: Seed of the z (and tags) of those passes: the same every time, apart from every training stream.
REFRESH_SEED = 20151231


def batch_normalizations(link):
    """``[(name, link)]`` of every BatchNormalization inside ``link`` (conditional ones' inner ones too)."""
    return [(name, child) for name, child in link.namedlinks()
            if isinstance(child, chainer.links.BatchNormalization)]


def recompute_batch_statistics(gen, batches=REFRESH_BATCHES, batchsize=hparams.BATCH_SIZE, seed=REFRESH_SEED,
                               sample_tags=None):
    """Replace the running mean and variance of every BatchNorm in ``gen`` by their exact average over
    ``batches`` forward passes in training mode, each on ``batchsize`` z drawn with ``seed``.

    The result is the mean of the per-batch means and of the per-batch (unbiased) variances, the
    statistics that test mode then uses: what training-mode BatchNorm saw on z from the prior, for
    these weights. Nothing else changes (no gradients, no parameter moves); the counter ``N`` becomes
    ``batches``. Works on NumPy and CuPy, with the fast path on or off.

    Args:
        gen: a :class:`~chainer_dcgan.models.Generator` or a conditional one.
        batches (int): forward passes; 20 gives statistics within about 1 % of their limit.
        batchsize (int): z per pass (the training batch size is the natural choice).
        seed (int): seeds z (and ``sample_tags``): the same seed gives the same statistics.
        sample_tags (callable or None): ``sample_tags(random_state, n)`` -> ``float32 (n, K)`` tags for a
            conditional G (e.g. rows of the training labels); None passes no tags.
    Returns:
        ``gen``.
    """
    if batches < 1 or batchsize < 2:
        raise ValueError("need at least 1 batch of at least 2 z, got {} of {}".format(batches, batchsize))
    norms = [bn for _, bn in batch_normalizations(gen)]
    saved_decay = [bn.decay for bn in norms]
    rs = numpy.random.RandomState(seed)
    try:
        with chainer.using_config("train", True), chainer.no_backprop_mode():
            for k in range(1, batches + 1):
                for bn in norms:  # decay 1 - 1/k: after k passes, the plain mean of the k batches' statistics
                    bn.decay = 1.0 - 1.0 / k
                z = gen.xp.asarray(gen.make_hidden(batchsize, rs))
                if sample_tags is None:
                    gen(z)
                else:
                    gen(z, gen.xp.asarray(sample_tags(rs, batchsize)))
    finally:
        for bn, decay in zip(norms, saved_decay):
            bn.decay = decay
    for bn in norms:
        bn.N = batches
    return gen


class GeneratorAverage(training.Extension):
    """Keeps :attr:`model`, the moving average of ``gen``'s weights, updated after each iteration.

    The average starts as a copy of ``gen`` when the extension is made. It is saved in trainer
    snapshots (so a resumed run continues the same average) and runs before the writers of the same
    iteration (snapshots, sample grids), which therefore see it updated. At the iterations where
    ``refresh_trigger`` fires (those of the writers) the average's BatchNorm statistics are
    recomputed (:func:`recompute_batch_statistics`); call :meth:`refresh` before reading
    :attr:`model` anywhere else.

    Args:
        gen (chainer_dcgan.models.Generator): the trained generator (on its device already).
        decay (float): weight of the old average, in ``[0, 1)``.
        refresh_trigger: a trigger (or ``(n, "iteration")``) for the BatchNorm refresh; None: every
            iteration (exact, but ``batches`` forward passes each time). It is not saved in
            snapshots, so it should depend on the iteration alone (as interval triggers do).
        batches, batchsize (int): of each refresh (see :func:`recompute_batch_statistics`).
        sample_tags (callable or None): tags for a conditional G's refresh passes.
    """

    trigger = 1, "iteration"
    priority = training.PRIORITY_WRITER + 1
    name = "gen_ema"

    def __init__(self, gen, decay, refresh_trigger=None, batches=REFRESH_BATCHES, batchsize=hparams.BATCH_SIZE,
                 sample_tags=None):
        if not 0.0 <= decay < 1.0:
            raise ValueError("EMA decay must lie in [0, 1), got {!r}".format(decay))
        self.gen = gen
        self.decay = float(decay)
        self.model = copy.deepcopy(gen)
        self.model.cleargrads()
        self.refresh_trigger = None if refresh_trigger is None else training.get_trigger(refresh_trigger)
        self.batches = batches
        self.batchsize = batchsize
        self.sample_tags = sample_tags
        self.stale = True  # the copy's statistics are the raw G's until the first refresh
        self._norms = {name for name, _ in batch_normalizations(self.model)}  # their statistics are not averaged

    def decay_at(self, iteration):
        """The decay used after ``iteration`` updates: ``min(decay, (1 + t) / (10 + t))``.

        Early on the average forgets fast (0.18 after the first update, 0.9 after 80, 0.99 after 890),
        so that it follows the generator out of its random start instead of dragging that start along
        for thousands of updates (at a flat 0.999, a quarter of the average is still the initial
        weights after 1,400 updates); later it is ``decay`` itself.
        """
        return min(self.decay, (1.0 + iteration) / (10.0 + iteration))

    def update(self, iteration=None):
        """One averaging step, in place: ``average = d * average + (1 - d) * current`` for every
        parameter, with ``d`` the decay (:meth:`decay_at` ``iteration`` when given). BatchNorm's running
        statistics are left alone (see :meth:`refresh`); other persistent values that are not
        BatchNorm's are copied."""
        decay = self.decay if iteration is None else self.decay_at(iteration)
        current = dict(self.gen.namedparams())
        for name, param in self.model.namedparams():
            param.array *= decay
            param.array += (1.0 - decay) * current[name].array
        links = dict(self.gen.namedlinks())
        for name, link in self.model.namedlinks():
            if name in self._norms:
                continue
            for key in link._persistent:
                setattr(link, key, copy.copy(getattr(links[name], key)))
        self.stale = True

    def refresh(self):
        """Recompute the average's BatchNorm statistics if the weights moved since the last refresh."""
        if self.stale:
            recompute_batch_statistics(self.model, self.batches, self.batchsize, sample_tags=self.sample_tags)
            self.stale = False
        return self.model

    def __call__(self, trainer):
        self.update(trainer.updater.iteration)
        if self.refresh_trigger is None or self.refresh_trigger(trainer):
            self.refresh()

    def serialize(self, serializer):
        self.model.serialize(serializer["model"])
