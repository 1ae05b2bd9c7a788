"""The moving average of the generator's weights (extensions.GeneratorAverage)."""
import numpy
import pytest

from chainer_dcgan.extensions import GeneratorAverage
from chainer_dcgan.models import Generator


def _arrays(link):
    out = {name: p.array.copy() for name, p in link.namedparams()}
    out["/bn1/avg_mean"] = link.bn1.avg_mean.copy()
    out["/bn1/N"] = link.bn1.N
    return out


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
    gen.bn1.avg_mean += 1.0
    gen.bn1.N = 7
    target = _arrays(gen)
    for k in range(1, 4):
        ema.update()
        got = _arrays(ema.model)
        for name in ("/dc1/W", "/l0z/b", "/bn0l/gamma", "/bn1/avg_mean"):
            # after k steps the average has moved 1 - decay**k of the way from the start to the target
            expected = target[name] + decay ** k * (start[name] - target[name])
            numpy.testing.assert_allclose(got[name], expected, rtol=1e-5, atol=1e-6)
            assert not numpy.allclose(got[name], target[name], rtol=0, atol=1e-4), name  # differs from raw
        assert got["/bn1/N"] == 7  # counters are copied
    assert gen.dc1.W.array is not ema.model.dc1.W.array


def test_decay_out_of_range_is_refused():
    with pytest.raises(ValueError, match="decay"):
        GeneratorAverage(Generator(size=64), 1.0)
