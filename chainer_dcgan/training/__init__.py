"""Wiring of a training run: optimizers, iterator, updater, trainer and its extensions.

``examples/train_faces.py`` is a thin command line over :func:`build_trainer`.
"""
import glob
import os
import re

import chainer
import numpy
from chainer import training
from chainer.training import extensions as chainer_extensions  # `extensions` is our subpackage here

from chainer_dcgan.datasets.iterators import ResumableIterator
from chainer_dcgan.models import ConditionalGenerator, Discriminator, Generator, ProjectionDiscriminator, hparams
from chainer_dcgan.models.serialization import load_npz_into, save_model
from chainer_dcgan.training.distributed import Context
from chainer_dcgan.training.extensions import GeneratorAverage, SampleGrid, StatisticsDistance, add_fid_evaluation
from chainer_dcgan.training.extensions.conditional_grid import ConditionalSampleGrid, grid_tag_sets
from chainer_dcgan.training.extensions.ema import REFRESH_BATCHES
from chainer_dcgan.training.optimizers import Adam
from chainer_dcgan.training.updater import DCGANUpdater
from chainer_dcgan.utils import parameter_error
from chainer_dcgan.utils.atomic import write_npz
from chainer_dcgan.utils.random_state import seeded_global

SNAPSHOT_PATTERN = "snapshot_iter_{.updater.iteration}"


def _save_snapshot(path, target):
    """Chainer's snapshot extension hands the trainer already serialized (name -> array)."""
    write_npz(path, target)


def make_optimizer(link, context=None, alpha=hparams.ADAM_ALPHA):
    """The original's optimizer on ``link``: Adam(alpha 2e-4, beta1 0.5) + WeightDecay(1e-5).

    ``alpha`` (Adam's learning rate) may differ per model (two time-scale updates, Heusel et al. 2017).
    """
    optimizer = Adam(alpha=alpha, beta1=hparams.ADAM_BETA1, beta2=hparams.ADAM_BETA2, eps=hparams.ADAM_EPS)
    if context is not None:
        optimizer = context.optimizer(optimizer)
    optimizer.setup(link)
    optimizer.add_hook(chainer.optimizer_hooks.WeightDecay(hparams.WEIGHT_DECAY))
    return optimizer


class EveryOrLast:
    """Fires every ``interval`` iterations and at the iteration where ``stop_trigger`` fires."""

    def __init__(self, interval, stop_trigger):
        self.every = training.triggers.IntervalTrigger(interval, "iteration")
        self.last = training.get_trigger(stop_trigger)  # a trigger of our own: triggers keep state

    def __call__(self, trainer):
        every, last = self.every(trainer), self.last(trainer)
        return every or last

    def serialize(self, serializer):
        self.every.serialize(serializer["every"])
        self.last.serialize(serializer["last"])


class IntervalOrLast(EveryOrLast):
    """:class:`EveryOrLast` stored as a plain interval trigger: snapshots keep the layout they had when
    this trigger was ``(interval, "iteration")`` (the sample grids'), so runs started before still resume.
    The ``stop_trigger`` part needs no state (it fires from the updater's iteration)."""

    def serialize(self, serializer):
        self.every.serialize(serializer)


class AnyOf:
    """Fires when any of ``triggers`` fires; every one is called each time (they may keep state)."""

    def __init__(self, *triggers):
        self.triggers = [training.get_trigger(t) for t in triggers]

    def __call__(self, trainer):
        return any([t(trainer) for t in self.triggers])


def _row_sampler(labels):
    """``sample(random_state, n)``: ``n`` rows of ``labels`` drawn with replacement (tags for a conditional G)."""
    labels = numpy.asarray(labels, dtype=numpy.float32)

    def sample(rs, n):
        return labels[rs.randint(0, len(labels), n)]
    return sample


def seeded_models(seed, tags=None, size=hparams.IMAGE_SIZE, spectral_norm=False):
    """A new (Generator, Discriminator) pair for ``size`` px whose initial weights depend on ``seed`` alone.

    Faithful ones by default (``spectral_norm`` as :class:`~chainer_dcgan.models.Discriminator`), or
    with ``tags`` (list of K names) a conditional pair
    (:class:`~chainer_dcgan.models.ConditionalGenerator`, :class:`~chainer_dcgan.models.ProjectionDiscriminator`).
    """
    with seeded_global(seed):
        if tags is not None:
            return (ConditionalGenerator(tags, size=size),
                    ProjectionDiscriminator(tags, size=size, spectral_norm=spectral_norm))
        return Generator(size=size), Discriminator(size=size, spectral_norm=spectral_norm)


def newest_snapshot(out):
    """Path of the trainer snapshot in ``out`` with the highest iteration, or None."""
    best, best_iter = None, -1
    for path in glob.glob(os.path.join(glob.escape(os.fspath(out)), "snapshot_iter_*")):
        m = re.fullmatch(r"snapshot_iter_(\d+)", os.path.basename(path))
        if m and int(m.group(1)) > best_iter:
            best, best_iter = path, int(m.group(1))
    return best


def model_snapshot(link, name):
    """An extension writing ``link`` to ``{out}/{name}_iter_{iteration}.npz`` with
    :func:`~chainer_dcgan.models.serialization.save_model` (weights plus the class/config record)."""

    @training.make_extension(priority=training.PRIORITY_WRITER)
    def write(trainer):
        save_model(os.path.join(trainer.out, "{}_iter_{}.npz".format(name, trainer.updater.iteration)), link)

    return write


def build_trainer(dataset, out, stop_trigger, device, batchsize=hparams.BATCH_SIZE, seed=0,
                  snapshot_interval=1000, display_interval=100, preview_interval=None,
                  preview_shape=(hparams.GRID_ROWS, hparams.GRID_COLS), context=None, gen=None, dis=None,
                  progress=True, statistics=True, loss="softmax", fid_interval=None, fid_samples=1000,
                  tags=None, size=hparams.IMAGE_SIZE, spectral_norm=False, lr_gen=hparams.ADAM_ALPHA,
                  lr_dis=hparams.ADAM_ALPHA, ema=None, augment=None, ema_refresh_batches=REFRESH_BATCHES):
    """A ``chainer.training.Trainer`` for the DCGAN (faithful with the defaults).

    Args:
        dataset: real examples, ``float32 (3, size, size)`` in ``[-1, 1]``.
        out (str): output folder (snapshots, ``log``, ``loss.png``, ``preview/``).
        stop_trigger: e.g. ``(1000, "iteration")`` or ``(10, "epoch")``.
        device: a ``chainer.backend.Device``.
        batchsize (int): per process.
        seed (int): seeds the models' initial weights, z, flips and the shuffling.
        snapshot_interval (int): iterations between trainer and model snapshots.
        display_interval (int): iterations between log lines (and the statistics metric).
        preview_interval (int or None): iterations between sample grids (default: display_interval); the
            last iteration draws one too.
        preview_shape (tuple): (rows, cols) of the sample grids; half of the cells use fixed z.
        context (Context or None): the process layout; only its root writes outputs.
        gen, dis: models to train (default: new faithful ones seeded by ``seed``).
        progress (bool): show a progress bar.
        statistics (bool): report ``stats/distance`` (see :mod:`chainer_dcgan.evaluation.statistics`).
        loss (str): ``"softmax"`` (faithful) or ``"hinge"``.
        fid_interval (int or None): iterations between FID/KID/precision/recall evaluations
            (:class:`~chainer_dcgan.training.extensions.fid.FIDEvaluation`; needs the Inception weights,
            ``python tools/fetch_inception.py``); None: none.
        fid_samples (int): generated and real faces per evaluation.
        tags (list of str or None): train tag-conditional models on these K tags: ``dataset`` then
            yields ``(x, y)`` pairs (:class:`~chainer_dcgan.datasets.TaggedDataset`; on the root its
            ``labels`` pick the grid's rows), the updater is
            :class:`~chainer_dcgan.training.updater.DCGANUpdater` with ``tagged=True`` and the sample grids have one tag set
            per row (``preview/legend.txt`` names them). The statistics and FID extensions are for
            unconditional models: ``statistics`` is ignored, ``fid_interval`` refused.
        size (int): image side of the new models (64, 96, 128 or 256); ignored with ``gen``/``dis``.
        spectral_norm (bool): the new Discriminator uses spectral normalization (and no BatchNorm).
        lr_gen, lr_dis (float): Adam's learning rates of G and D (faithful: both 2e-4).
        ema (float or None): decay of a moving average of G's weights
            (:class:`~chainer_dcgan.training.extensions.GeneratorAverage`), which then draws the sample grids,
            the statistics and FID, and is written as ``gen_ema_iter_N.npz``; None: none (faithful).
        augment (tuple of str or None): DiffAugment steps before D (see :class:`DCGANUpdater`);
            None: none (faithful).
        ema_refresh_batches (int): with ``ema``, forward passes (of ``max(batchsize, 32)`` z) that
            measure the average's BatchNorm statistics at each writer's iteration (see
            :func:`~chainer_dcgan.training.extensions.ema.recompute_batch_statistics`); fewer is cheaper
            and noisier.
    """
    context = context or Context()
    conditional = tags is not None
    if conditional and fid_interval:
        raise parameter_error(ValueError, "fid_interval", ": FID during training is for unconditional models, not "
                              "with tags (evaluate a gen_iter_N.npz with tools/evaluate.py instead)")
    if gen is None or dis is None:
        gen, dis = seeded_models(seed, tags, size=size, spectral_norm=spectral_norm)
    if dataset is not None and len(dataset) and getattr(gen, "size", None) is not None:
        example = dataset[0]
        shape = numpy.shape(example[0] if isinstance(example, tuple) else example)  # (image, label) pairs too
        if shape[-2:] != (gen.size, gen.size):
            raise ValueError("the examples are {}x{} px but the models are built for {} px".format(
                shape[-1], shape[-2], gen.size))
    gen, dis = context.model(gen), context.model(dis)
    gen.to_device(device)
    dis.to_device(device)

    shard = context.scatter(dataset, seed)
    iterator = ResumableIterator(shard, batchsize, seed=seed + context.rank)
    optimizers = {"gen": make_optimizer(gen, context, lr_gen), "dis": make_optimizer(dis, context, lr_dis)}
    updater = DCGANUpdater(iterator, optimizers, device=device, seed=seed + 7919 * context.rank, loss=loss,
                           tagged=conditional, augment=augment)
    trainer = training.Trainer(updater, stop_trigger, out=out)
    context.extend(trainer, EveryOrLast(snapshot_interval, stop_trigger))  # every rank, before the writers
    if not context.is_root:
        return trainer

    display = (display_interval, "iteration")
    sampled = gen  # the generator that the grids, statistics and FID see
    written = [(gen, "gen"), (dis, "dis")]
    if ema is not None:
        # BatchNorm statistics of the average are measured anew whenever a writer reads it
        intervals = {snapshot_interval, display_interval, preview_interval or display_interval, fid_interval}
        refresh = AnyOf(stop_trigger, *[(n, "iteration") for n in sorted(i for i in intervals if i)])
        sample_tags = _row_sampler(dataset.labels) if conditional else None
        average = GeneratorAverage(gen, ema, refresh_trigger=refresh, batches=ema_refresh_batches,
                                   batchsize=max(batchsize, 32), sample_tags=sample_tags)
        trainer.extend(average)
        sampled = average.model
        written.append((sampled, "gen_ema"))
    # triggers keep state: one instance per extension
    # Stored, not deflated: a 96 px snapshot (weights and Adam's moments) is 83 MB deflated against 90 MB
    # stored, and deflating it took 6.7 s of a 2-core machine against about 0.3 s.
    trainer.extend(chainer_extensions.snapshot(savefun=_save_snapshot, filename=SNAPSHOT_PATTERN),
                   trigger=EveryOrLast(snapshot_interval, stop_trigger))
    for link, name in written:
        trainer.extend(model_snapshot(link, name), trigger=EveryOrLast(snapshot_interval, stop_trigger),
                       name="snapshot_" + name)
    rows, cols = preview_shape
    if conditional:
        grid = ConditionalSampleGrid(sampled, grid_tag_sets(dataset.labels, rows, seed), cols, seed=seed)
    else:
        grid = SampleGrid(sampled, rows, cols, fixed=rows * cols // 2, seed=seed)
    trainer.extend(grid, trigger=IntervalOrLast(preview_interval or display_interval, stop_trigger))
    entries = ["epoch", "iteration", "gen/loss", "dis/loss"]
    if statistics and not conditional:
        trainer.extend(StatisticsDistance(sampled, dataset, n=min(100, len(dataset)), seed=seed), trigger=display)
        entries.append("stats/distance")
    if fid_interval:
        add_fid_evaluation(trainer, sampled, dataset, fid_interval, n=fid_samples, device=device, seed=seed)
        entries += ["fid", "kid"]
    trainer.extend(chainer_extensions.LogReport(trigger=display))
    trainer.extend(chainer_extensions.PrintReport(entries + ["elapsed_time"]), trigger=display)
    if chainer_extensions.PlotReport.available():
        trainer.extend(chainer_extensions.PlotReport(["gen/loss", "dis/loss"], "iteration", trigger=display,
                                             file_name="loss.png"))
        if statistics and not conditional:
            trainer.extend(chainer_extensions.PlotReport(["stats/distance"], "iteration", trigger=display,
                                                 file_name="stats.png"))
    if progress:
        trainer.extend(chainer_extensions.ProgressBar(update_interval=1))
    return trainer


def resume(trainer, snapshot):
    """Load a trainer snapshot (a path or a binary file object) into ``trainer`` (iteration, optimizers,
    iterator, random states)."""
    if isinstance(snapshot, (str, os.PathLike)) and not os.path.isfile(snapshot):
        raise parameter_error(FileNotFoundError, "snapshot", " {}: no such snapshot".format(snapshot))
    load_npz_into(snapshot, trainer)
