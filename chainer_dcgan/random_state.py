"""Saving a ``numpy.random.RandomState`` inside Chainer snapshots, so resumed runs replay exactly."""
import numpy


def serialize_random_state(serializer, random_state):
    """Save ``random_state`` into, or restore it from, a Chainer (de)serializer.

    Args:
        serializer: a ``chainer.Serializer`` or ``chainer.Deserializer`` (already scoped).
        random_state (numpy.random.RandomState): modified in place when loading.
    """
    name, keys, pos, has_gauss, cached = random_state.get_state()
    keys = serializer("keys", numpy.asarray(keys, dtype=numpy.uint32))
    counters = serializer("counters", numpy.asarray([pos, has_gauss], dtype=numpy.int64))
    cached = serializer("cached_gaussian", numpy.asarray(cached, dtype=numpy.float64))
    if not isinstance(serializer, _serializer_type()):
        random_state.set_state((name, numpy.asarray(keys, dtype=numpy.uint32),
                                int(counters[0]), int(counters[1]), float(cached)))


def _serializer_type():
    import chainer

    return chainer.Serializer
