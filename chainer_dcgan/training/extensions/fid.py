"""A trainer extension reporting FID, KID and precision/recall of the generator against real data."""
import chainer
from chainer import reporter, training
from chainer.training import extensions

from chainer_dcgan.evaluation import inception, metrics


class FIDEvaluation(training.Extension):
    """Reports ``fid``, ``kid``, ``kid_stderr``, ``precision`` and ``recall`` (see
    :mod:`chainer_dcgan.evaluation.metrics`) between ``n`` faces of ``gen`` and ``n`` real examples.

    The z are the same at every evaluation (drawn from ``seed``), so the curve shows the generator
    changing, not sampling noise. The InceptionV3 weights are loaded and the real features
    extracted (or read from the ``.npz`` cache) at the first evaluation; a missing weights file
    raises :class:`~chainer_dcgan.evaluation.inception.InceptionWeightsNotFound` (a ``FileNotFoundError``)
    at construction, before training starts.

    Args:
        gen (chainer_dcgan.models.Generator): the model under training.
        dataset: real examples (a sequence of ``float32 (3, 96, 96)``) or a folder path.
        n (int): faces on each side (the real side uses ``min(n, len(dataset))``). FID depends
            on it: compare runs with the same ``n``.
        device: where InceptionV3 runs (default: ``gen``'s device).
        batchsize (int): images per InceptionV3 pass.
        seed (int): picks the real examples and the z.
        weights (str or None): path of ``default_1.pt`` (None:
            :func:`chainer_dcgan.evaluation.inception.find_weights`).
        cache (bool): cache the real features (see :func:`chainer_dcgan.evaluation.metrics.dataset_features`).
        cache_dir (str or None): the cache folder (default :func:`chainer_dcgan.evaluation.metrics.stats_cache_dir`).
        extractor (FeatureExtractor or None): an already loaded extractor to use instead
            (``device``, ``batchsize`` and ``weights`` are then ignored).
    """

    trigger = 1000, "iteration"
    priority = training.PRIORITY_WRITER
    keys = ("fid", "kid", "kid_stderr", "precision", "recall")

    def __init__(self, gen, dataset, n=1000, device=None, batchsize=50, seed=0, weights=None, cache=True,
                 cache_dir=None, extractor=None):
        if n < 6:
            raise ValueError("FIDEvaluation needs n >= 6 samples, got {}".format(n))
        self.gen = gen
        self.dataset = dataset
        self.n = n
        self.device = device
        self.batchsize = batchsize
        self.seed = seed
        # Fail now, not at the first evaluation hours into a run, when the weights are missing.
        self.weights = weights if extractor is not None else inception.find_weights(weights)
        self.cache = cache
        self.cache_dir = cache_dir
        self._extractor = extractor
        self._real = None

    def _prepare(self):
        if self._extractor is None:
            device = self.device
            if device is None:
                device = chainer.backend.get_device_from_array(next(self.gen.params()).array)
            self._extractor = inception.FeatureExtractor(device, self.weights, self.batchsize)
        if self._real is None:
            features, _ = metrics.dataset_features(self.dataset, self._extractor, self.n, self.seed,
                                                   self.cache, self.cache_dir)
            self._real = features, metrics.statistics(features)

    def evaluate(self):
        """The metrics now, as a dict (see :func:`chainer_dcgan.evaluation.metrics.evaluate`)."""
        self._prepare()
        fake = metrics.generator_features(self.gen, self._extractor, self.n, seed=self.seed + 1)
        real, stats = self._real
        return metrics.evaluate(real, fake, real_statistics=stats)

    def __call__(self, trainer):
        result = self.evaluate()
        reporter.report({key: result[key] for key in self.keys})


def add_fid_evaluation(trainer, gen, dataset, interval, n=1000, device=None, batchsize=50, seed=0, plot=True,
                       **kwargs):
    """Extend ``trainer`` with :class:`FIDEvaluation` every ``interval`` iterations, and (where
    matplotlib is available) ``fid.png`` and ``kid.png`` plots of it. LogReport records the values.

    Args:
        trainer (chainer.training.Trainer): the trainer.
        gen, dataset, n, device, batchsize, seed: see :class:`FIDEvaluation`.
        interval (int): iterations between evaluations.
        plot (bool): add the PlotReports.
        **kwargs: passed on to :class:`FIDEvaluation`.

    Returns:
        the :class:`FIDEvaluation`.
    """
    evaluation = FIDEvaluation(gen, dataset, n=n, device=device, batchsize=batchsize, seed=seed, **kwargs)
    trigger = (interval, "iteration")
    trainer.extend(evaluation, trigger=trigger)
    if plot and extensions.PlotReport.available():
        trainer.extend(extensions.PlotReport(["fid"], "iteration", trigger=trigger, file_name="fid.png"))
        trainer.extend(extensions.PlotReport(["kid"], "iteration", trigger=trigger, file_name="kid.png"))
    return evaluation
