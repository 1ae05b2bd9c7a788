"""The moving average of the generator's weights (extensions.GeneratorAverage)."""
import copy

import chainer
import chainer.functions as F
import numpy
import pytest

from chainer_dcgan.models import Generator
from chainer_dcgan.training.extensions import GeneratorAverage
from chainer_dcgan.training.extensions.ema import batch_normalizations, recompute_batch_statistics


def _arrays(link):
    return {name: p.array.copy() for name, p in link.namedparams()}


def test_average_trails_the_raw_weights_as_the_decay_says():
    numpy.random.seed(0)
    gen = Generator(size=64)
    decay = 0.8
    ema = GeneratorAverage(gen, decay)
    start = _arrays(gen)
    assert all(numpy.array_equal(start[k], v) for k, v in _arrays(ema.model).items())
    rs = numpy.random.RandomState(1)
    for _, p in gen.namedparams():  # the trained weights jump once and then stay
        p.array += rs.normal(0, 0.05, p.shape).astype(numpy.float32)
    stats = ema.model.bn1.avg_mean.copy()
    gen.bn1.avg_mean += 1.0
    target = _arrays(gen)
    for k in range(1, 4):
        ema.update()
        got = _arrays(ema.model)
        for name in ("/dc1/W", "/l0z/b", "/bn0l/gamma", "/bn1/beta"):
            # after k steps the average has moved 1 - decay**k of the way from the start to the target
            expected = target[name] + decay ** k * (start[name] - target[name])
            numpy.testing.assert_allclose(got[name], expected, rtol=1e-5, atol=1e-6)
            assert not numpy.allclose(got[name], target[name], rtol=0, atol=1e-4), name  # differs from raw
        # running statistics are not averaged (they are recomputed on the average: refresh)
        numpy.testing.assert_array_equal(ema.model.bn1.avg_mean, stats)
    assert gen.dc1.W.array is not ema.model.dc1.W.array


def test_decay_out_of_range_is_refused():
    with pytest.raises(ValueError, match="decay"):
        GeneratorAverage(Generator(size=64), 1.0)


def _stats(gen):
    return {name: (bn.avg_mean.copy(), bn.avg_var.copy()) for name, bn in batch_normalizations(gen)}


def test_recomputed_statistics_are_the_mean_of_the_batches_statistics():
    numpy.random.seed(0)
    gen = Generator(size=64)
    recompute_batch_statistics(gen, batches=3, batchsize=8, seed=5)
    before = _stats(gen)
    # by hand: the three batches' own means and unbiased variances of bn1's input, averaged
    rs = numpy.random.RandomState(5)
    means, variances = [], []
    with chainer.using_config("train", True), chainer.no_backprop_mode():
        for _ in range(3):
            z = gen.make_hidden(8, rs)
            h = F.reshape(F.relu(gen.bn0l(gen.l0z(z))), (8, -1, gen.base, gen.base))
            a = gen.dc1(h).array
            means.append(a.mean(axis=(0, 2, 3)))
            m = a.size // a.shape[1]
            variances.append(a.var(axis=(0, 2, 3)) * m / (m - 1))
    numpy.testing.assert_allclose(gen.bn1.avg_mean, numpy.mean(means, axis=0), rtol=1e-4, atol=1e-6)
    numpy.testing.assert_allclose(gen.bn1.avg_var, numpy.mean(variances, axis=0), rtol=1e-4, atol=1e-6)
    assert gen.bn1.N == 3 and gen.bn1.decay == 0.9  # the decay is restored
    recompute_batch_statistics(gen, batches=3, batchsize=8, seed=5)  # the same seed: the same statistics
    for name, (mean, var) in _stats(gen).items():
        numpy.testing.assert_array_equal(mean, before[name][0])
        numpy.testing.assert_array_equal(var, before[name][1])


@pytest.mark.parametrize("fast", [True, False])
def test_averaged_generator_draws_what_training_mode_draws_after_refresh(fast):
    """The defect this fixes: averaged running statistics do not fit averaged weights, so test mode
    (grids, written files) drew grey ghosts. After a refresh test mode matches training mode."""
    numpy.random.seed(0)
    gen = Generator(size=64)
    ema = GeneratorAverage(gen, 0.5, batchsize=16)
    rs = numpy.random.RandomState(3)
    for _ in range(4):  # the raw G wanders far; its statistics follow it
        for _, p in gen.namedparams():
            p.array += rs.normal(0, 0.2, p.shape).astype(numpy.float32) * (abs(p.array).mean() + 0.02)
        recompute_batch_statistics(gen, batches=2, batchsize=16, seed=int(rs.randint(1000)))
        ema.update()
    z = gen.make_hidden(64, numpy.random.RandomState(9))

    def mismatch(model):
        with chainer.using_config("dcgan_fast", fast), chainer.no_backprop_mode():
            with chainer.using_config("train", False):
                test = model(z).array
            with chainer.using_config("train", True):
                train = model(z).array
        return float(abs(test - train).mean() / abs(train).mean())

    stale = mismatch(copy.deepcopy(ema.model))
    ema.refresh()
    fresh = mismatch(ema.model)
    # measured: stale 0.99, fresh 0.17 (what is left is train mode's own batch-to-population noise)
    assert fresh < 0.3, fresh
    assert stale > 3 * fresh, (stale, fresh)
    assert not ema.stale


def test_the_decay_warms_up_with_the_iteration():
    ema = GeneratorAverage(Generator(size=64), 0.999)
    assert ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(80) == pytest.approx(0.9)
    assert ema.decay_at(10 ** 6) == 0.999  # later the decay asked for
    assert all(ema.decay_at(t) <= ema.decay_at(t + 1) for t in range(0, 20000, 97))


def test_the_trainer_step_uses_the_warmed_up_decay():
    numpy.random.seed(0)
    gen = Generator(size=64)
    ema = GeneratorAverage(gen, 0.999, refresh_trigger=(10 ** 6, "iteration"))
    start = gen.dc2.W.array.copy()
    gen.dc2.W.array += 1.0

    class Trainer:
        class updater:
            iteration = 1

    ema(Trainer())  # after the first update the average moved 1 - 2/11 of the way, not 0.001
    numpy.testing.assert_allclose(ema.model.dc2.W.array, start + (1 - 2.0 / 11), rtol=1e-5)
