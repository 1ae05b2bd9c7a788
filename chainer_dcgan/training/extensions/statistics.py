"""A trainer extension reporting how far generated image statistics are from the data's."""
import numpy
from chainer import reporter, training

from chainer_dcgan.evaluation.statistics import statistics_distance
from chainer_dcgan.models import generate, sample_z


class StatisticsDistance(training.Extension):
    """Reports ``stats/distance``: :func:`~chainer_dcgan.evaluation.statistics.statistics_distance` between
    ``n`` generated faces (fixed z) and ``n`` real ones (fixed indices).

    Args:
        gen (chainer_dcgan.models.Generator): the model.
        dataset: real examples, ``float32 (3, H, W)``.
        n (int): faces on each side.
        seed (int): picks the z and the real examples.
    """

    trigger = 100, "iteration"
    priority = training.PRIORITY_WRITER

    def __init__(self, gen, dataset, n=100, seed=0):
        rs = numpy.random.RandomState(seed)
        index = rs.choice(len(dataset), size=min(n, len(dataset)), replace=False)
        self.real = numpy.stack([dataset[int(i)] for i in index])
        self.z = sample_z(n, gen.z_dim, rs)
        self.gen = gen

    def __call__(self, trainer):
        reporter.report({"stats/distance": statistics_distance(generate(self.gen, self.z), self.real)})
