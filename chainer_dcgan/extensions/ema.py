"""An exponential moving average of the generator's weights (Karras et al. 2018, Yazici et al. 2019).

The averaged generator is a separate Chain, a copy of the trained one, that the trainer never
optimizes: after every iteration each of its parameters and BatchNorm running statistics becomes
``decay * average + (1 - decay) * current``. Its samples are usually smoother and steadier than the
raw generator's at the same iteration; a ``decay`` of 0.999 averages over about the last 1000 steps.
"""
import copy

from chainer import training

__all__ = ["GeneratorAverage"]


class GeneratorAverage(training.Extension):
    """Keeps :attr:`model`, the moving average of ``gen``'s weights, updated after each iteration.

    The average starts as a copy of ``gen`` when the extension is made. It is saved in trainer
    snapshots (so a resumed run continues the same average) and runs before the writers of the same
    iteration (snapshots, sample grids), which therefore see it updated.

    Args:
        gen (Generator): the trained generator (on its device already).
        decay (float): weight of the old average, in ``[0, 1)``.
    """

    trigger = 1, "iteration"
    priority = training.PRIORITY_WRITER + 1
    name = "gen_ema"

    def __init__(self, gen, decay):
        if not 0.0 <= decay < 1.0:
            raise ValueError("EMA decay must lie in [0, 1), got {!r}".format(decay))
        self.gen = gen
        self.decay = float(decay)
        self.model = copy.deepcopy(gen)
        self.model.cleargrads()

    def update(self):
        """One averaging step, in place: ``average = decay * average + (1 - decay) * current`` for every
        parameter and floating-point persistent array; other persistent values (BatchNorm's counter
        ``N``) are copied."""
        current = dict(self.gen.namedparams())
        for name, param in self.model.namedparams():
            param.array *= self.decay
            param.array += (1.0 - self.decay) * current[name].array
        links = dict(self.gen.namedlinks())
        for name, link in self.model.namedlinks():
            for key in link._persistent:
                avg, cur = getattr(link, key), getattr(links[name], key)
                if getattr(avg, "dtype", None) is not None and avg.dtype.kind == "f" and avg.ndim:
                    avg *= self.decay
                    avg += (1.0 - self.decay) * cur
                else:
                    setattr(link, key, copy.copy(cur))

    def __call__(self, trainer):
        self.update()

    def serialize(self, serializer):
        self.model.serialize(serializer["model"])
