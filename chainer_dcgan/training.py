"""Wiring of a training run: optimizers, iterator, updater, trainer and its extensions.

``examples/train_faces.py`` is a thin command line over :func:`build_trainer`.
"""
import glob
import os
import re

import chainer
import numpy
from chainer import training
from chainer.training import extensions

from chainer_dcgan import hparams
from chainer_dcgan.datasets.iterators import ResumableIterator
from chainer_dcgan.distributed import Context
from chainer_dcgan.extensions import SampleGrid, StatisticsDistance, add_fid_evaluation
from chainer_dcgan.models import Discriminator, Generator
from chainer_dcgan.serialization import load_npz_into, save_model
from chainer_dcgan.updater import DCGANUpdater

SNAPSHOT_PATTERN = "snapshot_iter_{.updater.iteration}"


def make_optimizer(link, context=None):
    """The original's optimizer on ``link``: Adam(alpha 2e-4, beta1 0.5) + WeightDecay(1e-5)."""
    optimizer = chainer.optimizers.Adam(alpha=hparams.ADAM_ALPHA, beta1=hparams.ADAM_BETA1,
                                        beta2=hparams.ADAM_BETA2, eps=hparams.ADAM_EPS)
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


def seeded_models(seed):
    """A new faithful (Generator, Discriminator) pair whose initial weights depend on ``seed`` alone."""
    state = numpy.random.get_state()
    numpy.random.seed(seed)  # chainer's initializers draw from NumPy's global random state
    try:
        return Generator(), Discriminator()
    finally:
        numpy.random.set_state(state)


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
    :func:`~chainer_dcgan.serialization.save_model` (weights plus the class/config record)."""

    @training.make_extension(priority=training.PRIORITY_WRITER)
    def write(trainer):
        save_model(os.path.join(trainer.out, "{}_iter_{}.npz".format(name, trainer.updater.iteration)), link)

    return write


def build_trainer(dataset, out, stop_trigger, device, batchsize=hparams.BATCH_SIZE, seed=0,
                  snapshot_interval=1000, display_interval=100, preview_interval=None,
                  preview_shape=(hparams.GRID_ROWS, hparams.GRID_COLS), context=None, gen=None, dis=None,
                  progress=True, statistics=True, loss="softmax", fid_interval=None, fid_samples=1000):
    """A ``chainer.training.Trainer`` for the faithful DCGAN.

    Args:
        dataset: real examples, ``float32 (3, 96, 96)`` in ``[-1, 1]``.
        out (str): output folder (snapshots, ``log``, ``loss.png``, ``preview/``).
        stop_trigger: e.g. ``(1000, "iteration")`` or ``(10, "epoch")``.
        device: a ``chainer.backend.Device``.
        batchsize (int): per process.
        seed (int): seeds the models' initial weights, z, flips and the shuffling.
        snapshot_interval (int): iterations between trainer and model snapshots.
        display_interval (int): iterations between log lines (and the statistics metric).
        preview_interval (int or None): iterations between sample grids (default: display_interval).
        preview_shape (tuple): (rows, cols) of the sample grids; half of the cells use fixed z.
        context (Context or None): the process layout; only its root writes outputs.
        gen, dis: models to train (default: new faithful ones seeded by ``seed``).
        progress (bool): show a progress bar.
        statistics (bool): report ``stats/distance`` (see :mod:`chainer_dcgan.statistics`).
        loss (str): ``"softmax"`` (faithful) or ``"hinge"``.
        fid_interval (int or None): iterations between FID/KID/precision/recall evaluations
            (:class:`~chainer_dcgan.extensions.fid.FIDEvaluation`; needs the Inception weights,
            ``python tools/fetch_inception.py``); None: none.
        fid_samples (int): generated and real faces per evaluation.
    """
    context = context or Context()
    if gen is None or dis is None:
        gen, dis = seeded_models(seed)
    gen, dis = context.model(gen), context.model(dis)
    gen.to_device(device)
    dis.to_device(device)

    shard = context.scatter(dataset, seed)
    iterator = ResumableIterator(shard, batchsize, seed=seed + context.rank)
    optimizers = {"gen": make_optimizer(gen, context), "dis": make_optimizer(dis, context)}
    updater = DCGANUpdater(iterator, optimizers, device=device, seed=seed + 7919 * context.rank, loss=loss)
    trainer = training.Trainer(updater, stop_trigger, out=out)
    context.extend(trainer, EveryOrLast(snapshot_interval, stop_trigger))  # every rank, before the writers
    if not context.is_root:
        return trainer

    display = (display_interval, "iteration")
    # triggers keep state: one instance per extension
    trainer.extend(extensions.snapshot(filename=SNAPSHOT_PATTERN),
                   trigger=EveryOrLast(snapshot_interval, stop_trigger))
    for link, name in ((gen, "gen"), (dis, "dis")):
        trainer.extend(model_snapshot(link, name), trigger=EveryOrLast(snapshot_interval, stop_trigger),
                       name="snapshot_" + name)
    rows, cols = preview_shape
    trainer.extend(SampleGrid(gen, rows, cols, fixed=rows * cols // 2, seed=seed),
                   trigger=(preview_interval or display_interval, "iteration"))
    entries = ["epoch", "iteration", "gen/loss", "dis/loss"]
    if statistics:
        trainer.extend(StatisticsDistance(gen, dataset, n=min(100, len(dataset)), seed=seed), trigger=display)
        entries.append("stats/distance")
    if fid_interval:
        add_fid_evaluation(trainer, gen, dataset, fid_interval, n=fid_samples, device=device, seed=seed)
        entries += ["fid", "kid"]
    trainer.extend(extensions.LogReport(trigger=display))
    trainer.extend(extensions.PrintReport(entries + ["elapsed_time"]), trigger=display)
    if extensions.PlotReport.available():
        trainer.extend(extensions.PlotReport(["gen/loss", "dis/loss"], "iteration", trigger=display,
                                             file_name="loss.png"))
        if statistics:
            trainer.extend(extensions.PlotReport(["stats/distance"], "iteration", trigger=display,
                                                 file_name="stats.png"))
    if progress:
        trainer.extend(extensions.ProgressBar(update_interval=1))
    return trainer


def resume(trainer, snapshot):
    """Load a trainer snapshot (a path or a binary file object) into ``trainer`` (iteration, optimizers,
    iterator, random states)."""
    if isinstance(snapshot, (str, os.PathLike)) and not os.path.isfile(snapshot):
        raise FileNotFoundError("--resume {}: no such snapshot".format(snapshot))
    load_npz_into(snapshot, trainer)
